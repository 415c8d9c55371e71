"""Hamiltonian Monte Carlo with a Metropolis-Hastings correction.

Target pi(q) ∝ exp(-U(q)); momentum p ~ N(0, I) (unit mass, matching the kinetic energy p^T p / 2).
A proposal (q', p') from the leapfrog integrator is accepted with probability
min(1, exp(-(H(q', p') - H(q, p)))), H = U + K. (The official evaluation code of the paper had the sign of
the kinetic-energy difference wrong and drew p with std 0.1 while assuming unit mass; both are fixed here.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .integrators import PotentialAndGrad, leapfrog


@dataclass
class HMCState:
    position: torch.Tensor
    potential: torch.Tensor
    grad: torch.Tensor


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


class HMCKernel:
    """``init(q) -> state``; ``step(state, g, step_size) -> (state, info)``."""

    def __init__(self, potential_and_grad: PotentialAndGrad, num_leapfrog: int):
        self.potential_and_grad = potential_and_grad
        self.num_leapfrog = num_leapfrog

    def init(self, position: torch.Tensor) -> HMCState:
        potential, grad = self.potential_and_grad(position)
        return HMCState(position, potential, grad)

    def step(self, state: HMCState, g: torch.Generator, step_size: float) -> tuple[HMCState, dict]:
        p0 = torch.randn(state.position.shape, generator=g, device=state.position.device, dtype=state.position.dtype)
        q1, p1, u1, grad1 = leapfrog(
            state.position, p0, state.grad, step_size, self.num_leapfrog, self.potential_and_grad
        )
        delta_h = energy_change(state.potential, kinetic_energy(p0), u1, kinetic_energy(p1))
        accepted, prob = metropolis_accept(delta_h, g)
        new = HMCState(q1, u1, grad1) if accepted else state
        return new, {"accepted": accepted, "accept_prob": prob, "delta_h": float(delta_h)}


def build_hmc(potential_and_grad: PotentialAndGrad, num_leapfrog: int) -> HMCKernel:
    return HMCKernel(potential_and_grad, num_leapfrog)


class StepSizeAdapter:
    """Robbins-Monro adaptation of log step size towards a target acceptance probability (burn-in only)."""

    def __init__(self, step_size: float, target: float = 0.75):
        self.log_step = math.log(step_size)
        self.target = target
        self.t = 0

    @property
    def step_size(self) -> float:
        return math.exp(self.log_step)

    def update(self, accept_prob: float) -> None:
        self.t += 1
        self.log_step += (accept_prob - self.target) / (self.t**0.6)
