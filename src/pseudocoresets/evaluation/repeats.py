"""Repeats of one evaluation and their summary: every repeat runs the cell's protocol with its own seed on every
test set, its metrics are computed (and checked), and the repeats are summarised as mean and std.

Results: ``summary`` (the clean ``test`` set), ``repeats`` (each repeat's test-set metrics and statistics),
``sets[name]`` per corrupted test set, and the averages over all corrupted sets (``corrupted_mean``) and per
severity (``severity_mean[s]``). With a ``reference`` predictive (the full-data posterior's, classification)
every set also gets agreement, total variation and predictive KL to it (metrics.py).
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import parallel
from ..errors import UserError
from ..models import FlatModel
from ..samplers import PosteriorSpec
from ..utils import progress
from .checks import check_result
from .metrics import agreement_metrics
from .protocols import ProtocolContext
from .protocols.interface import DRAWS
from .scoring import Prepare
from .scoring import METRICS, predictive_metrics
from .settings import EvalSettings

DIAGNOSTICS = ("rhat_median", "rhat_max", "ess_median", "ess_min")  # diagnostics.py, per repeat


def _mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def evaluate_coreset(
    model: FlatModel,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    test_sets: dict[str, torch.Tensor],
    test_y: torch.Tensor,
    settings: EvalSettings,
    quiet: bool = False,
    prepare: Prepare | None = None,
    recorded: PosteriorSpec = PosteriorSpec(),
    reference: dict[str, torch.Tensor] | None = None,
    finished: list[dict] | None = None,
    on_repeat: Callable[[list[dict]], None] | None = None,
    on_draws: Callable[[int, torch.Tensor], None] | None = None,
    targets: torch.Tensor | None = None,
    target_noise: float | None = None,
) -> dict:
    """All repeats of the cell's protocol on every test set (``test`` plus e.g. ``fog/3``); mean/std over repeats
    (module docstring).

    Each repeat r has its own seed (``common.seed + r``), so repeats are independent: ``on_repeat`` receives the
    records of the repeats finished so far (JSON-able) after each one, and passing them back as ``finished``
    skips them, with the same final result as an uninterrupted evaluation. ``recorded`` is the coreset posterior
    the coreset was learnt for; ``targets`` its learnt real targets, learnt under the noise ``target_noise``.
    ``on_draws(seed, draws)`` receives a sampled repeat's diagnostic draws ([chain, draw, point]) before
    ``on_repeat`` records it.
    """
    settings.validate()
    common, module = settings.common, settings.module
    module.check_data(settings.own, coreset_x.dim() == 4, model.likelihood.task == "regression")
    keys = METRICS[model.likelihood.task]
    if reference is not None:
        if model.likelihood.task != "classification":
            raise UserError(
                "agreement with a reference predictive is defined for classification; regression "
                "evaluations of linear models report the exact divergences instead"
            )
        keys = (*keys, "agreement", "tv", "predictive_kl")
    ctx = ProtocolContext(
        model,
        coreset_x,
        coreset_y,
        test_sets,
        test_y,
        settings.posterior(recorded),
        common,
        prepare,
        targets,
        target_noise,
        quiet=True,
    )
    done = {rec["stats"]["seed"] - common.seed: rec for rec in finished or []}
    todo = [r for r in range(common.repeats) if r not in done and parallel.mine(r)]  # under torchrun: split
    records = [done[r] for r in sorted(done) if r < common.repeats]
    for r in progress(todo, len(todo), f"evaluate {settings.protocol}", quiet):
        probs, stats = module.predict(ctx, settings.own, common.seed + r)
        draws = stats.pop(DRAWS, None)
        sets = {}
        for name in test_sets:
            # a corrupted set may hold only the first images of the test split (--evaluate.corruption_subset)
            sets[name] = predictive_metrics(model, probs[name], test_y[: len(test_sets[name])], common.ece_bins)
            if reference is not None:
                sets[name].update(agreement_metrics(probs[name], reference[name]))
        check_result(f"{settings.protocol} repeat {r} (seed {common.seed + r})", sets, stats.get("acceptance_rate"))
        if draws is not None and on_draws is not None:
            on_draws(common.seed + r, draws)
        records.append({"sets": sets, "stats": {**stats, "seed": common.seed + r}})
        if on_repeat is not None:
            on_repeat(records)
    merged = {rec["stats"]["seed"]: rec for part in parallel.all_gather_objects(records) for rec in part}
    records = [merged[common.seed + r] for r in range(common.repeats)]
    per_set: dict[str, list[dict]] = {k: [rec["sets"][k] for rec in records] for k in test_sets}
    runs = [{**rec["sets"]["test"], **rec["stats"]} for rec in records]

    def summarise(rows: list[dict], names=keys) -> dict:
        return {k: dict(zip(("mean", "std"), _mean_std([row[k] for row in rows]))) for k in names}

    sampled = all(row.get("acceptance_rate") is not None for row in runs)
    diagnosed = [k for k in DIAGNOSTICS if all(k in row for row in runs)]
    summary = summarise(runs, (*keys, *(["acceptance_rate"] if sampled else []), *diagnosed))
    result = {
        "protocol": settings.protocol,
        "summary": summary,
        "repeats": runs,
        "posterior": ctx.posterior.record(),
    }
    if common.learnt_targets and sampled:
        result["posterior"]["likelihood"] = "learnt targets"  # the coreset's targets, not its labels
    corrupted = [k for k in test_sets if k != "test"]
    if corrupted:
        result["sets"] = {k: summarise(per_set[k]) for k in corrupted}

        # average over corrupted sets within each repeat, then mean/std over repeats
        def averaged(names):
            rows = [{m: sum(per_set[n][r][m] for n in names) / len(names) for m in keys} for r in range(common.repeats)]
            return summarise(rows)

        result["corrupted_mean"] = averaged(corrupted)
        severities = sorted({k.rsplit("/", 1)[1] for k in corrupted})
        result["severity_mean"] = {s: averaged([k for k in corrupted if k.endswith(f"/{s}")]) for s in severities}
    return result
