"""bf16 mixed precision (models/precision.py): every objective's pixel gradient in bf16 points where the fp32 one
does, HMC with bf16 gradients still samples the exact posterior (Metropolis on the fp32 energy), and the option
resolves and validates. Mutant evidence: ``test_bf16_parameter_storage_would_fail_the_guard`` keeps the student's
parameters in bf16 (what "parameters stay fp32" forbids) and shows the cosine guard rejects it."""

import dataclasses

import pytest
import torch

from pseudocoresets.distill import DistillConfig
from pseudocoresets.errors import UserError
from pseudocoresets.evaluation.gaussian import linear_gaussian_posterior
from pseudocoresets.experts import ExpertConfig, ExpertPool, expert_file, save_trajectory, sgd_trajectory
from pseudocoresets.models import FlatModel, ModelConfig, build_convnet, build_model, resolve_precision
from pseudocoresets.objectives import OBJECTIVES, DistillContext, build_objective, student
from pseudocoresets.samplers import CoresetPosterior, PosteriorSpec, hmc

SMALL = {
    "fkl": dict(num_samples=10),
    "rkl": dict(num_samples=10, real_batch=64),
    "wasserstein": dict(),
    "dc": dict(outer_loop=1, inner_loop=1, real_batch=32),
    "fkl_mcmc": dict(chains=2, chain_steps=2, chain_burn_in=2),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    x = torch.randn(256, 3, 16, 16)
    y = torch.arange(256) % 4
    x[torch.arange(256), y % 3, y * 4, :] += 3.0
    model = FlatModel(build_convnet(ModelConfig(width=16, depth=2), 3, 16, 4))
    root = tmp_path_factory.mktemp("experts")
    paths = []
    for e in range(2):
        traj = sgd_trajectory(model, model.init(e), x, y, ExpertConfig(epochs=3, batch_size=64, lr=0.05), e)
        paths.append(expert_file(root, e))
        save_trajectory(paths[-1], traj, e, [])
    ctx = DistillContext(model, ExpertPool(paths, torch.device("cpu")), x, y, 4, None, torch.device("cpu"))
    return ctx, x, y


def pixel_gradient(ctx, method: str, precision: str, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    cfg = DistillConfig(method=method, ipc=4, lr_student=0.01, student_steps=10, expert_epochs=1, max_start_epoch=1)
    own = OBJECTIVES[method].Config(**SMALL[method])
    run_ctx = dataclasses.replace(ctx, model=ctx.model.with_precision(precision), student=cfg.student())
    obj = build_objective(method, own, run_ctx)
    u = images.clone().requires_grad_(True)
    obj.step(u, labels, torch.Generator().manual_seed(11))
    return u.grad.detach().flatten()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.mark.parametrize("method", sorted(SMALL))
def test_bf16_pixel_gradient_points_where_fp32_does(setup, method):
    ctx, x, y = setup
    idx = torch.cat([torch.nonzero(y == k)[:4, 0] for k in range(4)])
    fp32 = pixel_gradient(ctx, method, "fp32", x[idx], y[idx])
    bf16 = pixel_gradient(ctx, method, "bf16", x[idx], y[idx])
    assert fp32.norm() > 0 and torch.isfinite(bf16).all()
    assert cosine(fp32, bf16) >= 0.99, cosine(fp32, bf16)


def test_bf16_parameter_storage_would_fail_the_guard(setup, monkeypatch):
    """Mutant: the student's parameters stored in bf16 between SGD steps (what "parameters stay fp32" forbids):
    updates lr * grad smaller than bf16's spacing near theta vanish, and the fKL gradient fails the guard.
    (Rounding the parameters only inside the forward pass, fp32 storage, gives cosine 0.995: the rounding of
    activations, not of weights, is what bf16 autocast costs.)"""
    ctx, x, y = setup
    idx = torch.cat([torch.nonzero(y == k)[:4, 0] for k in range(4)])
    fp32 = pixel_gradient(ctx, "fkl", "fp32", x[idx], y[idx])

    def bf16_storage_sgd(model, theta, images, labels, steps, lr, batch, augment, g):
        theta = theta.detach().to(torch.bfloat16)
        for _ in range(steps):
            idx = student.minibatch(len(images), batch, g, images.device)
            t = theta.float().requires_grad_(True)
            (grad,) = torch.autograd.grad(model.nll(t, student.maybe_augment(images[idx], augment, g), labels[idx]), t)
            theta = (theta.float() - lr * grad).to(torch.bfloat16)
        return theta.float()

    monkeypatch.setattr(student, "student_sgd", bf16_storage_sgd)
    mutant = pixel_gradient(ctx, "fkl", "bf16", x[idx], y[idx])
    assert cosine(fp32, mutant) < 0.99, cosine(fp32, mutant)


def test_bf16_hmc_samples_the_exact_blr_posterior():
    g = torch.Generator().manual_seed(0)
    n, d = 400, 3
    x = torch.randn(n, d, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + torch.randn(n, generator=g)
    model = build_model(ModelConfig(arch="linear", likelihood="gaussian"), (d,), 1).with_precision("bf16")
    mean, cov = linear_gaussian_posterior(x.double(), y.double(), 1.0, PosteriorSpec())
    posterior = CoresetPosterior(model, x, y, prior_std=1.0)
    kernel = hmc.build(posterior.potential_and_grad, 10, 0.02, posterior.metropolis_potential)
    state = kernel.init(torch.zeros(d))
    exact = CoresetPosterior(model.with_precision("fp32"), x, y, prior_std=1.0).potential_and_grad(state.position)[0]
    assert torch.equal(state.potential, exact)  # the Metropolis energy is the fp32 one
    kept, accepted = [], 0
    for i in range(900):
        state, info = kernel.step(state, g)
        accepted += info.accepted
        if i >= 100 and i % 4 == 0:
            kept.append(state.position)
    samples = torch.stack(kept).double()
    sd = cov.diagonal().sqrt()
    assert accepted / 900 > 0.5
    assert ((samples.mean(0) - mean).abs() < 0.5 * sd).all()  # 200 draws: MC error of the mean ~0.1 sd
    ratio = samples.var(0) / cov.diagonal()
    assert ((ratio > 0.6) & (ratio < 1.6)).all(), ratio


def test_precision_resolves_and_validates():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) in ("fp32", "bf16")
    with pytest.raises(UserError, match="precision"):
        resolve_precision("fp16", cpu)
    with pytest.raises(UserError, match="precision"):
        ModelConfig(precision="half").validate()
    model = build_model(ModelConfig(width=4, depth=1), (1, 8, 8), 3).with_precision("bf16")
    out = model(model.init(0), torch.randn(2, 1, 8, 8))
    assert out.dtype == torch.float32
