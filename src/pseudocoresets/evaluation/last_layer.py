"""VBPC's evaluation protocol (``--protocols vbpc``): a network trained on the coreset, the closed-form
posterior of its last layer given the coreset, and the one-pass predictive of that posterior.

Each repeat (seed r) draws the network's initialisation from r, trains it on the coreset (``vbpc_steps`` steps of
SGD with momentum 0.9 and step size ``vbpc_lr`` on the squared error between its outputs and the coreset's
targets: the learnt targets when the coreset has them, else its centred one-hot labels), then forms the
coreset posterior of the last layer on the trained body's features ((V1)-(V3) of
:mod:`pseudocoresets.objectives.vbpc`, with the coreset posterior's w, T and sigma) and predicts every test set
with (V8) (classes) or the Gaussian predictive (regression). A linear model has no body: nothing is trained.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from ..models import FlatModel
from ..models.last_layer import (
    base_targets,
    features,
    has_body,
    last_layer_posterior,
    predictive_probs,
    squared_error_step,
)
from ..samplers import PosteriorSpec


def train_on_coreset(
    model: FlatModel, x: torch.Tensor, targets: torch.Tensor, seed: int, steps: int, lr: float
) -> torch.Tensor:
    """``steps`` full-batch SGD steps (momentum 0.9) on the squared error of the outputs against ``targets``."""
    theta = model.init(seed).to(x.device)
    momentum = torch.zeros_like(theta)
    for _ in range(steps):
        theta = squared_error_step(model, theta, momentum, x, targets, lr)
    return theta


def last_layer_predictive(
    model: FlatModel,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    targets: torch.Tensor | None,
    test_sets: dict[str, torch.Tensor],
    posterior: PosteriorSpec,
    seed: int,
    steps: int,
    lr: float,
    batch: int,
    noise: float,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict]:
    """One repeat of the protocol (classification): the predictive on every test set ([N, K] probabilities) and
    timing stats."""
    start = time.perf_counter()
    if targets is None:
        with torch.no_grad():
            outputs = model(torch.zeros(model.num_params, device=coreset_x.device), coreset_x[:1]).shape[1]
        targets = base_targets(coreset_y, outputs)
    t = targets
    t = t.to(coreset_x.device, torch.float32)
    theta = train_on_coreset(model, coreset_x, t, seed, steps, lr) if has_body(model) else None
    with torch.no_grad():
        post = last_layer_posterior(
            features(model, theta, coreset_x), t, posterior.prior_std, posterior.weight, posterior.temperature, noise
        )
        trained = time.perf_counter() - start
        probs = {}
        for name, x in test_sets.items():
            parts = []
            for i in range(0, len(x), batch):
                xb = x[i : i + batch]
                xb = prepare(xb) if prepare is not None else xb
                mu, var = post.moments(features(model, theta, xb))
                parts.append(predictive_probs(mu, var))
            probs[name] = torch.cat(parts)
    return probs, {
        "training_seconds": trained,
        "prediction_seconds": time.perf_counter() - start - trained,
        "ridge": post.lam,
    }
