"""Chains stepped as one batch (samplers/batched.py): one batched step is the loop's steps with the same draws,
the batched chains sample the exact tempered BLR posterior, and the evaluation runs them through its driver."""

import math

import pytest
import torch

from pseudocoresets.fidelity.blr import BLRProblem
from pseudocoresets.samplers import CoresetPosterior, HMCState, batched, hmc, leapfrog, mass
from pseudocoresets.samplers.hmc import energy_change, kinetic_energy

from test_tempered_posterior import _moments_match


def _posterior(temperature=0.5, weight=1.0):
    problem = BLRProblem.synthetic(n=60, d=3, m=6, seed=1, prior_std=2.0, temperature=temperature, weight=weight)
    post = CoresetPosterior.from_spec(problem.model(), problem.u0, problem.v, problem.posterior)
    return post, *problem.coreset_posterior(problem.u0)


def test_a_batched_step_is_the_loops_steps_with_the_same_draws():
    """Chains with their own step sizes and mass matrices (identity and diagonal), the same momenta and uniform
    draws: every chain's proposal, energy change, acceptance and new state equal the single-chain kernel's."""
    post, mean, cov = _posterior()
    g = torch.Generator().manual_seed(3)
    p_dim = post.model.num_params
    kernels = [
        hmc.build(post.potential_and_grad, 5, 0.05),
        hmc.build(
            post.potential_and_grad,
            5,
            0.2,
            metric=mass.diagonal(torch.rand(p_dim, generator=g, dtype=torch.float64) + 0.5),
        ),
        hmc.build(post.potential_and_grad, 5, 0.9),  # large: likely rejected
    ]
    states = [k.init(torch.randn(p_dim, generator=g, dtype=torch.float64)) for k in kernels]
    momenta = torch.randn(3, p_dim, generator=g, dtype=torch.float64)
    uniforms = torch.rand(3, generator=g, dtype=torch.float64)
    new, infos = batched.step(kernels, states, g, batched.potential_and_grad(post), momenta=momenta, uniforms=uniforms)
    accepted = 0
    for c, (k, s) in enumerate(zip(kernels, states)):
        q1, p1, u1, grad1 = leapfrog(s.position, momenta[c], s.grad, k.step_size, 5, post.potential_and_grad, k.metric)
        dh = float(energy_change(s.potential, kinetic_energy(momenta[c], k.metric), u1, kinetic_energy(p1, k.metric)))
        assert infos[c].delta_h == pytest.approx(dh, rel=1e-9, abs=1e-9)
        take = float(uniforms[c]) < math.exp(min(0.0, -dh))
        assert infos[c].accepted == take
        want = q1 if take else s.position
        assert torch.allclose(new[c].position, want, rtol=1e-10, atol=1e-12)
        accepted += take
    assert 0 < accepted < 3  # both branches seen


def test_batched_chains_sample_the_tempered_posterior():
    post, mean, cov = _posterior(temperature=0.5, weight=4.0)
    step = 0.6 * float(cov.diagonal().sqrt().min())
    kernels = [hmc.build(post.potential_and_grad, 4, step) for _ in range(4)]
    g = torch.Generator().manual_seed(0)
    states = [k.init(torch.zeros(post.model.num_params, dtype=torch.float64)) for k in kernels]
    grad_fn, kept = batched.potential_and_grad(post), []
    for it in range(500):
        states, _ = batched.step(kernels, states, g, grad_fn)
        if it >= 100:
            kept += [s.position for s in states]
    assert _moments_match(torch.stack(kept), mean, cov, n_eff=1600 / 10)


def test_a_batched_step_without_the_temperature_is_caught(monkeypatch):
    post, mean, cov = _posterior(temperature=0.1)
    monkeypatch.setattr(post, "temperature", 1.0)  # the batched potential reads it: now untempered
    step = 0.6 * float(cov.diagonal().sqrt().min())
    kernels = [hmc.build(post.potential_and_grad, 4, step) for _ in range(4)]
    g = torch.Generator().manual_seed(0)
    states = [
        HMCState(
            torch.zeros(post.model.num_params, dtype=torch.float64),
            *post.potential_and_grad(torch.zeros(post.model.num_params, dtype=torch.float64)),
        )
        for _ in kernels
    ]
    grad_fn, kept = batched.potential_and_grad(post), []
    for it in range(300):
        states, _ = batched.step(kernels, states, g, grad_fn)
        if it >= 100:
            kept += [s.position for s in states]
    assert float((torch.stack(kept).var(0) / cov.diagonal()).mean()) > 5


def test_the_evaluation_batches_its_chains_when_asked(one_thread):
    from pseudocoresets.evaluation import EvalSettings, evaluate_coreset
    from pseudocoresets.models import ModelConfig, build_model

    gen = torch.Generator().manual_seed(1)
    model = build_model(ModelConfig(arch="linear"), (5,), 3)
    x, y = torch.randn(12, 5, generator=gen), torch.arange(12) % 3
    sets, test_y = {"test": torch.randn(60, 5, generator=gen)}, torch.arange(60) % 3
    base = dict(chains=3, iterations=24, burn_in=8, thin=1, repeats=1, step_size=0.1, diagnostic_points=20)
    runs = {}
    for mode in ("off", "on"):
        settings = EvalSettings.build(
            "hmc", **base, batch_chains=mode, mass="diagonal", settle_tv=1e-9, max_iterations=40
        )
        runs[mode] = evaluate_coreset(model, x, y, sets, test_y, settings, quiet=True)["repeats"][0]
    assert runs["off"]["chains_batched"] is False and runs["on"]["chains_batched"] is True
    assert runs["on"]["samples"] == runs["off"]["samples"] == 3 * 32  # the stopping rule continued the batch
    assert runs["on"]["mass_matrix"] == "diagonal" and 0.3 < runs["on"]["acceptance_rate"] <= 1


def test_auto_keeps_the_loop_on_a_cpu_to_the_bit(one_thread):
    """``auto`` decides by the device's type (the loop on a CPU, where the batch measured slower), never by a
    timing: its results are the loop's, to the bit, whatever the machine's load."""
    from pseudocoresets.evaluation import EvalSettings, evaluate_coreset
    from pseudocoresets.models import ModelConfig, build_model

    gen = torch.Generator().manual_seed(1)
    model = build_model(ModelConfig(arch="linear"), (5,), 3)
    x, y = torch.randn(12, 5, generator=gen), torch.arange(12) % 3
    sets, test_y = {"test": torch.randn(60, 5, generator=gen)}, torch.arange(60) % 3
    out = {}
    for mode in ("off", "auto"):
        settings = EvalSettings.build("hmc", chains=3, iterations=20, burn_in=5, thin=1, repeats=1, batch_chains=mode)
        out[mode] = evaluate_coreset(model, x, y, sets, test_y, settings, quiet=True)["repeats"][0]
    assert out["auto"]["chains_batched"] is False
    for key in ("accuracy", "nll", "acceptance_rate", "final_step_size_mean"):
        assert out["auto"][key] == out["off"][key]
