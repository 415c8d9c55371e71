"""The objective interface and what every objective may draw on (model, experts, real data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from safetensors import safe_open

from ..errors import UserError
from ..models import FlatModel

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class ExpertPool:
    """Expert trajectories stored one safetensors file each; rows are read lazily, never all in memory."""

    def __init__(self, paths: list[Path], device: torch.device):
        if not paths:
            raise UserError("no expert trajectories found; run 'bpc experts' first")
        self.paths = paths
        self.device = device
        self._handles: dict[int, object] = {}
        with safe_open(str(paths[0]), framework="pt") as f:
            self.num_snapshots, self.num_params = f.get_slice("trajectory").get_shape()

    def snapshot(self, expert: int, epoch: int) -> torch.Tensor:
        if expert not in self._handles:
            self._handles[expert] = safe_open(str(self.paths[expert]), framework="pt")
        row = self._handles[expert].get_slice("trajectory")[epoch]  # type: ignore[attr-defined]
        return row.to(self.device, torch.float32).clone()

    def sample_segment(self, max_start: int, length: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Algorithm 1: expert ~ U{experts}, r ~ U{0..T+}; returns (theta^(r), theta^(r+L_x), info)."""
        e = int(torch.randint(len(self.paths), (1,), generator=g, device=g.device))
        r = int(torch.randint(max_start + 1, (1,), generator=g, device=g.device))
        return self.snapshot(e, r), self.snapshot(e, r + length), {"expert": e, "start_epoch": r}


@dataclass
class DistillContext:
    """Everything an objective may use. ``real_x`` is normalised; ``augment`` is DSA or None."""

    model: FlatModel
    experts: ExpertPool | None
    real_x: torch.Tensor
    real_y: torch.Tensor
    num_classes: int
    augment: Augment | None
    device: torch.device


class Objective(Protocol):
    name: str

    def param_groups(self) -> list[dict]:
        """Extra learnable tensors with their own optimiser settings (e.g. W's student step size)."""

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        """Write the gradient estimate w.r.t. ``images`` (and own params) into ``.grad``; return metrics."""

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Called after the optimiser moved the images (DC trains its network here)."""


class ObjectiveBase:
    """Defaults for the interface: no extra learnable tensors, nothing to do after an image update."""

    name = "base"

    def __init__(self, config, context: DistillContext):
        self.c = config
        self.ctx = context

    def param_groups(self) -> list[dict]:
        return []

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        pass


def student_endpoint(config, ctx: DistillContext, images: torch.Tensor, labels: torch.Tensor,
                     g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Algorithm 1's inner part: (theta_u^(L_u) from expert epoch r, theta_x^(L_x) = expert epoch r + L_x, info)."""
    theta0, theta_x, info = ctx.experts.sample_segment(config.max_start_epoch, config.expert_epochs, g)
    batch = config.batch_syn if config.batch_syn > 0 else len(images)
    theta_u = student_sgd(ctx.model, theta0, images, labels, config.student_steps, config.lr_student, batch,
                          ctx.augment, g)
    return theta_u, theta_x, info


def maybe_augment(x: torch.Tensor, augment: Augment | None, g: torch.Generator) -> torch.Tensor:
    return x if augment is None else augment(x, g)


def student_sgd(
    model: FlatModel,
    theta: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    lr: float,
    batch: int,
    augment: Augment | None,
    g: torch.Generator,
) -> torch.Tensor:
    """``steps`` SGD steps on the (detached) coreset without keeping a graph: theta_u^(L_u) of Eq. 18."""
    images = images.detach()
    theta = theta.detach()
    n = len(images)
    for _ in range(steps):
        idx = torch.randperm(n, generator=g, device=images.device)[:batch] if batch < n else slice(None)
        theta.requires_grad_(True)
        loss = F.cross_entropy(model(theta, maybe_augment(images[idx], augment, g)), labels[idx])
        (grad,) = torch.autograd.grad(loss, theta)
        theta = (theta - lr * grad).detach()
    return theta
