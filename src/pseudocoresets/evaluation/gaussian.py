"""Exact posteriors and divergences of linear-Gaussian models (Bayesian linear regression with known noise).

With inputs X [N, d], targets y [N], noise std s and the coreset posterior's weight w, temperature T and prior
std sigma (samplers/posterior.py: pi ∝ [prod_n N(y_n; x_n^T theta, s^2)^w N(theta; 0, sigma^2 I)]^(1/T)):

    precision  P = (w X^T X / s^2 + I / sigma^2) / T,      mean  mu = (w X^T X / s^2 + I / sigma^2)^-1 w X^T y / s^2.

The full-data posterior is the case w = T = 1. Between Gaussians N(m0, C0) and N(m1, C1):

    KL  = 1/2 [ tr(C1^-1 C0) + (m1 - m0)^T C1^-1 (m1 - m0) - d + log det C1 - log det C0 ],
    W2^2 = ||m0 - m1||^2 + tr(C0 + C1 - 2 (C1^1/2 C0 C1^1/2)^1/2).

Everything is differentiable, so autograd gives exact gradients with respect to coreset inputs. The posterior
predictive of a test input x is N(x^T mu, x^T C x + s^2).
"""

from __future__ import annotations

import torch

from ..samplers import PosteriorSpec
from .metrics import gaussian_predictive_metrics


def linear_gaussian_posterior(
    x: torch.Tensor,
    y: torch.Tensor,
    noise_std: float,
    spec: PosteriorSpec = PosteriorSpec(),
    point_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) of the (weighted, tempered) posterior of y = X theta + N(0, s^2); point m counts
    w v_m times when the spec has per-point weights v (``point_weights``, differentiable, replaces them)."""
    d = x.shape[1]
    v = point_weights if point_weights is not None else spec.multipliers(x)
    xw = x if v is None else v[:, None] * x
    scaled = spec.weight * xw.T @ x / noise_std**2 + torch.eye(d, dtype=x.dtype, device=x.device) / spec.prior_std**2
    mean = torch.linalg.solve(scaled, spec.weight * xw.T @ y / noise_std**2)
    cov = spec.temperature * torch.linalg.inv(scaled)
    return mean, 0.5 * (cov + cov.T)


def kl_gaussian(m0: torch.Tensor, c0: torch.Tensor, m1: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
    """KL(N(m0, c0) || N(m1, c1))."""
    diff = m1 - m0
    c1_inv = torch.linalg.inv(c1)
    return 0.5 * (torch.trace(c1_inv @ c0) + diff @ c1_inv @ diff - len(m0) + torch.logdet(c1) - torch.logdet(c0))


def _sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(0.5 * (c + c.T))
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def w2_squared_gaussian(m0: torch.Tensor, c0: torch.Tensor, m1: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
    """Squared 2-Wasserstein distance between N(m0, c0) and N(m1, c1) (with the covariance term)."""
    root1 = _sqrtm_psd(c1)
    cross = _sqrtm_psd(root1 @ c0 @ root1)
    return ((m0 - m1) ** 2).sum() + torch.trace(c0 + c1 - 2 * cross)


def exact_comparison(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    noise_std: float,
    spec: PosteriorSpec,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
) -> dict:
    """Closed-form comparison of the coreset posterior pi_u (``spec``) with the full-data posterior pi_x (same
    prior, w = T = 1) of Bayesian linear regression: KL both ways, W2, and both exact predictives' metrics on
    the test split (inputs already preprocessed; computed in float64)."""
    d64 = [t.detach().double().cpu() for t in (train_x, train_y, coreset_x, coreset_y, test_x, test_y)]
    train_x, train_y, coreset_x, coreset_y, test_x, test_y = d64
    mx, cx = linear_gaussian_posterior(train_x, train_y, noise_std, PosteriorSpec(1.0, 1.0, spec.prior_std))
    mu, cu = linear_gaussian_posterior(coreset_x, coreset_y, noise_std, spec)

    def predictive(m: torch.Tensor, c: torch.Tensor) -> dict:
        var = ((test_x @ c) * test_x).sum(1) + noise_std**2
        return gaussian_predictive_metrics(test_x @ m, var, test_y)

    return {
        "forward_kl": float(kl_gaussian(mx, cx, mu, cu)),
        "reverse_kl": float(kl_gaussian(mu, cu, mx, cx)),
        "w2": float(w2_squared_gaussian(mu, cu, mx, cx).clamp_min(0).sqrt()),
        "coreset_predictive": predictive(mu, cu),
        "full_predictive": predictive(mx, cx),
    }
