"""Image classification data: loaders for real formats, a decode cache, and train-split normalisation."""

from .datasets import DataConfig, ImageData, Normalizer, load_dataset

__all__ = ["DataConfig", "ImageData", "Normalizer", "load_dataset"]
