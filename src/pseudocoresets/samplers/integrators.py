"""Symplectic integrators for H(q, p) = U(q) + p^T M^{-1} p / 2 (unit mass M = I unless a metric is given)."""

from __future__ import annotations

from typing import Callable

import torch

from .mass import IDENTITY, Metric

PotentialAndGrad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def leapfrog(
    q: torch.Tensor,
    p: torch.Tensor,
    grad: torch.Tensor,
    step_size: float,
    num_steps: int,
    potential_and_grad: PotentialAndGrad,
    metric: Metric = IDENTITY,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``num_steps`` leapfrog steps (Neal 2011, Eq. 5.18-5.20): half kick, (drift, kick)*, half kick.

    ``grad`` is dU/dq at ``q``; each drift moves q by step_size * M^{-1} p (``metric``, samplers/mass.py).
    Returns (q, p, U(q), dU/dq(q)) at the end of the trajectory.
    """
    p = p - 0.5 * step_size * grad
    potential = None
    for i in range(num_steps):
        q = q + step_size * metric.velocity(p)
        potential, grad = potential_and_grad(q)
        p = p - (step_size if i < num_steps - 1 else 0.5 * step_size) * grad
    return q, p, potential, grad
