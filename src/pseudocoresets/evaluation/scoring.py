"""Scoring kept posterior states on test sets: the averaged predictive (classification) or the per-state
predictive means (regression), in batches, compiled where it pays, and the task's metrics of a predictive.

Each test batch is prepared once (normalisation, ZCA) and scored by every state, so the preprocessing is not
repeated per posterior sample. Images are scored in channels-last memory order.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..models import FlatModel, compiling
from .metrics import classification_metrics, regression_metrics
from .settings import COMPILE_MIN_FORWARDS

# summary metrics per likelihood task (models/likelihood.py)
METRICS = {"classification": ("accuracy", "nll", "ece", "brier"), "regression": ("rmse", "nll", "coverage_95")}


Prepare = Callable[[torch.Tensor], torch.Tensor]


def prepared(x: torch.Tensor, prepare: Prepare | None) -> torch.Tensor:
    """A test batch as network input; images in channels-last memory order (the CPU convolutions and
    elementwise layers run 1.09-1.18x faster on it at widths 32-64, ``benchmarks/results/scoring.md``; same
    values to 1e-6)."""
    x = prepare(x) if prepare is not None else x
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


@torch.no_grad()
def predictive_probs(
    model: FlatModel, theta: torch.Tensor, x: torch.Tensor, batch: int, prepare: Prepare | None = None
) -> torch.Tensor:
    """softmax(f(x; theta)) in batches; ``prepare`` maps stored (e.g. uint8) images to network inputs."""
    return predictive_average(model, theta[None], x, batch, prepare)


def compile_pays(compile: bool, model: FlatModel, samples: int, images: int, batch: int, device: torch.device) -> bool:
    """Whether scoring ``samples`` parameter vectors on ``images`` inputs should run compiled: asked for, at least
    COMPILE_MIN_FORWARDS batch forwards (compilation costs 2-10 s, which a short evaluation would not earn back),
    and a network and device that can compile (models/compiling.py)."""
    if not compile or samples * -(-images // max(batch, 1)) < COMPILE_MIN_FORWARDS:
        return False
    return compiling.can_compile(model.module, device)


def _scorer(model: FlatModel, batch: int, compile: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(theta, x) -> logits; compiled, a short last batch is padded to ``batch`` rows (one compiled shape), and a
    failed compilation falls back to the eager network with one line on stderr."""
    if not compile or compiling.failed():
        return model._forward  # eager: what --no-evaluate.compile or a short scoring asks for
    forward = model.compiled()

    def compiled(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not compiling.failed():
            try:
                return forward(theta, x)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager network gives the same logits
                compiling.record_failure(exc)
        return model._forward(theta, x)

    def padded(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if len(x) == batch:
            return compiled(theta, x)
        fill = x[-1:].expand(batch - len(x), *x.shape[1:])
        return compiled(
            theta,
            torch.cat([x, fill]).contiguous(memory_format=torch.channels_last)
            if x.dim() == 4
            else torch.cat([x, fill]),
        )[: len(x)]

    return padded


@torch.no_grad()
def predictive_average(
    model: FlatModel,
    thetas: torch.Tensor,
    x: torch.Tensor,
    batch: int,
    prepare: Prepare | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """1/K sum_k softmax(f(x; theta_k)) for samples ``thetas`` [K, P].

    Each test batch is prepared once (normalisation, ZCA) and scored by every sample, so the
    preprocessing is not repeated per posterior sample. ``compile``: the network under torch.compile.
    """
    score = _scorer(model, batch, compile)
    out = []
    for i in range(0, len(x), batch):
        xb = prepared(x[i : i + batch], prepare)
        total = model.likelihood.predictive(score(thetas[0], xb))
        for theta in thetas[1:]:
            total += model.likelihood.predictive(score(theta, xb))
        out.append(total / len(thetas))
    return torch.cat(out)


@torch.no_grad()
def predictive_samples(
    model: FlatModel,
    thetas: torch.Tensor,
    x: torch.Tensor,
    batch: int,
    prepare: Prepare | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """Per-sample predictive statistics [K, N] (regression: the means f(x; theta_k)), kept for the mixture's NLL."""
    score = _scorer(model, batch, compile)
    out = []
    for i in range(0, len(x), batch):
        xb = prepared(x[i : i + batch], prepare)
        out.append(torch.stack([model.likelihood.predictive(score(theta, xb)) for theta in thetas]))
    return torch.cat(out, dim=1)


def predictive_metrics(model: FlatModel, predictive: torch.Tensor, targets: torch.Tensor, ece_bins: int = 15) -> dict:
    """The task's metrics of a predictive (classification: averaged probabilities; regression: per-sample means)."""
    if model.likelihood.task == "regression":
        return regression_metrics(predictive, targets, model.likelihood.noise_std)
    return classification_metrics(predictive, targets, ece_bins)
