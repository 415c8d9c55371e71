"""Regularised ZCA whitening, fitted on the train split and applied to every split.

This is the whitening commonly used in dataset distillation (KIP, MTT and successors use
``kornia.enhance.ZCAWhitening(eps=0.1)``). With ``X`` the train images flattened to [N, D]:

    mu     = mean of X over the N rows                       (per-feature train mean)
    Sigma  = (X - mu)^T (X - mu) / (N - 1)                    (unbiased covariance, D x D)
    Sigma  = U diag(lambda) U^T                               (eigen-decomposition; lambda clamped at 0)
    W      = U diag(1 / sqrt(lambda + eps)) U^T               (whitening matrix)
    W^-1   = U diag(sqrt(lambda + eps)) U^T                   (its exact inverse)

    transform(x) = (x - mu) W          inverse(z) = z W^-1 + mu

with ``eps`` the ``regularization`` (default 0.1). Because W is symmetric, row-vector and
column-vector conventions agree. All arithmetic is done in float64; results come back in the
input dtype. Inputs may be [N, D] or any [N, ...] (e.g. [N, C, H, W]); outputs keep the shape.
"""

from __future__ import annotations

import torch

from ..errors import UserError

__all__ = ["ZCA"]

_STATE_KEYS = ("mean", "eigenvalues", "eigenvectors", "regularization")


def _flat(x: torch.Tensor) -> torch.Tensor:
    if x.dim() < 2:
        raise ValueError(f"ZCA expects a batch [N, ...] of images, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"ZCA expects floating-point images, got {x.dtype}")
    return x.reshape(x.shape[0], -1)


class ZCA:
    """A fitted regularised ZCA whitening; build with :meth:`fit` or :meth:`from_state`."""

    def __init__(
        self, mean: torch.Tensor, eigenvalues: torch.Tensor, eigenvectors: torch.Tensor, regularization: float
    ):
        d = mean.numel()
        if eigenvalues.shape != (d,) or eigenvectors.shape != (d, d):
            raise UserError(
                f"inconsistent ZCA state: mean {tuple(mean.shape)}, eigenvalues {tuple(eigenvalues.shape)}, "
                f"eigenvectors {tuple(eigenvectors.shape)}"
            )
        self.regularization = float(regularization)
        self.mean = mean.reshape(d).to(torch.float64)
        self.eigenvalues = eigenvalues.to(torch.float64)
        self.eigenvectors = eigenvectors.to(torch.float64)
        shifted = self.eigenvalues + self.regularization
        if not bool((shifted > 0).all()):
            raise UserError("ZCA needs eigenvalue + regularization > 0 everywhere; use a positive regularization")
        u = self.eigenvectors
        self.whiten = (u * shifted.rsqrt()) @ u.T  # U diag(1/sqrt(lambda+eps)) U^T
        self.unwhiten = (u * shifted.sqrt()) @ u.T  # U diag(sqrt(lambda+eps)) U^T

    @property
    def num_features(self) -> int:
        return self.mean.numel()

    @classmethod
    def fit(cls, x: torch.Tensor, regularization: float = 0.1, chunk_size: int = 4096) -> ZCA:
        """Fit on train images ``x`` ([N, D] or [N, C, H, W]); ``regularization`` is the eps added to eigenvalues.

        The mean and covariance are accumulated in float64 over chunks of ``chunk_size`` rows,
        so a float32 train set is never copied whole to float64.
        """
        if regularization < 0:
            raise UserError(f"ZCA regularization must be >= 0, got {regularization}")
        flat = _flat(x).detach()
        n, d = flat.shape
        if n < 2:
            raise UserError(f"ZCA needs at least 2 training images, got {n}")
        total = torch.zeros(d, dtype=torch.float64, device=flat.device)
        for i in range(0, n, chunk_size):
            total += flat[i : i + chunk_size].to(torch.float64).sum(0)
        mean = total / n
        cov = torch.zeros(d, d, dtype=torch.float64, device=flat.device)
        for i in range(0, n, chunk_size):
            xc = flat[i : i + chunk_size].to(torch.float64) - mean
            cov.addmm_(xc.T, xc)
        cov /= n - 1
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        # The covariance is positive semi-definite; round-off can leave tiny negative eigenvalues.
        return cls(mean, eigenvalues.clamp_min(0.0), eigenvectors.contiguous(), regularization)

    def _apply(
        self,
        x: torch.Tensor,
        matrix: torch.Tensor,
        before: torch.Tensor | None,
        after: torch.Tensor | None,
        chunk_size: int,
    ) -> torch.Tensor:
        flat = _flat(x)
        if flat.shape[1] != self.num_features:
            raise ValueError(f"ZCA was fitted on {self.num_features} features, got {flat.shape[1]}")
        matrix = matrix.to(flat.device)
        before = None if before is None else before.to(flat.device)
        after = None if after is None else after.to(flat.device)
        out = []
        for i in range(0, flat.shape[0], chunk_size):
            v = flat[i : i + chunk_size].to(torch.float64)
            if before is not None:
                v = v - before
            v = v @ matrix
            if after is not None:
                v = v + after
            out.append(v.to(x.dtype))
        if not out:
            return x.clone()
        return torch.cat(out).reshape(x.shape)

    def transform(self, x: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
        """Whiten any split with the train fit: ``(x - mu) W``; same shape and dtype as ``x``."""
        return self._apply(x, self.whiten, self.mean, None, chunk_size)

    def inverse(self, z: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
        """Undo :meth:`transform`: ``z W^-1 + mu``; same shape and dtype as ``z``."""
        return self._apply(z, self.unwhiten, None, self.mean, chunk_size)

    def to(self, device: torch.device | str) -> ZCA:
        """Move the fitted tensors (float64) to ``device`` in place; returns ``self``."""
        for name in ("mean", "eigenvalues", "eigenvectors", "whiten", "unwhiten"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """Contiguous float64 CPU tensors for ``safetensors``; W and W^-1 are rebuilt by :meth:`from_state`."""
        return {
            "mean": self.mean.detach().cpu().contiguous(),
            "eigenvalues": self.eigenvalues.detach().cpu().contiguous(),
            "eigenvectors": self.eigenvectors.detach().cpu().contiguous(),
            "regularization": torch.tensor([self.regularization], dtype=torch.float64),
        }

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> ZCA:
        """Rebuild from :meth:`state` (e.g. after ``safetensors.torch.load``)."""
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise UserError(f"ZCA state is missing {', '.join(missing)}; was it saved by ZCA.state()?")
        reg = float(state["regularization"].reshape(-1)[0])
        return cls(state["mean"], state["eigenvalues"], state["eigenvectors"], reg)
