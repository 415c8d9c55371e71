"""Image classification data: loaders for real formats, a decode cache, and train-split preprocessing."""

from .datasets import DataConfig, ImageData, load_dataset
from .preprocess import Normalizer, Preprocessor
from .zca import ZCA

__all__ = ["DataConfig", "ImageData", "Normalizer", "Preprocessor", "ZCA", "load_dataset"]
