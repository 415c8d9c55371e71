"""HMC on a known Gaussian target: moments within Monte-Carlo error; a wrong Metropolis rule is caught."""

import math

import pytest
import torch

from pseudocoresets.samplers import hmc, leapfrog

MEAN = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
STD = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)


def gaussian_potential(q):
    z = (q - MEAN) / STD
    return 0.5 * (z * z).sum(), z / STD


def run_chain(seed, iterations=3000, step_size=0.8, num_leapfrog=3):
    g = torch.Generator().manual_seed(seed)
    kernel = hmc.build(gaussian_potential, num_leapfrog, step_size)
    state = kernel.init(torch.zeros(4, dtype=torch.float64))
    samples, accept = [], 0.0
    for it in range(iterations):
        state, info = kernel.step(state, g)
        accept += info.accept_prob
        if it >= 200:
            samples.append(state.position)
    return torch.stack(samples), accept / iterations


def moments_match(seeds=(0, 1, 2)):
    """Mean within 5 standard errors (effective size n/10) and variance within 20%, for every seed."""
    for seed in seeds:
        s, _ = run_chain(seed)
        n_eff = len(s) / 10
        mean_ok = ((s.mean(0) - MEAN).abs() < 5 * STD / math.sqrt(n_eff)).all()
        var_ok = ((s.var(0) / STD**2 - 1).abs() < 0.2).all()
        if not (mean_ok and var_ok):
            return False
    return True


def test_hmc_recovers_gaussian_moments():
    assert moments_match()
    _, acc = run_chain(0)
    assert 0.3 < acc < 0.99  # the step size is large enough that the Metropolis test matters


def test_wrong_kinetic_sign_is_caught(monkeypatch):
    # The official evaluation's bug: the kinetic-energy difference enters with the wrong sign.
    monkeypatch.setattr(hmc, "energy_change", lambda u0, k0, u1, k1: (u1 - k1) - (u0 - k0))
    assert not moments_match()


def test_always_accept_is_caught(monkeypatch):
    monkeypatch.setattr(hmc, "energy_change", lambda u0, k0, u1, k1: torch.zeros(()))
    assert not moments_match()


def test_leapfrog_is_reversible_and_conserves_energy():
    q0 = torch.tensor([0.3, 0.1, -1.0, 2.0], dtype=torch.float64)
    p0 = torch.tensor([0.5, -1.0, 0.2, 0.1], dtype=torch.float64)
    u0, g0 = gaussian_potential(q0)
    q1, p1, u1, g1 = leapfrog(q0, p0, g0, 0.05, 40, gaussian_potential)
    q2, p2, _, _ = leapfrog(q1, -p1, g1, 0.05, 40, gaussian_potential)
    assert torch.allclose(q2, q0, atol=1e-10) and torch.allclose(-p2, p0, atol=1e-10)
    h0, h1 = u0 + 0.5 * (p0 @ p0), u1 + 0.5 * (p1 @ p1)
    assert abs(float(h1 - h0)) < 1e-2


@pytest.mark.parametrize("delta_h,expected", [(-1.0, 1.0), (0.0, 1.0), (math.log(4.0), 0.25)])
def test_metropolis_probability(delta_h, expected):
    _, prob = hmc.metropolis_accept(torch.tensor(delta_h), torch.Generator().manual_seed(0))
    assert prob == pytest.approx(expected)
