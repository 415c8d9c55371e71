"""Symplectic integrators for H(q, p) = U(q) + p^T p / 2 (unit mass)."""

from __future__ import annotations

from typing import Callable

import torch

PotentialAndGrad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def leapfrog(
    q: torch.Tensor,
    p: torch.Tensor,
    grad: torch.Tensor,
    step_size: float,
    num_steps: int,
    potential_and_grad: PotentialAndGrad,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``num_steps`` leapfrog steps (Neal 2011, Eq. 5.18-5.20): half kick, (drift, kick)*, half kick.

    ``grad`` is dU/dq at ``q``. Returns (q, p, U(q), dU/dq(q)) at the end of the trajectory.
    """
    p = p - 0.5 * step_size * grad
    potential = None
    for i in range(num_steps):
        q = q + step_size * p
        potential, grad = potential_and_grad(q)
        p = p - (step_size if i < num_steps - 1 else 0.5 * step_size) * grad
    return q, p, potential, grad
