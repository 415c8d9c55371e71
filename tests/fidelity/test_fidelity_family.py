"""The fidelity checks beyond the bench's own problem: on the medium problem of the family (2,000 points, 8
features with condition number 10, 16 pseudo-points; never tuned to), fkl_mcmc and rKL with chains lower the exact
divergence by a large share of what exact-gradient descent reaches (``fidelity.blr.FAMILY_CHECKS``); the
flipped-sign mutants of both fail these checks in checks/fidelity_mutants.py."""

import pytest

from pseudocoresets.fidelity.blr import FAMILY_CHECKS, run_family_check

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("member,label,weight,least", FAMILY_CHECKS, ids=[f"{c[0]}|{c[1]}" for c in FAMILY_CHECKS])
def test_objective_step_on_a_family_problem(member, label, weight, least):
    r = run_family_check(member, label, weight)
    assert r["exact_reduction"] > 0.5
    assert r["share"] >= least, r
