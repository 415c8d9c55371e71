"""The protocol interface: what the evaluation calls, and what every protocol may draw on.

A protocol module (one per way of turning a coreset into a predictive) provides

- ``NAME``: the protocol's name on the command line (``--protocols``) and in artifact names;
- ``SECTION``: the name of its options' section (``--SECTION.option``, ``SECTION: {option: value}`` in YAML);
- ``Config``: a dataclass of its own options, each with a ``help`` text, and a ``validate()``;
- ``ALIASES``: earlier spellings of its options (``{"evaluate.friction": "friction"}``), still accepted;
- ``preset_values(preset, ipc) -> dict``: official values as dotted keys (``"SECTION.option"`` or a shared
  ``"evaluate.option"``), applied to an evaluation cell unless the user set that option;
- ``check_data(config, is_image, is_regression)``: raise UserError for data the protocol cannot evaluate
  (called for every cell before any work);
- ``planned_calls(config) -> int``: network (gradient) calls of one repeat, for the compile decision;
- ``kept_states(config) -> int``: parameter vectors one repeat holds at once, for the memory check;
- ``predict(ctx, config, seed) -> (probabilities per test set, stats)``: one repeat.

``predict`` returns, per test set name, the averaged predictive probabilities [N, K] (classification) or the
per-state predictive means [S, N] (regression), and a dict of JSON-able statistics of the repeat (a sampled
protocol reports ``acceptance_rate``, ``samples`` and its convergence diagnostics there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...models import FlatModel
from ...samplers import PosteriorSpec
from ..scoring import Prepare
from ..settings import EvalConfig


@dataclass
class ProtocolContext:
    """Everything a protocol may use for one coreset. Inputs are in stored form (``prepare`` maps them to network
    inputs); ``posterior`` is the coreset posterior to predict with (the recorded one with the evaluation's
    options applied); ``targets`` are the coreset's learnt real targets, if it has any, learnt under the Gaussian
    noise ``target_noise``."""

    model: FlatModel
    coreset_x: torch.Tensor
    coreset_y: torch.Tensor
    test_sets: dict[str, torch.Tensor]
    test_y: torch.Tensor
    posterior: PosteriorSpec
    common: EvalConfig
    prepare: Prepare | None = None
    targets: torch.Tensor | None = None
    target_noise: float | None = None
    quiet: bool = True

    def target_noise_or_default(self) -> float:
        """The noise of the learnt targets' likelihood: --evaluate.target_noise, else the one they were learnt
        with, else 0.1."""
        return self.common.target_noise or self.target_noise or 0.1


Prediction = tuple[dict[str, torch.Tensor], dict[str, Any]]
"""(predictive of every test set, the repeat's statistics). The statistics are JSON-able except ``DRAWS``."""

DRAWS = "diagnostic_draws"
"""Key of a repeat's diagnostic draws in its statistics: log p(y_j | x_j, theta) of the fixed diagnostic test
points, [chain, draw, point] (sampled protocols), saved beside the results rather than in them."""
