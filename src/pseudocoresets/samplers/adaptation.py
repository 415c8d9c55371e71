"""Step-size adaptation outside the kernels (used by the chain driver during burn-in only)."""

from __future__ import annotations

import math


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
