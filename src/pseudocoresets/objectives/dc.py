"""Dataset Condensation (gradient matching; Zhao et al. 2021), the paper's Eq. 6-7.

Proposition 3.1: near a local optimum, one reverse-KL step with q_u = N(theta^(t), Sigma) (Eq. 12) is a
step of gradient matching, so DC is BPC-rKL with that variational family. The distance (per class c):

    d(u) = sum_layers sum_rows [ 1 - cos(g_real_row, g_syn_row) ],   g = grad_theta CE(batch_c; theta),

with conv weights reshaped to (out, in*h*w) and linear weights (out, in); one-dimensional parameters
(biases, norm scales) contribute 0. Loops as in DC: a fresh random network per round; ``outer_loop``
image updates per round, between which the network takes ``inner_loop`` SGD steps on the coreset
(Eq. 7). Here one iteration of the distillation loop is one image update.

Under torch.distributed the classes of an update are split round robin over ranks (each rank draws every class's
real batch and augmentation, so the generators stay in step, but computes only its own classes' distances) and the
pixel gradients are summed; the inner loop is repeated identically on every rank.
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass, field
from typing import Any

import torch

from .. import parallel
from ..errors import UserError
from ..utils import generator
from .interface import DistillContext, ObjectiveBase
from .student import siamese, student_sgd

NAME = "dc"
NEEDS_EXPERTS = False
# DC's own values per ipc (Zhao et al. 2021): (outer_loop, inner_loop); other ipcs use ipc 10's
LOOPS = {1: (1, 1), 10: (10, 50), 50: (50, 10)}


@dataclass
class Config:
    """Dataset Condensation (defaults: DC's ipc-10 values)."""

    outer_loop: int = field(default=10, metadata={"help": "image updates per random network"})
    inner_loop: int = field(default=50, metadata={"help": "network SGD steps on the coreset between updates"})
    real_batch: int = field(default=256, metadata={"help": "real images per class per update"})
    lr_net: float = field(default=0.01, metadata={"help": "network learning rate of the inner loop"})

    def validate(self) -> None:
        if self.outer_loop < 1 or self.real_batch < 1 or self.inner_loop < 0:
            raise UserError("--dc.outer_loop and --dc.real_batch must be >= 1, --dc.inner_loop >= 0")
        if self.lr_net <= 0:
            raise UserError(f"--dc.lr_net must be > 0 (got {self.lr_net})")


def check_data(config: Config, is_regression: bool) -> None:
    """What the data rule out, before any work."""
    if is_regression:
        raise UserError("dc matches gradients class by class; it needs class labels, not regression targets")


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """DC's own image learning rate 0.1 and loops per ipc, in every preset."""
    outer, inner = LOOPS.get(ipc, LOOPS[10])
    return {"distill.lr_images": 0.1, "dc.outer_loop": outer, "dc.inner_loop": inner}


def layerwise_cosine_distance(real: list[torch.Tensor], syn: list[torch.Tensor]) -> torch.Tensor:
    """DC's distance between two lists of per-parameter gradients (shapes as the parameters)."""
    total = syn[0].new_zeros(())
    for gr, gs in zip(real, syn):
        if gs.dim() == 1:
            continue
        gr, gs = gr.reshape(gr.shape[0], -1), gs.reshape(gs.shape[0], -1)
        cos = (gr * gs).sum(1) / (gr.norm(dim=1) * gs.norm(dim=1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


class GradientMatching(ObjectiveBase):
    name = "dc"

    def __init__(self, config: Config, context: DistillContext):
        super().__init__(config, context)
        self.theta: torch.Tensor | None = None
        self.round_step = 0
        self.inner_g = generator(context.seed + 7, context.device)
        self.by_class = [torch.nonzero(context.real_y == k).flatten() for k in range(context.num_classes)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"round_step": torch.tensor([self.round_step]), "inner_g": self.inner_g.get_state()}
        if self.theta is not None:
            state["theta"] = self.theta.detach()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.round_step = int(state["round_step"][0])
        self.inner_g.set_state(state["inner_g"].cpu())
        self.theta = state["theta"].to(self.ctx.device) if "theta" in state else None

    def _grads(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, create_graph: bool) -> list[torch.Tensor]:
        model = self.ctx.model
        with model.eager() if create_graph else contextlib.nullcontext():  # compiled graphs: one backward only
            loss = model.nll(theta, x, y)
            (grad,) = torch.autograd.grad(loss, theta, create_graph=create_graph)
        return [grad[sl].reshape(shape) for _, sl, shape in self.ctx.model.param_slices()]

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        c, ctx = self.c, self.ctx
        if self.round_step == 0:
            seed = int(torch.randint(2**31 - 1, (1,), generator=g, device=g.device))
            self.theta = ctx.model.init(seed).to(ctx.device)
        theta = self.theta.detach().requires_grad_(True)
        total = 0.0
        for k, pool in enumerate(self.by_class):
            pick = pool[torch.randint(len(pool), (c.real_batch,), generator=g, device=pool.device)]
            mask = labels == k
            if not mask.any():
                continue
            if not parallel.mine(k):  # another rank's class: draw its augmentation only
                if ctx.augment is not None:
                    ctx.augment.sample(g, max(len(pick), int(mask.sum())))
                continue
            xr, xs = siamese(ctx.augment, ctx.real_x[pick], images[mask], g)
            g_real = [t.detach() for t in self._grads(theta, xr, ctx.real_y[pick], False)]
            g_syn = self._grads(theta, xs, labels[mask], True)
            dist = layerwise_cosine_distance(g_real, g_syn)
            dist.backward()
            total += float(dist.detach())
        if parallel.active():  # each rank back-propagated its classes' distances: sum them
            if images.grad is None:
                images.grad = torch.zeros_like(images)
            parallel.all_reduce_sum_(images.grad)
            total = float(parallel.all_reduce_sum_(torch.tensor(total, device=images.device)))
        return {"matching_distance": total, "round_step": self.round_step}

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        c, ctx = self.c, self.ctx
        self.round_step += 1
        if self.round_step >= c.outer_loop:
            self.round_step = 0
            return
        self.theta = student_sgd(
            ctx.model, self.theta, images, labels, c.inner_loop, c.lr_net, ctx.student.batch, ctx.augment, self.inner_g
        )


def build(config: Config, context: DistillContext) -> GradientMatching:
    return GradientMatching(config, context)
