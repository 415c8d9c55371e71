"""BPC-W: Wasserstein distance between Gaussian approximations = MTT trajectory matching (Section 3.2).

With q_u = N(theta_u^(L_u), Sigma) and q_x = N(theta_x^(L_x), Sigma) sharing one covariance, Eq. 15 reduces
to W_2^2 = ||theta_u^(L_u) - theta_x^(L_x)||^2. As in MTT (Eq. 8) we minimise the normalised distance

    D(u) = ||theta_u^(L_u)(u, eta) - theta_*^(r + L_x)||^2 / ||theta_*^(r) - theta_*^(r + L_x)||^2,

where theta_u^(t) = theta_u^(t-1) - eta grad CE(A(u), theta_u^(t-1)) (Eq. 10) starts at the expert snapshot
theta_*^(r), and the gradient flows through all L_u steps to the pixels u and to the learnable step size eta.

Memory: back-propagating through the unroll keeps L_u steps of graph. With ``checkpoint_every = k > 0`` only
theta at every k-th step is stored; in the backward pass each segment is recomputed (with the same
augmentation and mini-batch draws, replayed from saved generator states) and its vector-Jacobian product
taken. The gradient is the same; the peak memory is that of k steps instead of L_u.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import UserError
from .interface import DistillContext, ObjectiveBase
from .student import maybe_augment, minibatch, paper_student_schedule

NAME = "wasserstein"
NEEDS_EXPERTS = True


@dataclass
class Config:
    """BPC-W / MTT (defaults: the official ipc-10 values)."""

    lr_lr: float = field(default=1e-5, metadata={"help": "learning rate of the learnable student step size"})
    checkpoint_every: int = field(
        default=0, metadata={"help": "keep theta every k unrolled steps and recompute (0 = full graph)"}
    )

    def validate(self) -> None:
        if self.checkpoint_every < 0:
            raise UserError(f"--wasserstein.checkpoint_every must be >= 0 (got {self.checkpoint_every})")
        if self.lr_lr < 0:
            raise UserError(f"--wasserstein.lr_lr must be >= 0 (got {self.lr_lr})")


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """The paper's student schedule, L_x = 2 at ipc 1 and 20, and lr_lr 1e-7 at ipc 1 (official)."""
    out = paper_student_schedule(preset, ipc)
    if out:
        out["wasserstein.lr_lr"] = 1e-7 if ipc == 1 else 1e-5
        if ipc in (1, 20):
            out["distill.expert_epochs"] = 2
    return out


Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def unroll(
    step: Step, theta0: torch.Tensor, images: torch.Tensor, eta: torch.Tensor, steps: int, g: torch.Generator
) -> torch.Tensor:
    """theta^(L) with the full graph kept (memory grows with ``steps``)."""
    theta = theta0
    for _ in range(steps):
        theta = step(theta, images, eta, g)
    return theta


def matching_gradient_checkpointed(
    step: Step,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    theta0: torch.Tensor,
    images: torch.Tensor,
    eta: torch.Tensor,
    steps: int,
    every: int,
    g: torch.Generator,
) -> torch.Tensor:
    """Accumulate d loss_fn(theta^(L)) / d(images, eta) into ``.grad`` by segment-wise recomputation."""
    boundaries, states = [], []
    theta = theta0.detach()
    for t in range(steps):
        if t % every == 0:
            boundaries.append(theta.detach())
            states.append(g.get_state())
        with torch.enable_grad():
            theta = step(theta.detach().requires_grad_(True), images.detach(), eta.detach(), g).detach()
    final = theta.detach().requires_grad_(True)
    loss = loss_fn(final)
    (adjoint,) = torch.autograd.grad(loss, final)
    replay = torch.Generator(device=g.device)
    for k in reversed(range(len(boundaries))):
        replay.set_state(states[k])
        start = boundaries[k].requires_grad_(True)
        theta = start
        for _ in range(min(every, steps - k * every)):
            theta = step(theta, images, eta, replay)
        inputs = [start] + [t for t in (images, eta) if t.requires_grad]
        grads = torch.autograd.grad(theta, inputs, grad_outputs=adjoint)
        adjoint = grads[0]
        for tensor, grad in zip(inputs[1:], grads[1:]):
            tensor.grad = grad if tensor.grad is None else tensor.grad + grad
    return loss.detach()


class Wasserstein(ObjectiveBase):
    name = "wasserstein"

    def __init__(self, config: Config, context: DistillContext):
        super().__init__(config, context)
        self.eta = torch.tensor(float(context.student.lr), device=context.device, requires_grad=True)

    def param_groups(self) -> list[dict]:
        return [{"params": [self.eta], "lr": self.c.lr_lr, "momentum": 0.5}]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"eta": self.eta.detach().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.eta.copy_(state["eta"])

    def _student_step(self, labels: torch.Tensor) -> Step:
        """One differentiable student step theta - eta grad CE(A(u), theta) (Eq. 10) for these labels."""
        batch = self.ctx.student.batch

        def step(theta, images, eta, g):
            idx = minibatch(len(images), batch, g, images.device)
            x = maybe_augment(images[idx], self.ctx.augment, g)
            loss = self.ctx.model.nll(theta, x, labels[idx])
            (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
            return theta - eta * grad

        return step

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        c, ctx, student = self.c, self.ctx, self.ctx.student
        theta0, target, info = ctx.experts.sample_segment(student.max_start_epoch, student.expert_epochs, g)
        step = self._student_step(labels)
        scale = ((theta0 - target) ** 2).sum().clamp_min(1e-12)

        def loss_fn(theta_end):
            return ((theta_end - target) ** 2).sum() / scale

        with ctx.model.eager():  # the unroll is differentiated twice, which compiled graphs do not support
            if c.checkpoint_every > 0:
                loss = matching_gradient_checkpointed(
                    step, loss_fn, theta0, images, self.eta, student.steps, c.checkpoint_every, g
                )
            else:
                theta0 = theta0.requires_grad_(True)
                loss = loss_fn(unroll(step, theta0, images, self.eta, student.steps, g))
                loss.backward()
        return {"matching_loss": float(loss.detach()), "student_lr": float(self.eta.detach()), **info}

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        with torch.no_grad():
            self.eta.clamp_(min=1e-6)  # a step size must stay positive

    def summary(self) -> dict[str, Any]:
        return {"learnt_student_lr": float(self.eta.detach())}


def build(config: Config, context: DistillContext) -> Wasserstein:
    return Wasserstein(config, context)
