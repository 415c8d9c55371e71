"""Posterior fidelity on closed-form models: each objective's real step held against exact divergences."""

from .blr import BLRProblem, DIVERGENCES, cases, descend_exact, descend_objective, reduction_share, train_experts

__all__ = [
    "BLRProblem",
    "DIVERGENCES",
    "cases",
    "descend_exact",
    "descend_objective",
    "reduction_share",
    "train_experts",
]
