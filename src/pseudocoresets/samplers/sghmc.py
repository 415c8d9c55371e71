"""Stochastic-gradient HMC (Chen, Fox & Guestrin 2014), in the friction / learning-rate form of their Eq. 15.

    v <- (1 - alpha) v - eta * grad U~(theta) + N(0, 2 alpha eta T I),   theta <- theta + v,

with friction alpha, step eta, temperature T and a stochastic gradient grad U~ of the *untempered* potential U.
No Metropolis test; for small eta the chain targets pi(theta) ∝ exp(-U(theta) / T). In A-SGHMC (the paper's
Section 5.1) the noise in grad U~ comes from a fresh augmentation of the fixed coreset at every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

StochasticGrad = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class SGHMCState:
    position: torch.Tensor
    velocity: torch.Tensor


@dataclass
class SGHMCInfo:
    accept_prob: None = None  # no Metropolis test


@dataclass(frozen=True)
class SGHMCKernel:
    """``init(q) -> SGHMCState``; ``step(state, g) -> (SGHMCState, SGHMCInfo)``."""

    grad_fn: StochasticGrad
    step_size: float
    friction: float
    temperature: float

    def init(self, position: torch.Tensor) -> SGHMCState:
        return SGHMCState(position.detach(), torch.zeros_like(position))

    def step(self, state: SGHMCState, g: torch.Generator) -> tuple[SGHMCState, SGHMCInfo]:
        grad = self.grad_fn(state.position, g)
        noise = torch.randn(state.position.shape, generator=g, device=state.position.device, dtype=state.position.dtype)
        noise_std = math.sqrt(2 * self.friction * self.step_size * self.temperature)
        v = (1 - self.friction) * state.velocity - self.step_size * grad + noise_std * noise
        return SGHMCState(state.position + v, v), SGHMCInfo()


def build(grad_fn: StochasticGrad, step_size: float, friction: float, temperature: float) -> SGHMCKernel:
    """SGHMC targeting exp(-U / T).

    Args:
        grad_fn: (theta, generator) -> a stochastic estimate of dU/dtheta (untempered).
        step_size: eta, the learning-rate form's step.
        friction: alpha in (0, 1].
        temperature: T; the injected noise is N(0, 2 alpha eta T).
    """
    if not 0 < friction <= 1:
        raise ValueError("friction must be in (0, 1]")
    return SGHMCKernel(grad_fn, step_size, friction, temperature)
