"""Pseudocoreset learning: initialisation from real images and the objective-agnostic outer loop."""

from .loop import DistillConfig, distill, prepare_objective, random_real_subset

__all__ = ["DistillConfig", "distill", "prepare_objective", "random_real_subset"]
