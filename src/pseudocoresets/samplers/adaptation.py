"""Adaptation outside the kernels (used by the chain driver during burn-in only): the step size, and a diagonal
mass matrix estimated from a window of the burn-in."""

from __future__ import annotations

import math

import torch

from .mass import Metric, WelfordVariance


class StepSizeAdapter:
    """Robbins-Monro adaptation of the log step size towards a target acceptance probability:

    log eps_t = log eps_(t-1) + (a_t - target) / t^0.6.
    """

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

    def restart(self) -> None:
        """Start the gain schedule again (after the metric changed), keeping the current step size."""
        self.t = 0


class MassAdapter:
    """A diagonal mass matrix from the chain's own burn-in, in windows of doubling length (Stan's windowed
    adaptation): after the first tenth of the burn-in, the positions of each window give running variances
    (Welford); at the window's end the kernel's inverse mass becomes their regularised, unit-mean form
    (samplers/mass.py, Eq. M1), the step-size adaptation starts its schedule again, and the next window
    (twice as long) estimates afresh with the better-mixing chain. Windows cover burn-in iterations
    [B/10, B - B/10); k = floor(log2(span/10 + 1)) of them (at most 5), lengths proportional to 1, 2, 4, ...
    The last tenth adapts the step size to the final metric."""

    def __init__(self, burn_in: int):
        start, end = burn_in // 10, burn_in - burn_in // 10
        span = end - start
        count = min(5, max(1, int(math.log2(span / 10 + 1)))) if span >= 2 else 0
        base = span / (2**count - 1) if count else 0.0
        self.ends = [start + round(base * (2 ** (i + 1) - 1)) for i in range(count)]
        self.start = start
        self.variance = WelfordVariance()

    def observe(self, iteration: int, position: torch.Tensor) -> Metric | None:
        """Record the position after ``iteration``; at a window's last iteration return the new metric."""
        if not self.ends or not self.start <= iteration < self.ends[-1]:
            return None
        self.variance.update(position)
        if iteration + 1 in self.ends:
            metric, self.variance = self.variance.metric(position.dtype), WelfordVariance()
            return metric
        return None
