"""Pseudocoreset learning: initialisation from real images and the objective-agnostic outer loop."""

from .loop import DistillConfig, distill, random_real_subset

__all__ = ["DistillConfig", "distill", "random_real_subset"]
