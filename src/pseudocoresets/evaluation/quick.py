"""A cheap score of a coreset while it is being learnt: train one network on it with SGD, report test accuracy.

This is the MTT users' habit (a quick evaluation of intermediate synthetic sets), not a Bayesian evaluation:
one network from the default initialisation, ``steps`` full-batch SGD steps on the coreset, accuracy (or RMSE
for regression) on the first ``test_points`` test points. It draws nothing from the distillation's generators,
so scoring snapshots leaves the learnt coreset unchanged.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..models import FlatModel


def quick_score(
    model: FlatModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    steps: int = 300,
    lr: float = 0.01,
    seed: int = 0,
) -> dict[str, float]:
    """``{"accuracy": ...}`` (classification) or ``{"rmse": ...}`` (regression) of one SGD-trained network."""
    theta = model.init(seed).to(images.device)
    x = images.detach()
    for _ in range(steps):
        theta.requires_grad_(True)
        (grad,) = torch.autograd.grad(model.nll(theta, x, labels), theta)
        theta = (theta - lr * grad).detach()
    with torch.no_grad():
        out = model(theta, prepare(test_x))
    if model.likelihood.task == "regression":
        return {"rmse": float(((out.reshape(test_y.shape) - test_y) ** 2).mean().sqrt())}
    probs = model.likelihood.predictive(out)
    return {"accuracy": float((probs.argmax(1) == test_y).float().mean())}
