"""Dataset Condensation (gradient matching; Zhao et al. 2021), the paper's Eq. 6-7.

Proposition 3.1: near a local optimum, one reverse-KL step with q_u = N(theta^(t), Sigma) (Eq. 12) is a
step of gradient matching, so DC is BPC-rKL with that variational family. The distance (per class c):

    d(u) = sum_layers sum_rows [ 1 - cos(g_real_row, g_syn_row) ],   g = grad_theta CE(batch_c; theta),

with conv weights reshaped to (out, in*h*w) and linear weights (out, in); one-dimensional parameters
(biases, norm scales) contribute 0. Loops as in DC: a fresh random network per round; ``dc_outer_loop``
image updates per round, between which the network takes ``dc_inner_loop`` SGD steps on the coreset
(Eq. 7). Here one iteration of the distillation loop is one image update.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import DistillContext, ObjectiveBase, maybe_augment, student_sgd


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

    def __init__(self, config, context: DistillContext):
        super().__init__(config, context)
        self.theta: torch.Tensor | None = None
        self.round_step = 0
        self.inner_g = torch.Generator(device=context.device)
        self.inner_g.manual_seed(config.seed + 7)
        self.by_class = [torch.nonzero(context.real_y == k).flatten() for k in range(context.num_classes)]

    def _grads(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, create_graph: bool) -> list[torch.Tensor]:
        loss = F.cross_entropy(self.ctx.model(theta, x), y)
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
            pick = pool[torch.randint(len(pool), (c.dc_real_batch,), generator=g, device=pool.device)]
            mask = labels == k
            if not mask.any():
                continue
            state = g.get_state()
            xr = maybe_augment(ctx.real_x[pick], ctx.augment, g)
            g.set_state(state)  # siamese: the same draw for the real and the synthetic batch
            xs = maybe_augment(images[mask], ctx.augment, g)
            g_real = [t.detach() for t in self._grads(theta, xr, ctx.real_y[pick], False)]
            g_syn = self._grads(theta, xs, labels[mask], True)
            dist = layerwise_cosine_distance(g_real, g_syn)
            dist.backward()
            total += float(dist.detach())
        return {"matching_distance": total, "round_step": self.round_step}

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        c, ctx = self.c, self.ctx
        self.round_step += 1
        if self.round_step >= c.dc_outer_loop:
            self.round_step = 0
            return
        batch = c.batch_syn if c.batch_syn > 0 else len(images)
        self.theta = student_sgd(ctx.model, self.theta, images, labels, c.dc_inner_loop, c.dc_lr_net, batch,
                                 ctx.augment, self.inner_g)


def build(config, context: DistillContext) -> GradientMatching:
    return GradientMatching(config, context)
