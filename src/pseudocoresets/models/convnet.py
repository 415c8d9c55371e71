"""The ConvNet of Dataset Condensation / MTT / the paper.

``depth`` blocks of Conv2d(3x3, padding 1, ``width`` channels) -> norm -> ReLU -> pool, then one Linear
layer to the classes. ``norm="instancenorm"`` is GroupNorm with one group per channel (affine), so
there is no train/eval difference. With the defaults on 3x32x32 inputs it has 320,010 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError


class ReLU(nn.Module):
    """ReLU that overwrites its input when no gradient is recorded (scoring: one activation buffer less per
    layer; with channels-last input 1.26-1.58x on the forward, ``benchmarks/results/scoring.md``), out of place
    otherwise (autograd needs its input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.relu() if torch.is_grad_enabled() else x.relu_()


class ConvNet(nn.Module):
    def __init__(self, config, channels: int, image_size: int, num_classes: int):
        super().__init__()
        config.validate()
        layers: list[nn.Module] = []
        size, in_ch = image_size, channels
        for _ in range(config.depth):
            layers.append(nn.Conv2d(in_ch, config.width, kernel_size=3, padding=1))
            if config.norm == "instancenorm":
                layers.append(nn.GroupNorm(config.width, config.width, affine=True))
            layers.append(ReLU())
            if config.pooling != "none":
                if size < 2:
                    raise UserError(f"depth {config.depth} pools {image_size}px images below 1px; lower --model.depth")
                layers.append(nn.AvgPool2d(2) if config.pooling == "avgpool" else nn.MaxPool2d(2))
                size //= 2
            in_ch = config.width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(config.width * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def build_convnet(config, channels: int, image_size: int, num_classes: int) -> ConvNet:
    return ConvNet(config, channels, image_size, num_classes)
