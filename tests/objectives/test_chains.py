"""objectives/chains.py and fkl_mcmc's chain starts: persistent chains (PCD) keep their positions across
iterations; chains restarted at given points (CD-k, ``--fkl_mcmc.chain_start x``) keep none, move away from their
starts, and the option leaves the artifact identity of the default unchanged."""

import dataclasses

import pytest
import torch

from pseudocoresets.objectives import fkl_mcmc
from pseudocoresets.pipeline import identity_dict
from pseudocoresets.utils import generator


def _objective(ctx, **options):
    settings = dict(chains=3, chain_steps=2, chain_burn_in=5, chain_step_size=0.1, x_samples=4)
    config = fkl_mcmc.Config(**{**settings, **options}, x_source="reference", noise_x=0.0)
    config.validate()
    return fkl_mcmc.build(config, ctx)


def test_persistent_chains_keep_their_positions(blr_bench):
    problem, ctx = blr_bench
    objective = _objective(ctx)
    u = problem.u0.clone().requires_grad_(True)
    out = objective.step(u, problem.v, generator(0))
    assert out["chain_samples"] == 3 * 2
    state = objective.state_dict()
    assert state["chains.positions"].shape == (3, problem.x.shape[1])


def test_cd_chains_start_at_the_pi_x_samples_move_and_keep_nothing(blr_bench):
    problem, ctx = blr_bench
    objective = _objective(ctx, chain_start="x")
    u = problem.u0.clone().requires_grad_(True)
    out = objective.step(u, problem.v, generator(0))
    assert out["chain_samples"] == 4 * 2  # one chain per pi_x sample, every transition kept
    assert "chains.positions" not in objective.state_dict() and objective.chains.positions is None
    assert u.grad is not None and torch.isfinite(u.grad).all() and float(u.grad.norm()) > 0
    starts = ctx.reference[:4].clone()
    moved = objective.chains.advance(problem.u0, problem.v, generator(1), starts=starts)
    assert torch.equal(starts, ctx.reference[:4])  # the starts themselves are not changed
    assert moved.shape == (8, problem.x.shape[1])
    assert not torch.allclose(moved[-4:], starts)  # accepted HMC moves take the chains off their starts


def test_chain_start_default_is_outside_the_artifact_identity():
    assert "chain_start" not in identity_dict(fkl_mcmc.Config())
    assert identity_dict(dataclasses.replace(fkl_mcmc.Config(), chain_start="x"))["chain_start"] == "x"


@pytest.mark.parametrize("mass", ["diagonal", "dense"])
def test_chains_with_a_mass_matrix_sample_the_coreset_posterior(blr_bench, mass):
    # the metric has the shape of the pi_x samples' covariance, and the chains still sample pi_u exactly
    problem, ctx = blr_bench
    mean, cov = problem.coreset_posterior(problem.u0)
    objective = _objective(ctx, chain_mass=mass, chains=4, chain_steps=10, chain_burn_in=50)
    g = generator(0)
    samples = torch.cat([objective.chains.advance(problem.u0, problem.v, g) for _ in range(30)])
    pi_x_cov = torch.cov(ctx.reference.T)
    shape = pi_x_cov / pi_x_cov.diagonal().mean()
    inverse_mass = objective.chains.metric.inverse_mass
    assert torch.allclose(inverse_mass, shape if mass == "dense" else shape.diagonal(), rtol=0.05, atol=1e-3)
    std = cov.diagonal().sqrt()
    n_eff = len(samples) / 10
    assert ((samples.mean(0) - mean).abs() < 5 * std / n_eff**0.5).all()
    assert ((samples.var(0) / cov.diagonal() - 1).abs() < 0.25).all()
    assert 0.3 < objective.chains.acceptance() < 1.0


def test_chain_mass_default_is_outside_the_artifact_identity():
    assert "chain_mass" not in identity_dict(fkl_mcmc.Config())
    assert identity_dict(dataclasses.replace(fkl_mcmc.Config(), chain_mass="dense"))["chain_mass"] == "dense"
