"""BPC-fKL: forward KL divergence D_KL[pi_x || pi_u] (Section 3.3, Algorithm 1 of the paper).

With Gaussian approximations q_u = N(theta_u^(L_u), Sigma_u) and q_x = N(theta_x^(L_x), Sigma_x)
(Eq. 18) and a stop-gradient through the student trajectory, the gradient of the forward KL is the
gradient of the surrogate (Eq. 20)

    J(u) = 1/S sum_s [ 1^T f(u, sg(theta_u + Sigma_u^1/2 eps_u^s)) - 1^T f(u, theta_x + Sigma_x^1/2 eps_x^s) ],

where f(u_m, theta) = log p(y_m | u_m, theta). Minimising J raises the coreset likelihood under full-data
posterior samples and lowers it under coreset posterior samples (contrastive divergence, Eq. 22).
We use the mean over coreset points instead of the sum (as the official code), which rescales the
learning rate only. With Sigma = s^2 I, Sigma^1/2 eps = s * eps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import parallel
from ..errors import UserError
from .interface import DistillContext, ObjectiveBase
from .student import maybe_augment, paper_student_schedule, student_endpoint

NAME = "fkl"
NEEDS_EXPERTS = True


@dataclass
class Config:
    """BPC-fKL (defaults: the official values)."""

    num_samples: int = field(default=30, metadata={"help": "S: Gaussian samples per iteration"})
    noise_u: float = field(default=0.01, metadata={"help": "std of Sigma_u (isotropic) around theta_u"})
    noise_x: float = field(default=0.01, metadata={"help": "std of Sigma_x (isotropic) around theta_x"})

    def validate(self) -> None:
        if self.num_samples < 1:
            raise UserError(f"--fkl.num_samples must be >= 1 (got {self.num_samples})")
        if self.noise_u < 0 or self.noise_x < 0:
            raise UserError("--fkl.noise_u and --fkl.noise_x must be >= 0")


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """The paper's student schedule (the small presets' S is in their definitions, config.py)."""
    return paper_student_schedule(preset, ipc)


def fkl_surrogate(
    log_lik: Callable[[torch.Tensor, int], torch.Tensor],
    thetas_u: torch.Tensor,
    thetas_x: torch.Tensor,
    backward: bool = True,
    mine: Callable[[int], bool] = lambda s: True,
    skip: Callable[[int], Any] | None = None,
) -> torch.Tensor:
    """Eq. 20 for samples ``thetas_u``, ``thetas_x`` [S, P] (treated as constants).

    ``log_lik(theta, s)`` is the coreset log-likelihood 1^T f(u, theta) for sample ``s`` (differentiable in
    u). With ``backward`` the per-sample terms are back-propagated one at a time (memory of one sample)
    and the returned value is detached. Only the terms with ``mine(s)`` are computed (a rank's share under
    torch.distributed; the caller sums the shares); ``skip(s)`` is called for the others (to draw what term s
    would have drawn, so every rank's generator stays in step).
    """
    num = len(thetas_u)
    total = torch.zeros(())
    for s in range(num):
        if not mine(s):
            if skip is not None:
                skip(s)
            continue
        term = (log_lik(thetas_u[s].detach(), s) - log_lik(thetas_x[s].detach(), s)) / num
        if backward:
            term.backward()
            term = term.detach()
        total = total + term
    return total


class ForwardKL(ObjectiveBase):
    name = "fkl"

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        c, ctx = self.c, self.ctx
        theta_u, theta_x, info = student_endpoint(ctx, images, labels, g)
        S, P = c.num_samples, theta_u.numel()
        eps_u = torch.randn(S, P, generator=g, device=theta_u.device, dtype=theta_u.dtype)
        eps_x = torch.randn(S, P, generator=g, device=theta_u.device, dtype=theta_u.dtype)
        thetas_u = theta_u + c.noise_u * eps_u
        thetas_x = theta_x + c.noise_x * eps_x
        augmented: dict[int, torch.Tensor] = {}

        def view(s: int) -> torch.Tensor:
            # One augmentation draw per sample s, shared by its u- and x-terms.
            if s not in augmented:
                augmented.clear()
                augmented[s] = maybe_augment(images, ctx.augment, g)
            return augmented[s]

        def log_lik(theta: torch.Tensor, s: int) -> torch.Tensor:
            return -ctx.model.nll(theta, view(s), labels)

        value = fkl_surrogate(log_lik, thetas_u, thetas_x, mine=parallel.mine, skip=view)
        if parallel.active():  # each rank back-propagated its share of the S terms: sum them
            if images.grad is None:
                images.grad = torch.zeros_like(images)
            parallel.all_reduce_sum_(images.grad)
            value = parallel.all_reduce_sum_(value.to(images.device))
        return {"surrogate": float(value), **info}


def build(config: Config, context: DistillContext) -> ForwardKL:
    return ForwardKL(config, context)
