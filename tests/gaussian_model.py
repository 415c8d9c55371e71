"""Bayesian linear regression with known noise: every posterior and divergence in closed form.

y_n = theta^T x_n + e_n, e_n ~ N(0, noise^2), prior theta ~ N(0, prior^2 I). Given inputs X [N, d] and
targets y [N], the posterior is N(mu, Sigma) with Sigma^-1 = I / prior^2 + X^T X / noise^2 and
mu = Sigma X^T y / noise^2. The pseudocoreset posterior pi_u uses pseudo-inputs U [M, d] and targets v.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BLR:
    noise: float = 1.0
    prior: float = 3.0

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = x.shape[1]
        precision = torch.eye(d, dtype=x.dtype) / self.prior**2 + x.T @ x / self.noise**2
        cov = torch.linalg.inv(precision)
        cov = 0.5 * (cov + cov.T)
        return cov @ x.T @ y / self.noise**2, cov

    def log_lik(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """1^T f(u, theta): the summed Gaussian log-likelihood (up to a constant)."""
        return -(((y - x @ theta) ** 2).sum()) / (2 * self.noise**2)

    def sample(self, mean: torch.Tensor, cov: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
        chol = torch.linalg.cholesky(cov)
        return mean + torch.randn(n, len(mean), generator=g, dtype=mean.dtype) @ chol.T


def kl_gauss(m0: torch.Tensor, c0: torch.Tensor, m1: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
    """KL(N(m0, c0) || N(m1, c1))."""
    d = len(m0)
    c1_inv = torch.linalg.inv(c1)
    diff = m1 - m0
    return 0.5 * (torch.trace(c1_inv @ c0) + diff @ c1_inv @ diff - d + torch.logdet(c1) - torch.logdet(c0))


def w2_equal_cov(m0: torch.Tensor, m1: torch.Tensor) -> torch.Tensor:
    """Squared 2-Wasserstein distance between Gaussians of equal covariance (Eq. 15): ||m0 - m1||^2."""
    return ((m0 - m1) ** 2).sum()


def make_problem(n: int = 400, d: int = 3, m: int = 6, seed: int = 0):
    """Full data (X, y), and a random coreset (first m rows) to start from."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(d, generator=g, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ theta + torch.randn(n, generator=g, dtype=torch.float64)
    idx = torch.randperm(n, generator=g)[:m]
    return x, y, x[idx].clone(), y[idx].clone(), g


def adam_descent(u0: torch.Tensor, grad_fn, steps: int, lr: float) -> torch.Tensor:
    """Adam on pseudo-inputs with a gradient supplied by ``grad_fn(u)`` (an estimator or the exact one)."""
    u = u0.clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        u.grad = grad_fn(u)
        opt.step()
    return u.detach()
