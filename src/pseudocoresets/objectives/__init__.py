"""Pseudocoreset objectives (divergences), one module each, behind one interface.

Every module exposes ``build(config, context) -> Objective``; an :class:`~.base.Objective` has
``step(images, labels, generator) -> metrics``, which writes the divergence-gradient estimate into
``images.grad`` (and into the ``.grad`` of its own learnable tensors listed by ``param_groups``), and
``after_update(images, labels)``. The distillation loop (:mod:`pseudocoresets.distill`) calls only these.
Adding a divergence = one new module + one line in :data:`OBJECTIVES`.
"""

from __future__ import annotations

import importlib

from ..errors import UserError
from .base import DistillContext, Objective

OBJECTIVES = {
    "fkl": "pseudocoresets.objectives.fkl",
    "wasserstein": "pseudocoresets.objectives.wasserstein",
    "rkl": "pseudocoresets.objectives.rkl",
    "dc": "pseudocoresets.objectives.dc",
}


def build_objective(name: str, config, context: DistillContext) -> Objective:
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective {name!r}; choose one of {', '.join(sorted(OBJECTIVES))} (or random)")
    return importlib.import_module(OBJECTIVES[name]).build(config, context)


__all__ = ["OBJECTIVES", "DistillContext", "Objective", "build_objective"]
