"""The coreset posterior at T != 1 on Bayesian linear regression: HMC on ``CoresetPosterior.potential_and_grad``
and SGHMC on its ``energy_grad`` sample the exact tempered posterior N(mean, T * cov0) (weighted, w != 1, too).
Dropping the temperature from the potential (HMC then samples T = 1) or from SGHMC's noise is caught."""

import math

import pytest
import torch

from pseudocoresets.fidelity.blr import BLRProblem
from pseudocoresets.samplers import CoresetPosterior, hmc, sghmc


def _problem(temperature, weight):
    problem = BLRProblem.synthetic(n=60, d=3, m=6, seed=1, prior_std=2.0, temperature=temperature, weight=weight)
    post = CoresetPosterior.from_spec(problem.model(), problem.u0, problem.v, problem.posterior)
    mean, cov = problem.coreset_posterior(problem.u0)
    return post, mean, cov


def _moments_match(samples, mean, cov, n_eff):
    std = cov.diagonal().sqrt()
    mean_ok = ((samples.mean(0) - mean).abs() < 5 * std / math.sqrt(n_eff)).all()
    var_ok = ((samples.var(0) / cov.diagonal() - 1).abs() < 0.25).all()
    return bool(mean_ok and var_ok)


def hmc_samples(post, cov, iterations=1400, seed=0):
    step = 0.6 * float(cov.diagonal().sqrt().min())
    kernel = hmc.build(post.potential_and_grad, 4, step)
    g = torch.Generator().manual_seed(seed)
    state = kernel.init(torch.zeros(post.model.num_params, dtype=torch.float64))
    out = []
    for it in range(iterations):
        state, _ = kernel.step(state, g)
        if it >= 200:
            out.append(state.position)
    return torch.stack(out)


def sghmc_samples(post, cov, steps=16000, seed=0):
    eta = 0.05 * float(cov.diagonal().min()) / post.temperature  # with the untempered variance: eta * grad U ~ x
    kernel = sghmc.build(post.energy_grad(), eta, 0.1, post.temperature)
    g = torch.Generator().manual_seed(seed)
    state = kernel.init(torch.zeros(post.model.num_params, dtype=torch.float64))
    out = []
    for it in range(steps):
        state, _ = kernel.step(state, g)
        if it >= 3000 and it % 5 == 0:
            out.append(state.position)
    return torch.stack(out)


@pytest.mark.parametrize("temperature, weight", [(0.1, 1.0), (4.0, 1.0), (0.1, 20.0)])
def test_hmc_samples_the_tempered_coreset_posterior(temperature, weight):
    post, mean, cov = _problem(temperature, weight)
    assert post.model.num_params == len(mean)
    assert _moments_match(hmc_samples(post, cov), mean, cov, n_eff=1200 / 10)


@pytest.mark.parametrize("temperature, weight", [(0.1, 1.0), (4.0, 1.0)])
def test_sghmc_samples_the_tempered_coreset_posterior(temperature, weight):
    post, mean, cov = _problem(temperature, weight)
    assert _moments_match(sghmc_samples(post, cov), mean, cov, n_eff=2600 / 20)


def test_a_potential_without_the_temperature_is_caught(monkeypatch):
    post, mean, cov = _problem(0.1, 1.0)

    def untempered(self, theta):
        theta = theta.detach().requires_grad_(True)
        u = self.energy(theta)
        (grad,) = torch.autograd.grad(u, theta)
        return u.detach(), grad

    monkeypatch.setattr(CoresetPosterior, "potential_and_grad", untempered)
    samples = hmc_samples(post, cov)
    assert not _moments_match(samples, mean, cov, n_eff=1200 / 10)
    assert float((samples.var(0) / cov.diagonal()).mean()) > 5  # it samples T = 1: ten times the variance


def test_sghmc_noise_without_the_temperature_is_caught():
    post, mean, cov = _problem(0.1, 1.0)
    post.temperature = 1.0  # what SGHMC's noise would be without the coreset posterior's T
    samples = sghmc_samples(post, cov)
    assert not _moments_match(samples, mean, cov, n_eff=2600 / 20)
