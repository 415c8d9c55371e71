"""Hamiltonian Monte Carlo with a Metropolis-Hastings correction.

Target pi(q) ∝ exp(-U(q)); momentum p ~ N(0, I) (unit mass, matching the kinetic energy p^T p / 2).
A proposal (q', p') from the leapfrog integrator is accepted with probability
min(1, exp(-(H(q', p') - H(q, p)))), H = U + K. (The official evaluation code of the paper had the sign of
the kinetic-energy difference wrong and drew p with std 0.1 while assuming unit mass; both are fixed here.)

With reduced-precision gradients (bf16), the leapfrog map stays reversible and volume-preserving (the gradient
is still a deterministic function of q), so the chain targets exp(-U) exactly as long as the Metropolis test
uses the exact energy: ``potential`` gives it (the fp32 U at the proposal; one forward pass, no backward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .integrators import PotentialAndGrad, leapfrog


@dataclass
class HMCState:
    position: torch.Tensor
    potential: torch.Tensor
    grad: torch.Tensor


@dataclass
class HMCInfo:
    accepted: bool
    accept_prob: float
    delta_h: float


def kinetic_energy(p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p * p).sum()


def energy_change(u0: torch.Tensor, k0: torch.Tensor, u1: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    """Delta H = H(q', p') - H(q, p)."""
    return (u1 + k1) - (u0 + k0)


def metropolis_accept(delta_h: torch.Tensor, g: torch.Generator) -> tuple[bool, float]:
    """Accept with probability min(1, exp(-delta_h)); returns (accepted, acceptance probability)."""
    dh = float(delta_h)
    if not math.isfinite(dh):
        return False, 0.0
    prob = math.exp(min(0.0, -dh))
    u = float(torch.rand((), generator=g, device=g.device))
    return u < prob, prob


@dataclass(frozen=True)
class HMCKernel:
    """``init(q) -> HMCState``; ``step(state, g) -> (HMCState, HMCInfo)``."""

    potential_and_grad: PotentialAndGrad
    num_leapfrog: int
    step_size: float
    potential: Callable[[torch.Tensor], torch.Tensor] | None = None

    def init(self, position: torch.Tensor) -> HMCState:
        potential, grad = self.potential_and_grad(position)
        if self.potential is not None:
            potential = self.potential(position)
        return HMCState(position, potential, grad)

    def step(self, state: HMCState, g: torch.Generator) -> tuple[HMCState, HMCInfo]:
        p0 = torch.randn(state.position.shape, generator=g, device=state.position.device, dtype=state.position.dtype)
        q1, p1, u1, grad1 = leapfrog(
            state.position, p0, state.grad, self.step_size, self.num_leapfrog, self.potential_and_grad
        )
        if self.potential is not None:
            u1 = self.potential(q1)
        delta_h = energy_change(state.potential, kinetic_energy(p0), u1, kinetic_energy(p1))
        accepted, prob = metropolis_accept(delta_h, g)
        new = HMCState(q1, u1, grad1) if accepted else state
        return new, HMCInfo(accepted, prob, float(delta_h))


def build(
    potential_and_grad: PotentialAndGrad,
    num_leapfrog: int,
    step_size: float,
    potential: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> HMCKernel:
    """HMC on pi(q) ∝ exp(-U(q)).

    Args:
        potential_and_grad: q -> (U(q), dU/dq(q)), driving the leapfrog integrator.
        num_leapfrog: leapfrog steps per proposal.
        step_size: leapfrog step size (the chain driver's adaptation replaces it during burn-in).
        potential: q -> U(q) for the Metropolis test when the integrator's U is not exact (bf16); None: use
            the U of ``potential_and_grad``.
    """
    return HMCKernel(potential_and_grad, num_leapfrog, step_size, potential)
