"""Image augmentation and whitening used by distillation: DSA (Zhao & Bilen, 2021) and regularised ZCA."""

from .dsa import DSA, build_dsa
from .zca import ZCA

__all__ = ["DSA", "ZCA", "build_dsa"]
