"""Pseudocoreset objectives (divergences), one module each, behind one interface (:mod:`.interface`).

The registry below, with :data:`WITHOUT_OBJECTIVE`, is the only place that lists methods; its order is the display
order of reports (the paper's Table 1: DC, rKL, W, fKL, then ours). Adding a divergence = one new module + one
entry here.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..errors import UserError
from . import dc, fkl, fkl_mcmc, rkl, vbpc, wasserstein
from .interface import DistillContext, Objective, ObjectiveBase, StudentSettings, Watch

OBJECTIVES: dict[str, ModuleType] = {m.NAME: m for m in (dc, rkl, wasserstein, fkl, fkl_mcmc, vbpc)}

#: methods whose coreset has no objective: ``random`` draws real images per class (the baseline), ``imported`` is
#: a set made elsewhere and brought in with ``bpc import``
WITHOUT_OBJECTIVE = ("random", "imported")


def method_names() -> tuple[str, ...]:
    """Every method, in report order: the random baseline, the registry's objectives, then imported sets."""
    return ("random", *OBJECTIVES, "imported")


def has_objective(name: str) -> bool:
    """Whether the method ``name`` learns its coreset with a registered objective (UserError when unknown)."""
    if name in WITHOUT_OBJECTIVE:
        return False
    objective_module(name)
    return True


def objective_module(name: str) -> ModuleType:
    if name not in OBJECTIVES:
        raise UserError(f"unknown method {name!r}; choose random or one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def build_objective(name: str, config: Any, context: DistillContext) -> Objective:
    return objective_module(name).build(config, context)


__all__ = [
    "OBJECTIVES",
    "WITHOUT_OBJECTIVE",
    "has_objective",
    "method_names",
    "DistillContext",
    "Objective",
    "Watch",
    "ObjectiveBase",
    "StudentSettings",
    "build_objective",
    "objective_module",
]
