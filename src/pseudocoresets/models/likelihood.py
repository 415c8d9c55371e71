"""Likelihoods p(y | f(x; theta)) of a network's outputs: the model's observation noise as a component.

Every consumer (expert SGD, student steps, objectives, samplers, the evaluation's predictive) goes through
:meth:`FlatModel.nll` and :meth:`Likelihood.predictive`, so a new likelihood is one class here. ``task``
(classification or regression) picks the evaluation's metrics; ``num_outputs`` is the network's output size
for data with a given number of classes.

- :class:`Categorical` (images): p(y = k | x) = softmax(f(x))_k;  nll = cross-entropy.
- :class:`Gaussian` (regression with known noise s): p(y | x) = N(y; f(x), s^2);
  nll = (y - f)^2 / (2 s^2) + log(s sqrt(2 pi)).
- :class:`Bernoulli` (logistic regression): p(y = 1 | x) = sigmoid(f(x)); nll = binary cross-entropy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import UserError

LIKELIHOODS = ("categorical", "gaussian", "bernoulli")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


class Categorical:
    name = "categorical"
    task = "classification"

    @staticmethod
    def num_outputs(num_classes: int) -> int:
        return num_classes

    def nll(self, outputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(outputs, targets, reduction=reduction)

    def predictive(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities [B, K], averaged over posterior samples by the evaluation."""
        return F.softmax(outputs, dim=1)


class Gaussian:
    name = "gaussian"
    task = "regression"

    @staticmethod
    def num_outputs(num_classes: int) -> int:
        return 1

    def __init__(self, noise_std: float = 1.0):
        if not noise_std > 0:
            raise UserError(f"the Gaussian likelihood needs a noise std > 0 (got {noise_std})")
        self.noise_std = float(noise_std)

    def nll(self, outputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        f = outputs.reshape(targets.shape)
        values = 0.5 * ((targets - f) / self.noise_std) ** 2 + math.log(self.noise_std * math.sqrt(2 * math.pi))
        return _reduce(values, reduction)

    def predictive(self, outputs: torch.Tensor) -> torch.Tensor:
        """The predictive mean f(x) [B] (its average over samples is the posterior predictive mean)."""
        return outputs.reshape(len(outputs), -1)[:, 0]


class Bernoulli:
    name = "bernoulli"
    task = "classification"

    @staticmethod
    def num_outputs(num_classes: int) -> int:
        return 1

    def nll(self, outputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        logits = outputs.reshape(targets.shape)
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction=reduction)

    def predictive(self, outputs: torch.Tensor) -> torch.Tensor:
        """[B, 2] probabilities of classes 0 and 1, so the classification metrics apply unchanged."""
        p = torch.sigmoid(outputs.reshape(len(outputs), -1)[:, 0])
        return torch.stack([1 - p, p], dim=1)


def build_likelihood(name: str, noise_std: float = 1.0):
    if name == "categorical":
        return Categorical()
    if name == "gaussian":
        return Gaussian(noise_std)
    if name == "bernoulli":
        return Bernoulli()
    raise UserError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")
