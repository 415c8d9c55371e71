"""Common corruptions of test images: the CIFAR-10-C protocol (Hendrycks & Dietterich, ICLR 2019).

``corrupt(images, name, severity, seed)`` applies one of the 19 corruptions (15 standard + 4 extra) at
severity 1..5 to a uint8 batch ``[N, C, H, W]``; ``corrupted_test_sets`` generates many of them and caches
each one as a safetensors file. See :mod:`pseudocoresets.corruptions.cifar_c` for the constants, the
rules for other image sizes and for grey images.
"""

from .cifar_c import CORRUPTIONS, EXTRA, STANDARD, corrupt, corrupted_test_sets, frost_dir

__all__ = ["CORRUPTIONS", "EXTRA", "STANDARD", "corrupt", "corrupted_test_sets", "frost_dir"]
