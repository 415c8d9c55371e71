"""Networks and their flat-parameter functional form."""

from .convnet import ConvNet, ModelConfig, build_convnet
from .flat import FlatModel

__all__ = ["ConvNet", "ModelConfig", "build_convnet", "FlatModel"]
