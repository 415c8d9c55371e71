"""objectives/chains.py and fkl_mcmc's chain starts: persistent chains (PCD) keep their positions across
iterations; chains restarted at given points (CD-k, ``--fkl_mcmc.chain_start x``) keep none, move away from their
starts, and the option leaves the artifact identity of the default unchanged."""

import dataclasses

import torch

from pseudocoresets.objectives import fkl_mcmc
from pseudocoresets.pipeline import identity_dict
from pseudocoresets.utils import generator


def _objective(ctx, **options):
    config = fkl_mcmc.Config(
        chains=3,
        chain_steps=2,
        chain_burn_in=5,
        chain_step_size=0.1,
        x_samples=4,
        x_source="reference",
        noise_x=0.0,
        **options,
    )
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
