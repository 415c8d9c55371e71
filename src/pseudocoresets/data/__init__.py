"""Data: image classification sets (real formats, a decode cache) and tables (CSV, NPZ, synthetic regression),
with train-split preprocessing."""

from .datasets import DataConfig, ImageData, load_dataset
from .preprocess import FeatureScaler, Normalizer, Preprocessor, fit_preprocessor
from .tabular import TabularData, load_tabular, synthetic_regression
from .zca import ZCA

__all__ = [
    "DataConfig",
    "FeatureScaler",
    "ImageData",
    "Normalizer",
    "Preprocessor",
    "TabularData",
    "ZCA",
    "fit_preprocessor",
    "load_dataset",
    "load_tabular",
    "synthetic_regression",
]
