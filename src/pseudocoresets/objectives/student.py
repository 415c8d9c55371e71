"""The student of Algorithm 1 and the batch helpers every objective shares.

A student starts at an expert snapshot theta_*^(r), r ~ U{0..T+}, and takes L_u SGD steps on the coreset
(Eq. 10 / Eq. 18): theta^(t) = theta^(t-1) - eta grad CE(A(u_B), theta^(t-1)) on a mini-batch u_B of the coreset,
optionally augmented (A = DSA). The target is the same expert's snapshot theta_*^(r + L_x).
"""

from __future__ import annotations

import torch

from ..augment import DSA
from ..models import FlatModel
from .interface import DistillContext

# Per-ipc student values of the paper's official code (prior-art.md), shared by fKL, rKL and W.
# ipc 50 is not in the paper; MTT's CIFAR-10 ipc-50 schedule is the closest official setting.
PAPER_STUDENT_SCHEDULE = {
    1: {
        "distill.lr_student": 0.01,
        "distill.student_steps": 50,
        "distill.max_start_epoch": 2,
        "distill.expert_epochs": 1,
    },
    10: {
        "distill.lr_student": 0.03,
        "distill.student_steps": 30,
        "distill.max_start_epoch": 20,
        "distill.expert_epochs": 1,
    },
    20: {
        "distill.lr_student": 0.03,
        "distill.student_steps": 30,
        "distill.max_start_epoch": 30,
        "distill.expert_epochs": 1,
    },
    50: {
        "distill.lr_student": 0.01,
        "distill.student_steps": 30,
        "distill.max_start_epoch": 40,
        "distill.expert_epochs": 2,
    },
}


def paper_student_schedule(preset: str, ipc: int) -> dict:
    """The official per-ipc student values under the ``paper`` preset (ipc 10's for other ipcs), else none."""
    if preset != "paper":
        return {}
    return dict(PAPER_STUDENT_SCHEDULE.get(ipc, PAPER_STUDENT_SCHEDULE[10]))


def minibatch(n: int, batch: int, g: torch.Generator, device: torch.device) -> torch.Tensor | slice:
    """Indices of a random mini-batch of ``batch`` out of ``n`` (all of them when batch is 0 or >= n)."""
    if 0 < batch < n:
        return torch.randperm(n, generator=g, device=device)[:batch]
    return slice(None)


def maybe_augment(x: torch.Tensor, augment: DSA | None, g: torch.Generator) -> torch.Tensor:
    return x if augment is None else augment(x, g)


def siamese(
    augment: DSA | None, real: torch.Tensor, syn: torch.Tensor, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmentation draw applied to a real and a synthetic batch alike (DSA's siamese pairing)."""
    if augment is None:
        return real, syn
    params = augment.sample(g, max(len(real), len(syn)))  # per-image draws pair image i of both batches
    return augment.apply(real, params), augment.apply(syn, params)


def student_sgd(
    model: FlatModel,
    theta: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    lr: float,
    batch: int,
    augment: DSA | None,
    g: torch.Generator,
) -> torch.Tensor:
    """``steps`` SGD steps on the (detached) coreset without keeping a graph: theta_u^(L_u) of Eq. 18."""
    images = images.detach()
    theta = theta.detach()
    for _ in range(steps):
        idx = minibatch(len(images), batch, g, images.device)
        theta.requires_grad_(True)
        loss = model.nll(theta, maybe_augment(images[idx], augment, g), labels[idx])
        (grad,) = torch.autograd.grad(loss, theta)
        theta = (theta - lr * grad).detach()
    return theta


def student_endpoint(
    ctx: DistillContext, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Algorithm 1's inner part: (theta_u^(L_u) from expert epoch r, theta_x^(L_x) = expert epoch r + L_x, info)."""
    s = ctx.student
    theta0, theta_x, info = ctx.experts.sample_segment(s.max_start_epoch, s.expert_epochs, g)
    theta_u = student_sgd(ctx.model, theta0, images, labels, s.steps, s.lr, s.batch, ctx.augment, g)
    return theta_u, theta_x, info
