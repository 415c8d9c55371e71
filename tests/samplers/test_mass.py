"""HMC with a mass matrix: any positive definite metric leaves the target invariant (moments of a correlated,
ill-conditioned Gaussian recovered with a diagonal and a dense metric that are not its covariance), a metric
equal to the target's covariance lets one step size fit every direction, the burn-in window's diagonal estimate
mixes a badly scaled target that the identity does not, and a kinetic energy or momentum that ignores the
metric is caught."""

import math

import pytest
import torch

from pseudocoresets.samplers import MassAdapter, StepSizeAdapter, hmc, leapfrog, mass as mass_matrix, run_chain

DIM = 4
ROT = torch.linalg.qr(torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(3), dtype=torch.float64))[0]
MEAN = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=torch.float64)


def gaussian(eigenvalues):
    cov = ROT @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ ROT.T
    prec = torch.linalg.inv(cov)

    def potential(q):
        z = q - MEAN
        return 0.5 * z @ prec @ z, prec @ z

    return cov, potential


COV, potential = gaussian([2.0, 1.0, 0.5, 0.25])  # correlated, condition 8
WIDE_COV, wide_potential = gaussian([4.0, 1.0, 0.25, 0.01])  # condition 400


def samples(kernel, iterations, seed, burn=200):
    g = torch.Generator().manual_seed(seed)
    state = kernel.init(torch.zeros(DIM, dtype=torch.float64))
    out, accept = [], 0.0
    for it in range(iterations):
        state, info = kernel.step(state, g)
        accept += info.accept_prob
        if it >= burn:
            out.append(state.position)
    return torch.stack(out), accept / iterations


def moments_ok(s, n_eff):
    std = COV.diagonal().sqrt()
    mean_ok = ((s.mean(0) - MEAN).abs() < 5 * std / math.sqrt(n_eff)).all()
    var_ok = ((s.var(0) / COV.diagonal() - 1).abs() < 0.2).all()
    return bool(mean_ok and var_ok)


# metrics that are not the target's covariance: the chain must sample the target all the same
OTHER_DIAGONAL = mass_matrix.diagonal(torch.tensor([2.0, 0.5, 1.0, 0.3], dtype=torch.float64))
OTHER_DENSE = mass_matrix.dense(COV + 0.5 * torch.eye(DIM, dtype=torch.float64))


@pytest.mark.parametrize("m, step", [(OTHER_DIAGONAL, 0.6), (OTHER_DENSE, 0.6), (mass_matrix.dense(COV), 1.2)])
def test_hmc_with_a_metric_samples_the_target(m, step):
    kernel = hmc.build(potential, 3, step, metric=m)
    for seed in (0, 1):
        s, accept = samples(kernel, 3000, seed)
        assert 0.3 < accept < 0.99, accept  # steps large enough that the Metropolis test matters
        assert moments_ok(s, n_eff=len(s) / 10), seed


@pytest.mark.parametrize("mutant", ["kinetic", "momentum"])
def test_a_metric_ignored_by_the_kinetic_energy_or_the_momentum_is_caught(monkeypatch, mutant):
    if mutant == "kinetic":  # p^T p / 2 whatever the metric
        monkeypatch.setattr(mass_matrix.Metric, "kinetic_energy", lambda self, p: 0.5 * (p * p).sum())
    else:  # p ~ N(0, I) whatever the metric
        monkeypatch.setattr(
            mass_matrix.Metric,
            "sample_momentum",
            lambda self, like, g: torch.randn(like.shape, generator=g, dtype=like.dtype),
        )
    kernel = hmc.build(potential, 3, 0.6, metric=OTHER_DENSE)
    assert not all(moments_ok(samples(kernel, 3000, seed)[0], 290) for seed in (0, 1))


def test_the_target_covariance_as_metric_mixes_where_the_identity_does_not():
    # same budget, each with the largest step its narrowest direction allows at ~0.8 acceptance
    preconditioned, _ = samples(hmc.build(wide_potential, 3, 0.6, metric=mass_matrix.dense(WIDE_COV)), 600, 0, burn=100)
    plain, _ = samples(hmc.build(wide_potential, 3, 0.09), 600, 0, burn=100)
    wide = ROT[:, 0]  # the target's widest direction, variance 4

    def lag1(x):  # autocorrelation of successive states along the wide direction
        x = x - x.mean()
        return float((x[1:] * x[:-1]).sum() / (x * x).sum())

    assert lag1(preconditioned @ wide) < 0.5
    assert lag1(plain @ wide) > 0.9


def test_leapfrog_with_a_dense_metric_is_reversible_and_conserves_energy():
    m = OTHER_DENSE
    q0 = torch.tensor([0.3, 0.1, -1.0, 2.0], dtype=torch.float64)
    p0 = torch.tensor([0.5, -1.0, 0.2, 0.1], dtype=torch.float64)
    u0, g0 = potential(q0)
    q1, p1, u1, g1 = leapfrog(q0, p0, g0, 0.01, 50, potential, m)
    q2, p2, _, _ = leapfrog(q1, -p1, g1, 0.01, 50, potential, m)
    assert torch.allclose(q2, q0, atol=1e-10) and torch.allclose(-p2, p0, atol=1e-10)
    assert abs(float(u1 + m.kinetic_energy(p1) - u0 - m.kinetic_energy(p0))) < 1e-2


def test_momentum_has_the_mass_matrix_as_covariance():
    g = torch.Generator().manual_seed(0)
    like = torch.zeros(DIM, dtype=torch.float64)
    p = torch.stack([OTHER_DENSE.sample_momentum(like, g) for _ in range(20000)])
    mass = torch.linalg.inv(OTHER_DENSE.inverse_mass)
    assert torch.allclose(torch.cov(p.T), mass, atol=0.05 * float(mass.abs().max()))


def test_estimate_shrinks_and_scales_to_unit_mean_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, DIM, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(COV).T
    dense, diag = mass_matrix.estimate(x, "dense"), mass_matrix.estimate(x, "diagonal")
    cov = torch.cov(x.T)
    expected = 200 / 205 * cov + 1e-3 * 5 / 205 * torch.eye(DIM, dtype=torch.float64)
    assert torch.allclose(dense.inverse_mass, expected / expected.diagonal().mean())
    assert torch.allclose(diag.inverse_mass, expected.diagonal() / expected.diagonal().mean())
    assert mass_matrix.estimate(x, "identity").inverse_mass is None
    assert float(diag.inverse_mass.mean()) == pytest.approx(1.0)


def test_burn_in_window_finds_a_diagonal_metric_that_mixes_a_badly_scaled_target():
    std = torch.tensor([10.0, 1.0, 0.1, 0.01], dtype=torch.float64)

    def scaled(q):
        z = q / std
        return 0.5 * (z * z).sum(), z / std

    def run(adapt_mass):
        chains = []
        for seed in range(4):
            g = torch.Generator().manual_seed(seed)
            kernel = hmc.build(scaled, 5, 0.01)
            mass = MassAdapter(400) if adapt_mass else None
            chains.append(
                run_chain(
                    kernel, torch.zeros(4, dtype=torch.float64), g, 900, 400, 1, 0, StepSizeAdapter(0.01), None, mass
                )
            )
        return chains

    adapted, plain = run(True), run(False)
    assert all(c.metric == "diagonal" for c in adapted) and all(c.metric == "identity" for c in plain)
    ratio = lambda chains: float(torch.stack([s for c in chains for s in c.samples])[:, 0].var()) / 100.0  # noqa: E731
    assert abs(ratio(adapted) - 1) < 0.3  # the widest coordinate (std 10) is explored
    assert ratio(plain) < 0.3  # with one step size for std 0.01 and std 10 it barely moves
