"""The objective interface: what the outer loop calls, and what every objective may draw on.

An objective module (one per divergence) provides

- ``NAME``: the method name on the command line and in artifact names;
- ``NEEDS_EXPERTS``: whether it reads expert trajectories (the pipeline trains them only when needed);
- ``Config``: a dataclass of its own hyperparameters, each with a ``help`` text; it becomes the section
  ``--NAME.option`` of the command line and ``NAME: {option: value}`` of a YAML config;
- ``preset_values(preset, ipc) -> dict``: official per-ipc values as dotted keys (``"NAME.option"`` or a shared
  ``"distill.option"``), applied to a (method, ipc) cell unless the user set that option (a preset's values
  that do not depend on ipc, such as the quick preset's S, sit in the preset's definition in config.py);
- ``build(config, context) -> Objective``;
- optionally ``check_data(config, is_regression)``: raise UserError for data the objective cannot learn from
  (called for every cell before any work).

An :class:`Objective` writes its divergence-gradient estimate into ``images.grad`` (and into the ``.grad`` of
its own learnable tensors listed by ``param_groups``); the loop takes the optimiser step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..augment import DSA
from ..experts import ExpertPool
from ..models import FlatModel
from ..samplers import PosteriorSpec


@dataclass(frozen=True)
class StudentSettings:
    """The student network of Algorithm 1, shared by every trajectory-based objective (``--distill.*``)."""

    lr: float  # eta: student SGD step size
    steps: int  # L_u: student SGD steps on the coreset
    batch: int  # student mini-batch size (0 = the whole coreset)
    expert_epochs: int  # L_x: the target is expert snapshot r + L_x
    max_start_epoch: int  # T+: start epoch r ~ U{0..T+}


@dataclass(frozen=True)
class Watch:
    """A metric of the objective's ``step`` that tells, from its own samples, whether the coreset got worse over a
    run (distill/watch.py): ``metric`` the key in the step's metrics, ``better`` "higher" or "lower", ``meaning``
    what a worse value says about the divergence, ``options`` what the user may change (``--section.option``)."""

    metric: str
    better: str
    meaning: str
    options: tuple[str, ...]


@dataclass
class DistillContext:
    """Everything an objective may use. ``real_x`` is preprocessed; ``augment`` is DSA or None; the outer loop
    fills ``student`` and ``seed`` from its config."""

    model: FlatModel
    experts: ExpertPool | None
    real_x: torch.Tensor
    real_y: torch.Tensor
    num_classes: int
    augment: DSA | None
    device: torch.device
    student: StudentSettings | None = None
    seed: int = 0
    posterior: PosteriorSpec = PosteriorSpec()  # the coreset posterior pi_u the coreset is learnt for
    reference: torch.Tensor | None = None  # samples of the full-data posterior pi_x [K, P] (reference stage)
    coreset_size: int = 0  # M, the number of coreset points (filled by the outer loop, as ``student``)


class Objective(Protocol):
    name: str

    def param_groups(self) -> list[dict]:
        """Extra learnable tensors with their own optimiser settings (e.g. W's student step size)."""

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, Any]:
        """Write the gradient estimate w.r.t. ``images`` (and own params) into ``.grad``; return metrics."""

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Called after the optimiser moved the images (DC trains its network here)."""

    def summary(self) -> dict[str, Any]:
        """What the objective learnt besides the images (recorded in the coreset's summary.json); a key
        ``point_weights`` (M numbers) holds learnt per-point weights, which become part of the coreset posterior
        recorded in the coreset artifact (samplers/posterior.py)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything the objective carries from one iteration to the next (chains, networks, learnt scalars,
        its own generators), as tensors: the distillation checkpoint stores it for a bit-identical resume."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""


class ObjectiveBase:
    """Defaults for the interface: no extra learnable tensors, nothing after an update, nothing to report,
    nothing watched.

    ``watch``: a :class:`Watch` the outer loop compares between the first and the last iterations of a run;
    ``loss_is_divergence``: the step's metric ``loss`` is the divergence up to a constant, so a run whose loss
    shoots up is refused, naming ``guard_options`` (distill/watch.py)."""

    name = "base"
    watch: Watch | None = None
    loss_is_divergence = False
    guard_options: tuple[str, ...] = ()

    def __init__(self, config: Any, context: DistillContext):
        self.c = config
        self.ctx = context

    def param_groups(self) -> list[dict]:
        return []

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        pass

    def summary(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}  # stateless between iterations

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass
