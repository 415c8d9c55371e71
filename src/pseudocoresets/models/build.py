"""Model configuration and construction: an architecture plus a likelihood, as one :class:`FlatModel`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UserError
from .convnet import ConvNet
from .flat import FlatModel
from .likelihood import LIKELIHOODS, build_likelihood
from .precision import PRECISIONS

ARCHS = ("convnet", "linear")
NORMS = ("instancenorm", "none")
POOLINGS = ("avgpool", "maxpool", "none")


@dataclass
class ModelConfig:
    """Architecture and likelihood (classes and input shape come from the data)."""

    arch: str = field(default="convnet", metadata={"help": f"network, one of {ARCHS} (linear: y = theta^T x)"})
    width: int = field(default=128, metadata={"help": "convnet: channels of every conv layer"})
    depth: int = field(default=3, metadata={"help": "convnet: number of conv blocks"})
    norm: str = field(default="instancenorm", metadata={"help": f"convnet: normalisation layer, one of {NORMS}"})
    pooling: str = field(default="avgpool", metadata={"help": f"convnet: pooling after each block, one of {POOLINGS}"})
    likelihood: str = field(default="categorical", metadata={"help": f"p(y | f(x)), one of {LIKELIHOODS}"})
    noise_std: float = field(default=1.0, metadata={"help": "gaussian likelihood: the known noise std s"})
    precision: str = field(
        default="fp32",
        metadata={
            "help": f"compute precision of the network, one of {PRECISIONS} "
            "(bf16: mixed precision, parameters and sums in fp32; auto: bf16 where the device has it)"
        },
    )

    compile: bool = field(
        default=True,
        metadata={
            "help": "run the network under torch.compile in stages that plan enough calls to earn the compilation "
            "back (ConvNets; on CPUs a C++ compiler; falls back to eager with one line if compiling fails); "
            "false: always eager",
            "identity": "never",
        },
    )

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise UserError(f"unknown --model.arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.width < 1 or self.depth < 1:
            raise UserError(f"model width and depth must be >= 1 (got width={self.width}, depth={self.depth})")
        if self.norm not in NORMS:
            raise UserError(f"unknown --model.norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.pooling not in POOLINGS:
            raise UserError(f"unknown --model.pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.likelihood not in LIKELIHOODS:
            raise UserError(f"unknown --model.likelihood {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown --model.precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if not self.noise_std > 0:
            raise UserError(f"--model.noise_std must be > 0 (got {self.noise_std})")


def build_model(
    config: ModelConfig, input_shape: tuple[int, ...], num_outputs: int, dtype: torch.dtype = torch.float32
) -> FlatModel:
    """The configured network on inputs of ``input_shape`` (without the batch) with ``num_outputs`` outputs."""
    config.validate()
    if config.arch == "linear":
        features = 1
        for n in input_shape:
            features *= int(n)
        module: nn.Module = nn.Sequential(nn.Flatten(), nn.Linear(features, num_outputs, bias=False))
    else:
        channels, size = int(input_shape[0]), int(input_shape[-1])
        module = ConvNet(config, channels, size, num_outputs)
    return FlatModel(module.to(dtype), build_likelihood(config.likelihood, config.noise_std))
