"""Networks, likelihoods and their flat-parameter functional form."""

from . import compiling
from .build import ModelConfig, build_model
from .convnet import ConvNet, build_convnet
from .flat import FlatModel
from .likelihood import Bernoulli, Categorical, Gaussian, build_likelihood
from .precision import PRECISIONS, bf16_native, resolve_precision

__all__ = [
    "Bernoulli",
    "Categorical",
    "ConvNet",
    "FlatModel",
    "Gaussian",
    "ModelConfig",
    "PRECISIONS",
    "bf16_native",
    "build_convnet",
    "build_likelihood",
    "build_model",
    "compiling",
    "resolve_precision",
]
