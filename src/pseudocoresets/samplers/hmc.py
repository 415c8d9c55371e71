"""Hamiltonian Monte Carlo with a Metropolis-Hastings correction.

Target pi(q) ∝ exp(-U(q)); momentum p ~ N(0, M), kinetic energy p^T M^{-1} p / 2 (unit mass M = I unless a
``metric`` is given, samplers/mass.py: a diagonal or dense mass matrix, e.g. estimated during burn-in).
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
from .mass import IDENTITY, Metric


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


def kinetic_energy(p: torch.Tensor, metric: Metric = IDENTITY) -> torch.Tensor:
    return metric.kinetic_energy(p)


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
    metric: Metric = IDENTITY

    def init(self, position: torch.Tensor) -> HMCState:
        potential, grad = self.potential_and_grad(position)
        if self.potential is not None:
            potential = self.potential(position)
        return HMCState(position, potential, grad)

    def step(self, state: HMCState, g: torch.Generator) -> tuple[HMCState, HMCInfo]:
        metric = self.metric.to(state.position.dtype)
        p0 = metric.sample_momentum(state.position, g)
        q1, p1, u1, grad1 = leapfrog(
            state.position, p0, state.grad, self.step_size, self.num_leapfrog, self.potential_and_grad, metric
        )
        if self.potential is not None:
            u1 = self.potential(q1)
        delta_h = energy_change(state.potential, kinetic_energy(p0, metric), u1, kinetic_energy(p1, metric))
        accepted, prob = metropolis_accept(delta_h, g)
        new = HMCState(q1, u1, grad1) if accepted else state
        return new, HMCInfo(accepted, prob, float(delta_h))


def build(
    potential_and_grad: PotentialAndGrad,
    num_leapfrog: int,
    step_size: float,
    potential: Callable[[torch.Tensor], torch.Tensor] | None = None,
    metric: Metric = IDENTITY,
) -> HMCKernel:
    """HMC on pi(q) ∝ exp(-U(q)).

    Args:
        potential_and_grad: q -> (U(q), dU/dq(q)), driving the leapfrog integrator.
        num_leapfrog: leapfrog steps per proposal.
        step_size: leapfrog step size (the chain driver's adaptation replaces it during burn-in).
        potential: q -> U(q) for the Metropolis test when the integrator's U is not exact (bf16); None: use
            the U of ``potential_and_grad``.
        metric: the mass matrix (samplers/mass.py); the identity by default. The chain driver may replace it
            after a burn-in window (``run_chain``'s ``mass_adapter``).
    """
    return HMCKernel(potential_and_grad, num_leapfrog, step_size, potential, metric)
