"""The fidelity checks beyond the bench's own problem: on the medium problem of the family (2,000 points, 8
features with condition number 10, 16 pseudo-points; never tuned to), fkl_mcmc and rKL with chains lower the exact
divergence by a large share of what exact-gradient descent reaches (``fidelity.blr.FAMILY_CHECKS``), and the
flipped-sign mutants of both fail those checks."""

import pytest

from pseudocoresets.fidelity.blr import FAMILY_CHECKS, run_family_check
from pseudocoresets.objectives import fkl_mcmc, rkl

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("member,label,weight,least", FAMILY_CHECKS, ids=[f"{c[0]}|{c[1]}" for c in FAMILY_CHECKS])
def test_objective_step_on_a_family_problem(member, label, weight, least):
    r = run_family_check(member, label, weight)
    assert r["exact_reduction"] > 0.5
    assert r["share"] >= least, r


def test_flipped_signs_fail_the_family_checks(monkeypatch):
    original_contrastive, original_rkl = fkl_mcmc.contrastive_backward, rkl.rkl_surrogate
    monkeypatch.setattr(
        fkl_mcmc, "contrastive_backward", lambda log_lik, tu, tx: original_contrastive(lambda t: -log_lik(t), tu, tx)
    )
    monkeypatch.setattr(
        rkl, "rkl_surrogate", lambda core, data, *a, **k: original_rkl(lambda t, s: -core(t, s), data, *a, **k)
    )
    for member, label, weight, least in FAMILY_CHECKS:
        assert run_family_check(member, label, weight, steps=50)["share"] < least
