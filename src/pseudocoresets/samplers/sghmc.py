"""Stochastic-gradient HMC (Chen, Fox & Guestrin 2014), in the friction / learning-rate form of their Eq. 15.

    v <- (1 - alpha) v - eta * grad U~(theta) + N(0, 2 alpha eta T I),   theta <- theta + v,

with friction alpha, step eta, temperature T and a stochastic gradient grad U~. No Metropolis test; for
small eta the chain targets pi(theta) ∝ exp(-U(theta) / T). In A-SGHMC (the paper's Section 5.1) the noise
in grad U~ comes from a fresh augmentation of the fixed coreset at every step, not from mini-batches.
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


class SGHMCKernel:
    """``init(q) -> state``; ``step(state, g) -> state``."""

    def __init__(self, grad_fn: StochasticGrad, step_size: float, friction: float, temperature: float):
        if not 0 < friction <= 1:
            raise ValueError("friction must be in (0, 1]")
        self.grad_fn = grad_fn
        self.step_size = step_size
        self.friction = friction
        self.noise_std = math.sqrt(2 * friction * step_size * temperature)

    def init(self, position: torch.Tensor) -> SGHMCState:
        return SGHMCState(position.detach(), torch.zeros_like(position))

    def step(self, state: SGHMCState, g: torch.Generator) -> SGHMCState:
        grad = self.grad_fn(state.position, g)
        noise = torch.randn(state.position.shape, generator=g, device=state.position.device,
                            dtype=state.position.dtype)
        v = (1 - self.friction) * state.velocity - self.step_size * grad + self.noise_std * noise
        return SGHMCState(state.position + v, v)


def build_sghmc(grad_fn: StochasticGrad, step_size: float, friction: float, temperature: float) -> SGHMCKernel:
    return SGHMCKernel(grad_fn, step_size, friction, temperature)
