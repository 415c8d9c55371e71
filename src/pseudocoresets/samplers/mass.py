"""The mass matrix of HMC (its metric): momentum p ~ N(0, M), kinetic energy K(p) = p^T M^{-1} p / 2, and the
drift of the leapfrog integrator dq/dt = M^{-1} p (Neal 2011, Sec. 4.1; Betancourt 2017, Sec. 4.2).

With M^{-1} equal to the target's covariance Sigma, HMC on N(mu, Sigma) moves as it would on N(0, I): the step
size is then limited by the target's scale, not by its narrowest direction, and an ill-conditioned target mixes
as fast as a round one. Any positive definite M leaves the target exp(-U) invariant, so a metric estimated from
other samples (the full-data posterior's, or a burn-in's) changes only how fast a chain mixes, never what it
samples.

A metric is represented by its inverse mass: ``None`` (identity), a vector (diagonal M^{-1}) or a matrix (dense
M^{-1} = L L^T, L its Cholesky factor). For a dense one the momentum is p = L^{-T} z, z ~ N(0, I), whose covariance
L^{-T} L^{-1} = (L L^T)^{-1} = M.

``estimate`` builds one from samples: their covariance (a diagonal one: their variances), shrunk towards a
multiple of the identity as Stan does for its warm-up windows,

    Sigma_reg = n / (n + 5) * Sigma + 1e-3 * 5 / (n + 5) * I,                                      (M1)

and scaled to a unit mean variance, so that the metric carries the target's shape and the step size (adapted
separately) its scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError

KINDS = ("identity", "diagonal", "dense")
DENSE_MAX_DIM = 4000
"""A dense metric keeps a P x P matrix: refused above this many parameters (use a diagonal one)."""


@dataclass(frozen=True)
class Metric:
    """Inverse mass M^{-1}: None (identity), [P] (diagonal) or [P, P] (dense), with its Cholesky factor."""

    inverse_mass: torch.Tensor | None = None
    cholesky: torch.Tensor | None = None  # lower L with L L^T = M^{-1} (dense only)

    @property
    def kind(self) -> str:
        if self.inverse_mass is None:
            return "identity"
        return "diagonal" if self.inverse_mass.dim() == 1 else "dense"

    def sample_momentum(self, like: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(like.shape, generator=g, device=like.device, dtype=like.dtype)
        if self.inverse_mass is None:
            return z
        if self.inverse_mass.dim() == 1:
            return z / self.inverse_mass.sqrt()
        return torch.linalg.solve_triangular(self.cholesky.T, z.unsqueeze(1), upper=True).squeeze(1)

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        """dq/dt = M^{-1} p."""
        if self.inverse_mass is None:
            return p
        if self.inverse_mass.dim() == 1:
            return self.inverse_mass * p
        return self.inverse_mass @ p

    def kinetic_energy(self, p: torch.Tensor) -> torch.Tensor:
        """K(p) = p^T M^{-1} p / 2."""
        return 0.5 * (p * self.velocity(p)).sum()

    def to(self, dtype: torch.dtype) -> "Metric":
        if self.inverse_mass is None or self.inverse_mass.dtype == dtype:
            return self
        return Metric(self.inverse_mass.to(dtype), None if self.cholesky is None else self.cholesky.to(dtype))


IDENTITY = Metric()


def diagonal(inverse_mass: torch.Tensor) -> Metric:
    if inverse_mass.dim() != 1 or not bool((inverse_mass > 0).all()):
        raise ValueError("a diagonal inverse mass is a vector of positive entries")
    return Metric(inverse_mass)


def dense(inverse_mass: torch.Tensor) -> Metric:
    inverse_mass = 0.5 * (inverse_mass + inverse_mass.T)
    cholesky, info = torch.linalg.cholesky_ex(inverse_mass)
    if int(info) != 0:
        raise ValueError("a dense inverse mass must be symmetric positive definite")
    return Metric(inverse_mass, cholesky)


def estimate(samples: torch.Tensor, kind: str) -> Metric:
    """A metric of ``kind`` from samples [n, P] of (roughly) the target: Eq. (M1), scaled to unit mean variance."""
    if kind not in KINDS:
        raise UserError(f"the mass matrix must be one of {', '.join(KINDS)} (got {kind!r})")
    if kind == "identity":
        return IDENTITY
    n, dim = samples.shape
    if n < 2:
        raise UserError("a mass matrix needs at least 2 samples to estimate it from")
    x = samples.double()
    centred = x - x.mean(0)
    shrink = n / (n + 5.0)
    if kind == "diagonal":
        var = shrink * centred.pow(2).sum(0) / (n - 1) + 1e-3 * (1 - shrink)
        return diagonal((var / var.mean()).to(samples.dtype))
    if dim > DENSE_MAX_DIM:
        raise UserError(f"a dense mass matrix over {dim} parameters is too large; use a diagonal one")
    cov = shrink * centred.T @ centred / (n - 1) + 1e-3 * (1 - shrink) * torch.eye(dim, dtype=x.dtype)
    return dense((cov / cov.diagonal().mean()).to(samples.dtype))


class WelfordVariance:
    """Running mean and variance of flat vectors (Welford 1962), for a diagonal metric estimated in burn-in."""

    def __init__(self):
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        self.count += 1
        if self.mean is None:
            self.mean, self.m2 = x.clone(), torch.zeros_like(x)
            return
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def metric(self, dtype: torch.dtype) -> Metric:
        """Diagonal metric of Eq. (M1) from the variances seen so far (identity below 2 samples)."""
        n = self.count
        if n < 2:
            return IDENTITY
        shrink = n / (n + 5.0)
        var = shrink * self.m2 / (n - 1) + 1e-3 * (1 - shrink)
        return diagonal((var / var.mean()).to(dtype))
