"""Train one expert with plain mini-batch SGD and record theta after every epoch.

The trajectory ``tau = (theta^(0), ..., theta^(T))`` approximates a path into the full-data posterior
mode; Algorithm 1 of the paper takes ``theta_x^(L_x) = theta^(r + L_x)`` from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import ResumeMismatch, UserError
from ..models import FlatModel
from ..utils import generator


@dataclass
class ExpertConfig:
    """Expert SGD (official values: lr 0.01, batch 256, momentum 0, 50 epochs, 100 experts)."""

    num_experts: int = field(default=100, metadata={"help": "number of expert trajectories E"})
    epochs: int = field(default=50, metadata={"help": "epochs per expert T (T+1 snapshots incl. init)"})
    lr: float = field(default=0.01, metadata={"help": "expert SGD learning rate"})
    batch_size: int = field(default=256, metadata={"help": "expert mini-batch size"})
    momentum: float = field(default=0.0, metadata={"help": "expert SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "expert L2 weight decay"})
    augment: bool = field(default=False, metadata={"help": "apply DSA augmentation to expert batches"})
    augment_per_image: bool = field(default=True, metadata={"help": "DSA draws per image (false: one per batch)"})
    seed: int = field(default=0, metadata={"help": "base seed; expert e uses seed + e"})

    def validate(self) -> None:
        if self.num_experts < 1 or self.epochs < 1 or self.batch_size < 1:
            raise UserError("experts: --experts.num_experts, --experts.epochs and --experts.batch_size must be >= 1")
        if self.lr <= 0:
            raise UserError(f"experts: --experts.lr must be > 0 (got {self.lr})")


def check_resume(state: dict[str, torch.Tensor], theta: torch.Tensor, g: torch.Generator, epochs: int) -> None:
    """Refuse (:class:`ResumeMismatch`) an expert's partial state that this run cannot continue: snapshots
    [n, P] with 1 <= n <= epochs + 1 and this network's P, finite; a velocity [P]; a generator state of this
    generator's size; n - 1 finite epoch losses."""
    snaps, velocity, g_state, losses = (state[k] for k in ("snapshots", "velocity", "generator_state", "losses"))
    p = theta.numel()
    if snaps.dim() != 2 or snaps.shape[1] != p or not 1 <= snaps.shape[0] <= epochs + 1:
        raise ResumeMismatch(
            f"its snapshots are {tuple(snaps.shape)} where this run needs [1..{epochs + 1}, {p}] "
            "(--experts.epochs and the network)"
        )
    if velocity.shape != (p,) or g_state.dtype != torch.uint8 or g_state.shape != g.get_state().shape:
        raise ResumeMismatch("its momentum or its random generator state does not fit this network and device")
    if losses.shape != (snaps.shape[0] - 1,):
        raise ResumeMismatch(f"it holds {losses.numel()} epoch losses for {snaps.shape[0] - 1} finished epochs")
    for name, value in (("snapshots", snaps), ("velocity", velocity), ("losses", losses)):
        if not value.dtype.is_floating_point or not torch.isfinite(value).all():
            raise ResumeMismatch(f"its {name} are not finite real numbers")


def sgd_trajectory(
    model: FlatModel,
    theta0: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    config: ExpertConfig,
    seed: int,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    resume: dict[str, torch.Tensor] | None = None,
    on_checkpoint: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> torch.Tensor:
    """SGD on normalised images ``x`` [N,C,H,W]; returns snapshots [epochs + 1, P] (copies, never views).

    ``on_checkpoint`` receives the state after every epoch (snapshots so far, momentum, generator state, epoch
    losses); passing it back as ``resume`` continues from there and gives the same trajectory bit for bit."""
    g = generator(seed, x.device)
    theta = theta0.detach().clone()
    velocity = torch.zeros_like(theta)
    snapshots = [theta.clone()]
    losses: list[float] = []
    if resume is not None:
        check_resume(resume, theta, g, config.epochs)
        snapshots = [s.to(theta) for s in resume["snapshots"]]
        theta = snapshots[-1].clone()
        velocity = resume["velocity"].to(theta)
        g.set_state(resume["generator_state"].cpu())
        losses = [float(v) for v in resume["losses"]]
    n = len(x)
    for epoch in range(len(snapshots) - 1, config.epochs):
        order = torch.randperm(n, generator=g, device=x.device)
        total, count = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, g)
            theta.requires_grad_(True)
            loss = model.nll(theta, xb, y[idx])
            (grad,) = torch.autograd.grad(loss, theta)
            with torch.no_grad():
                theta = theta.detach()
                if config.weight_decay:
                    grad = grad + config.weight_decay * theta
                if config.momentum:
                    velocity = config.momentum * velocity + grad
                    grad = velocity
                theta = theta - config.lr * grad
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        if not torch.isfinite(theta).all():
            raise UserError(f"expert diverged (non-finite weights) at epoch {epoch + 1}; lower --experts.lr")
        snapshots.append(theta.detach().clone())
        losses.append(total / max(count, 1))
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1])
        if on_checkpoint is not None and epoch + 1 < config.epochs:
            on_checkpoint(
                {
                    "snapshots": torch.stack(snapshots),
                    "velocity": velocity,
                    "generator_state": g.get_state(),
                    "losses": torch.tensor(losses, dtype=torch.float64),
                }
            )
    return torch.stack(snapshots)
