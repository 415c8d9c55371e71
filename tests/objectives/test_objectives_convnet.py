"""Every registered objective through the objective-agnostic distillation loop on a tiny ConvNet."""

import dataclasses

import pytest
import torch

from pseudocoresets.distill import DistillConfig, distill
from pseudocoresets.experts import ExpertConfig, sgd_trajectory
from pseudocoresets.models import FlatModel, ModelConfig, build_convnet
from pseudocoresets.experts import ExpertPool, expert_file, save_trajectory
from pseudocoresets.objectives import OBJECTIVES, DistillContext, build_objective


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    x = torch.randn(200, 1, 12, 12)
    y = torch.arange(200) % 4
    x[torch.arange(200), 0, y * 3, :] += 3.0  # a class-dependent stripe
    model = FlatModel(build_convnet(ModelConfig(width=4, depth=2), 1, 12, 4))
    root = tmp_path_factory.mktemp("experts")
    paths = []
    for e in range(2):
        traj = sgd_trajectory(model, model.init(e), x, y, ExpertConfig(epochs=3, batch_size=50, lr=0.05), e)
        paths.append(expert_file(root, e))
        save_trajectory(paths[-1], traj, e, [])
    ctx = DistillContext(model, ExpertPool(paths, torch.device("cpu")), x, y, 4, None, torch.device("cpu"))
    return ctx, x, y


SMALL = {
    "fkl": dict(num_samples=2),
    "rkl": dict(num_samples=2, real_batch=40),
    "wasserstein": dict(lr_lr=1e-4),
    "dc": dict(outer_loop=2, inner_loop=2, real_batch=16, lr_net=0.05),
}


def _config(method, objective=None, **kw):
    """(DistillConfig, the objective's Config) of a tiny run; ``objective`` overrides the objective's options."""
    base = dict(
        method=method,
        ipc=2,
        iterations=3,
        lr_images=1.0,
        lr_student=0.05,
        student_steps=3,
        expert_epochs=1,
        max_start_epoch=1,
    )
    base.update(kw)
    return DistillConfig(**base), OBJECTIVES[method].Config(**{**SMALL.get(method, {}), **(objective or {})})


CHAINS = {"chains": 2, "chain_steps": 2, "chain_burn_in": 2}
VARIANTS = [(m, {}) for m in sorted(OBJECTIVES)] + [
    ("rkl", {"samples": "chains", **CHAINS}),
    ("fkl_mcmc", CHAINS),
    ("fkl_mcmc", {**CHAINS, "learn_weights": True}),
    ("fkl_mcmc", {**CHAINS, "chain_start": "x", "x_samples": 2}),
]


@pytest.mark.parametrize("method,options", VARIANTS, ids=[f"{m}{'-' + str(o) if o else ''}" for m, o in VARIANTS])
def test_objective_moves_pixels_and_stays_finite(setup, method, options):
    ctx, x, y = setup
    init = x[[0, 4, 1, 5, 2, 6, 3, 7]].clone()
    labels = y[[0, 4, 1, 5, 2, 6, 3, 7]]
    images, summary = distill(*_config(method, options), ctx, init, labels, quiet=True)
    assert images.shape == init.shape and torch.isfinite(images).all()
    assert not torch.allclose(images, init)
    assert summary["iterations"] == 3 and summary["seconds_per_iteration"] > 0


def test_distillation_is_reproducible_for_a_seed(setup):
    ctx, x, y = setup
    init, labels = x[:8].clone(), y[:8]
    a, _ = distill(*_config("fkl"), ctx, init, labels, quiet=True)
    b, _ = distill(*_config("fkl"), ctx, init, labels, quiet=True)
    c, _ = distill(*_config("fkl", seed=5), ctx, init, labels, quiet=True)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_wasserstein_checkpointing_gives_equal_gradients(setup):
    ctx, x, y = setup
    grads = []
    for every in (0, 1, 2):
        images = x[:8].clone().requires_grad_(True)
        distill_cfg, cfg = _config("wasserstein", {"checkpoint_every": every}, student_steps=5)
        obj = build_objective("wasserstein", cfg, dataclasses.replace(ctx, student=distill_cfg.student()))
        g = torch.Generator().manual_seed(3)
        obj.step(images, y[:8], g)
        grads.append((images.grad.clone(), obj.eta.grad.clone()))
    for gi, ge in grads[1:]:
        assert torch.allclose(gi, grads[0][0], rtol=1e-4, atol=1e-7)
        assert torch.allclose(ge, grads[0][1], rtol=1e-4, atol=1e-9)
    assert grads[0][0].abs().sum() > 0 and grads[0][1].abs() > 0


def test_wasserstein_learns_the_student_step_size(setup):
    ctx, x, y = setup
    _, summary = distill(*_config("wasserstein", {"lr_lr": 1e-3}), ctx, x[:8].clone(), y[:8], quiet=True)
    assert summary["learnt_student_lr"] != pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize("method,options", VARIANTS, ids=[f"{m}{'-' + str(o) if o else ''}" for m, o in VARIANTS])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_from_a_checkpoint_is_bit_identical(setup, method, options, optimizer):
    """Stop after iteration 3 of 5 (as SIGTERM does; mid-round for DC), resume from the saved checkpoint: the same pixels and
    summary as an uninterrupted run. Mutants run on purpose: restoring no objective state fails the 8 stateful
    cases (dc, wasserstein, rkl-chains, fkl_mcmc, both optimisers); no generator state or no optimiser state
    fails all 14."""
    ctx, x, y = setup
    pick = [0, 4, 1, 5, 2, 6, 3, 7]
    cfg, obj = _config(
        method,
        options,
        iterations=5,
        optimizer=optimizer,
        lr_schedule="linear",
        lr_images=0.1 if optimizer == "adam" else 1.0,
        checkpoint_every=0,
    )
    full, full_summary = distill(cfg, obj, ctx, x[pick].clone(), y[pick], quiet=True)
    saved = []
    calls = iter(range(100))
    with pytest.raises(KeyboardInterrupt):
        distill(
            cfg,
            obj,
            ctx,
            x[pick].clone(),
            y[pick],
            quiet=True,
            on_checkpoint=saved.append,
            stop_requested=lambda: next(calls) == 2,
        )
    assert len(saved) == 1 and int(saved[0]["iteration"][0]) == 3
    resumed, summary = distill(cfg, obj, ctx, x[pick].clone(), y[pick], quiet=True, resume=saved[0])
    assert torch.equal(resumed, full)
    assert summary["iterations"] == 5
    assert summary.get("point_weights") == full_summary.get("point_weights")  # learnt weights resume too


def test_periodic_checkpoints(setup):
    ctx, x, y = setup
    pick = [0, 4, 1, 5, 2, 6, 3, 7]
    saved = []
    distill(
        *_config("fkl", iterations=7, checkpoint_every=3),
        ctx,
        x[pick].clone(),
        y[pick],
        quiet=True,
        on_checkpoint=saved.append,
    )
    assert [int(s["iteration"][0]) for s in saved] == [3, 6]


@pytest.mark.parametrize("method", sorted(OBJECTIVES))
def test_every_objective_learns_with_dsa(setup, method):
    """DSA on (the official setting): every objective's step reaches the pixels through the augmentation. (rkl
    once drew its siamese views inside its no-grad weight pass and cached them, so its backward found no graph.)"""
    from pseudocoresets.augment import DSA

    ctx, x, y = setup
    ctx = dataclasses.replace(ctx, augment=DSA())
    init, labels = x[[0, 4, 1, 5, 2, 6, 3, 7]].clone(), y[[0, 4, 1, 5, 2, 6, 3, 7]]
    cfg, own = _config(method, iterations=2)
    cfg.augment = True
    images, _ = distill(cfg, own, ctx, init, labels, quiet=True)
    assert torch.isfinite(images).all() and not torch.allclose(images, init)
