"""The tempered coreset posterior, written once for every sampler and protocol.

    pi_u(theta) ∝ exp( -U(theta) / T ),   U(theta) = sum_m CE(f(u_m; theta), y_m) + ||theta||^2 / (2 sigma^2),

i.e. exp((1/T) [sum_m log p(y_m | u_m, theta) + log N(theta; 0, sigma^2 I)]). HMC needs the tempered potential
U / T and its gradient (:meth:`CoresetPosterior.potential_and_grad`); SGHMC takes the untempered gradient of U
and puts T into its injected noise (:meth:`CoresetPosterior.energy_grad`, optionally on a fresh augmentation of
the coreset per call, as A-SGHMC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..models import FlatModel


@dataclass
class CoresetPosterior:
    model: FlatModel
    x: torch.Tensor
    y: torch.Tensor
    prior_std: float
    temperature: float = 1.0

    def energy(self, theta: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """U(theta): summed cross-entropy on the coreset (or on ``x``, e.g. an augmented copy) plus the prior."""
        nll_sum = F.cross_entropy(self.model(theta, self.x if x is None else x), self.y, reduction="sum")
        return nll_sum + 0.5 * (theta * theta).sum() / self.prior_std**2

    def potential_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U(theta) / T, grad U / T): the potential of pi_u for HMC."""
        theta = theta.detach().requires_grad_(True)
        u = self.energy(theta) / self.temperature
        (grad,) = torch.autograd.grad(u, theta)
        return u.detach(), grad

    def energy_grad(self, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None):
        """(theta, g) -> grad U(theta), the coreset augmented afresh by ``augment`` at every call if given."""

        def grad_fn(theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            theta = theta.detach().requires_grad_(True)
            x = None if augment is None else augment(self.x, g)
            (grad,) = torch.autograd.grad(self.energy(theta, x), theta)
            return grad

        return grad_fn
