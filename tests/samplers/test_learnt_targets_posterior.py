"""The coreset posterior with learnt real targets (``--evaluate.learnt_targets``, VBPC's coresets): for a linear
network with K outputs, -log p(t_m | u_m, W) = |t_m - W u_m|^2 / (2 s^2), every output's weights have the exact
Gaussian posterior of Bayesian linear regression on that output's targets (weighted by w, tempered by T). HMC on
``CoresetPosterior.potential_and_grad`` recovers it; ignoring the targets (the class labels' likelihood) or their
noise is caught."""

import math

import pytest
import torch

from pseudocoresets.errors import UserError
from pseudocoresets.evaluation.gaussian import linear_gaussian_posterior
from pseudocoresets.models import ModelConfig, build_model
from pseudocoresets.samplers import CoresetPosterior, PosteriorSpec, hmc

D, K, M, NOISE = 3, 2, 8, 0.5
SPEC = PosteriorSpec(weight=3.0, temperature=0.5, prior_std=2.0)


def _setup(target_noise=NOISE, with_targets=True):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(M, D, generator=g, dtype=torch.float64)
    targets = torch.randn(M, K, generator=g, dtype=torch.float64)
    labels = torch.arange(M) % K
    model = build_model(ModelConfig(arch="linear"), (D,), K, dtype=torch.float64)
    post = CoresetPosterior.from_spec(
        model, u, labels, SPEC, targets=targets if with_targets else None, target_noise=target_noise
    )
    # the linear layer's weight is [K, D], flattened row by row: output k's weights are theta[k D:(k + 1) D]
    exact = [linear_gaussian_posterior(u, targets[:, k], NOISE, SPEC) for k in range(K)]
    mean = torch.cat([m for m, _ in exact])
    var = torch.cat([c.diagonal() for _, c in exact])
    return post, mean, var


def _hmc(post, var, iterations=1600, seed=0):
    kernel = hmc.build(post.potential_and_grad, 4, 0.6 * float(var.sqrt().min()))
    g = torch.Generator().manual_seed(seed)
    state = kernel.init(torch.zeros(post.model.num_params, dtype=torch.float64))
    kept = []
    for it in range(iterations):
        state, _ = kernel.step(state, g)
        if it >= 200:
            kept.append(state.position)
    return torch.stack(kept)


def _matches(samples, mean, var, n_eff=1400 / 10):
    mean_ok = ((samples.mean(0) - mean).abs() < 5 * var.sqrt() / math.sqrt(n_eff)).all()
    var_ok = ((samples.var(0) / var - 1).abs() < 0.25).all()
    return bool(mean_ok and var_ok)


def test_hmc_samples_the_exact_posterior_given_learnt_targets():
    post, mean, var = _setup()
    assert post.model.num_params == D * K
    assert _matches(_hmc(post, var), mean, var)


@pytest.mark.parametrize("mutant", ["labels instead of targets", "noise dropped"])
def test_ignoring_the_targets_or_their_noise_is_caught(mutant):
    if mutant == "labels instead of targets":
        post, mean, var = _setup(with_targets=False)
    else:
        post, mean, var = _setup(target_noise=1.0)  # the noise they were learnt with replaced by 1
        _, mean, var = _setup()
    assert not _matches(_hmc(post, var), mean, var)


def test_targets_must_fit_the_coreset():
    model = build_model(ModelConfig(arch="linear"), (D,), K, dtype=torch.float64)
    u, labels = torch.zeros(M, D, dtype=torch.float64), torch.zeros(M, dtype=torch.long)
    with pytest.raises(UserError, match="targets of shape"):
        CoresetPosterior.from_spec(model, u, labels, SPEC, targets=torch.zeros(M - 1, K, dtype=torch.float64))
    with pytest.raises(UserError, match="noise must be > 0"):
        CoresetPosterior.from_spec(
            model, u, labels, SPEC, targets=torch.zeros(M, K, dtype=torch.float64), target_noise=0
        )
