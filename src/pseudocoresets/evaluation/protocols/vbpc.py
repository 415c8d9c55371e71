"""``vbpc``: VBPC's evaluation protocol (Lee, Lee and Lee, ICLR 2025): a network trained on the coreset, the
closed-form posterior of its last layer given the coreset, and the one-pass predictive of that posterior.

Each repeat (seed r) draws the network's initialisation from r, trains it on the coreset (``steps`` steps of SGD
with momentum 0.9 and step size ``lr`` on the squared error between its outputs and the coreset's targets: the
learnt targets when the coreset has them, else its centred one-hot labels), then forms the coreset posterior of
the last layer on the trained body's features ((V1)-(V3) of :mod:`pseudocoresets.objectives.vbpc`, with the
coreset posterior's w, T and sigma, and the targets' Gaussian noise ``--evaluate.target_noise``) and predicts
every test set with (V8). A linear model has no body: nothing is trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ...errors import UserError
from ...models import FlatModel
from ...models.last_layer import (
    LR_MAX,
    base_targets,
    features,
    has_body,
    last_layer_posterior,
    predictive_probs,
    squared_error_step,
)
from ...samplers import PosteriorSpec
from .interface import Prediction, ProtocolContext

NAME = "vbpc"
SECTION = "vbpc_eval"  # the objective vbpc has the section vbpc


@dataclass
class Config:
    """VBPC's closed-form last-layer evaluation."""

    steps: int = field(
        default=300, metadata={"help": "training steps of the network on the coreset", "identity": "unless-set"}
    )
    lr: float = field(
        default=0.01, metadata={"help": "SGD step size of that training (momentum 0.9)", "identity": "unless-set"}
    )

    def validate(self) -> None:
        if self.steps < 0 or not self.lr > 0:
            raise UserError("--vbpc_eval.steps must be >= 0 and --vbpc_eval.lr > 0")
        if self.lr > LR_MAX:
            raise UserError(
                f"--vbpc_eval.lr must be at most {LR_MAX:g} (got {self.lr:g}): the network's SGD diverges beyond; "
                "the default is 0.01"
            )


# the options' names before each protocol had its own section
ALIASES = {"evaluate.vbpc_steps": "steps", "evaluate.vbpc_lr": "lr"}


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    return {}


def check_data(config: Config, is_image: bool, is_regression: bool) -> None:
    if is_regression:
        raise UserError("the vbpc protocol predicts classes; use --protocols hmc for regression")


def planned_calls(config: Config) -> int:
    return config.steps


def kept_states(config: Config) -> int:
    return 0


def predict(ctx: ProtocolContext, config: Config, seed: int) -> Prediction:
    if ctx.model.likelihood.task != "classification":
        check_data(config, True, True)
    return last_layer_predictive(
        ctx.model,
        ctx.coreset_x,
        ctx.coreset_y,
        ctx.targets,
        ctx.test_sets,
        ctx.posterior,
        seed,
        config.steps,
        config.lr,
        ctx.common.test_batch,
        ctx.target_noise_or_default(),
        ctx.prepare,
    )


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
