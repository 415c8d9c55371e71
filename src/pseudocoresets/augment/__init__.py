"""Differentiable Siamese Augmentation (Zhao & Bilen, 2021), used inside objectives and A-SGHMC."""

from .dsa import DSA, build_dsa

__all__ = ["DSA", "build_dsa"]
