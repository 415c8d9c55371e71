"""Class-level proofs on Bayesian linear regression: each objective's real step (``build(...).step`` with its
student SGD, experts, noise, chains and scaling) lowers the exact divergence it stands for by a large share of
what exact-gradient descent reaches from the same start (pseudocoresets.fidelity).

Thresholds are in ``fidelity.blr.CHECKS``; ``checks/fidelity_mutants.py`` runs deliberately broken copies of
the objectives (a deleted term, a flipped sign, a mean/sum or weight mix-up) through the same checks and shows
that each one fails (results in checks/results/fidelity_mutants.md); the suite checks that every mutant still fits
the code it replaces, so that the script stays runnable.
"""

import pytest
import torch

from pseudocoresets.evaluation.gaussian import linear_gaussian_posterior
from pseudocoresets.fidelity.blr import CHECKS, BLRProblem, run_check
from pseudocoresets.samplers import PosteriorSpec


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("label,weight,least", CHECKS, ids=[f"{c[0]}|w={c[1]}" for c in CHECKS])
def test_objective_step_reaches_a_large_share_of_the_exact_reduction(label, weight, least):
    """One check per test, so that pytest-xdist spreads the checks (16-30 s each) over its workers."""
    r = run_check(label, weight)
    assert r["exact_reduction"] > 0.5  # the bench itself: exact descent makes real progress
    assert r["share"] >= least, r


def test_exact_divergences_are_zero_between_equal_posteriors_and_positive_otherwise():
    p = BLRProblem.synthetic(weight=400 / 6)
    for kind in ("forward_kl", "reverse_kl", "w2"):
        assert float(p.divergence(kind, p.u0)) > 1e-3
    # the full data as its own coreset, with weight 1, reproduces the full posterior exactly
    q = BLRProblem(p.x, p.y, p.x, p.y, p.noise_std, p.prior_std, PosteriorSpec(1.0, 1.0, p.prior_std))
    for kind in ("forward_kl", "reverse_kl", "w2"):
        assert abs(float(q.divergence(kind, q.x))) < 1e-8


def test_weighted_tempered_posterior_matches_its_definition():
    # pi ∝ [prod N(y; x theta, s^2)^w N(0, sigma^2)]^(1/T): precision (w X^T X / s^2 + I / sigma^2) / T
    p = BLRProblem.synthetic()
    spec = PosteriorSpec(2.5, 0.5, 3.0)
    mean, cov = linear_gaussian_posterior(p.u0, p.v, 1.0, spec)
    a = 2.5 * p.u0.T @ p.u0 + torch.eye(3, dtype=torch.float64) / 9.0
    assert torch.allclose(torch.linalg.inv(cov), a / 0.5)
    assert torch.allclose(mean, torch.linalg.solve(a, 2.5 * p.u0.T @ p.v))


def test_every_mutant_of_the_mutation_script_fits_the_code_it_replaces():
    # checks/fidelity_mutants.py patches objective functions; when their signatures grow (a rank's share, a
    # chain start), a stale mutant raises instead of computing, which proves nothing. Each mutant must accept a
    # call as the code makes it: the required parameters by position, the optional ones by name.
    import inspect
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "checks"))
    import fidelity_mutants

    for name, _, _, patch in fidelity_mutants.MUTANTS:
        original = inspect.signature(getattr(patch.getter(), patch.attribute))
        required = [p for p in original.parameters.values() if p.default is inspect.Parameter.empty]
        optional = {p.name: p.default for p in original.parameters.values() if p.default is not inspect.Parameter.empty}
        try:
            inspect.signature(patch.new).bind(*[None] * len(required), **optional)
        except TypeError as exc:
            raise AssertionError(f"mutant {name!r} no longer fits {patch.attribute}: {exc}") from exc
