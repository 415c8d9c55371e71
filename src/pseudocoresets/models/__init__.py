"""Networks, likelihoods and their flat-parameter functional form."""

from .build import ModelConfig, build_model
from .convnet import ConvNet, build_convnet
from .flat import FlatModel
from .likelihood import Bernoulli, Categorical, Gaussian, build_likelihood

__all__ = ["Bernoulli", "Categorical", "ConvNet", "FlatModel", "Gaussian", "ModelConfig", "build_convnet",
           "build_likelihood", "build_model"]
