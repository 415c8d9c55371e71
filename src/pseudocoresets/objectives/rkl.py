"""BPC-rKL: reverse KL divergence D_KL[pi_u || pi_x] (Section 3.1; Manousakas et al. 2020).

Eq. 4: grad_u D_KL[pi_u || pi_x] = -Cov_{pi_u}[ grad_u 1^T f(u, theta), 1^T f(x, theta) - 1^T f(u, theta) ].
pi_u is approximated by q_u = N(theta_u^(L_u), sigma^2 I) around the student endpoint (student SGD from an
expert snapshot, as for BPC-fKL), and the covariance by S samples theta_s ~ q_u:

    grad ≈ -1/S sum_s (c_s - mean_c) h_s,   c_s = mean_n f(x_n, theta_s) - mean_m f(u_m, theta_s),
                                            h_s = grad_u mean_m f(u_m, theta_s),

with the full-data term on a random real batch. As in the official code, means replace the sums of Eq. 4
(which weights the coreset as N/M points and rescales the learning rate). Centring h is unnecessary since
sum_s (c_s - mean_c) = 0, so the estimate is the gradient of the surrogate -1/S sum_s sg(c_s - mean_c) f_u(theta_s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import UserError
from .interface import DistillContext, ObjectiveBase
from .student import paper_student_schedule, siamese, student_endpoint

NAME = "rkl"
NEEDS_EXPERTS = True


@dataclass
class Config:
    """BPC-rKL (defaults: the official ipc-10 values)."""

    num_samples: int = field(default=30, metadata={"help": "S: Gaussian samples of q_u per iteration"})
    noise: float = field(default=0.01, metadata={"help": "std of q_u (isotropic) around theta_u"})
    real_batch: int = field(default=1000, metadata={"help": "real images per iteration (the full-data term)"})

    def validate(self) -> None:
        if self.num_samples < 1 or self.real_batch < 1:
            raise UserError("--rkl.num_samples and --rkl.real_batch must be >= 1")
        if self.noise < 0:
            raise UserError(f"--rkl.noise must be >= 0 (got {self.noise})")


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """The paper's student schedule and S = 10 at ipc 1 and 20 (official); the quick preset uses S = 10."""
    if preset == "quick":
        return {"rkl.num_samples": 10}
    out = paper_student_schedule(preset, ipc)
    if preset == "paper" and ipc in (1, 20):
        out["rkl.num_samples"] = 10
    return out


def rkl_surrogate(
    coreset_log_lik: Callable[[torch.Tensor, int], torch.Tensor],
    data_log_lik: Callable[[torch.Tensor, int], torch.Tensor],
    thetas: torch.Tensor,
) -> torch.Tensor:
    """Back-propagate the covariance estimator of Eq. 4 for samples ``thetas`` [S, P] of q_u ≈ pi_u.

    ``coreset_log_lik(theta, s)`` is differentiable in u; ``data_log_lik(theta, s)`` is the full-data term.
    Returns the sample covariance of (coreset log-lik, c) for monitoring (detached).
    """
    num = len(thetas)
    with torch.no_grad():
        core = torch.stack([coreset_log_lik(t, s).detach() for s, t in enumerate(thetas)])
        full = torch.stack([data_log_lik(t, s).detach() for s, t in enumerate(thetas)])
    c = full - core
    weights = c - c.mean()
    for s in range(num):
        (-(weights[s] / num) * coreset_log_lik(thetas[s].detach(), s)).backward()
    return (weights * (core - core.mean())).mean()


class ReverseKL(ObjectiveBase):
    name = "rkl"

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        c, ctx = self.c, self.ctx
        theta_u, _, info = student_endpoint(ctx, images, labels, g)
        thetas = theta_u + c.noise * torch.randn(c.num_samples, theta_u.numel(), generator=g, device=theta_u.device)
        idx = torch.randint(len(ctx.real_x), (c.real_batch,), generator=g, device=ctx.real_x.device)
        real_x, real_y = ctx.real_x[idx], ctx.real_y[idx]
        augmented: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def views(s: int):
            # one siamese augmentation draw per sample, shared by the real batch and the coreset
            if s not in augmented:
                augmented[s] = siamese(ctx.augment, real_x, images, g)
            return augmented[s]

        def coreset_ll(theta, s):
            return -ctx.model.nll(theta, views(s)[1], labels)

        def data_ll(theta, s):
            return -ctx.model.nll(theta, views(s)[0], real_y)

        cov = rkl_surrogate(coreset_ll, data_ll, thetas)
        return {"covariance": float(cov), **info}


def build(config: Config, context: DistillContext) -> ReverseKL:
    return ReverseKL(config, context)
