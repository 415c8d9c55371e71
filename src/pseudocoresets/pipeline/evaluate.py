"""Stage 3, ``bpc evaluate``: the Bayesian evaluation of one coreset with one protocol, on the test split and
optionally its corrupted copies, resumable per repeat."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import parallel
from ..errors import UserError
from ..evaluation import EvalConfig, evaluate_coreset
from ..evaluation.checks import repeat_records_fit
from ..evaluation.scoring import METRICS
from ..evaluation.gaussian import exact_comparison
from ..io import atomic_write_json, read_json, remove_file, save_tensors
from .coreset import check_targets, load_coreset
from .progress import claim
from .reference import reference_predictive, reference_samples
from .workspace import Workspace


def run_evaluate(ws: Workspace, method: str, ipc: int, protocol: str, replicate: int = 0) -> Path:
    """Stage 3: Bayesian evaluation of one coreset (the cell's ``replicate``-th) on the test split with one
    protocol."""
    cell = ws.config.resolve(method, ipc, protocol, replicate)
    ev = cell.evaluation
    ev.validate()
    ws.check_eval_cell(cell)
    art = ws.eval_dir(cell)
    if art.is_complete():
        return art.path
    core = ws.coreset_dir(cell)
    if not core.is_complete():
        raise UserError(f"no complete coreset in {core.path}; run 'bpc distill' for {method} at ipc {ipc} first")
    _ = ws.data
    coreset = load_coreset(core.path, ws.device)
    if ev.common.learnt_targets and coreset.targets is None:
        raise UserError(
            f"--evaluate.learnt_targets: the {method} coreset has no learnt targets (only vbpc learns them); "
            "evaluate it without the option"
        )
    claim(art)
    x, y, recorded = coreset.images, coreset.labels, coreset.posterior
    ws.check_coreset(core.path / "coreset.safetensors", x, y)
    check_targets(
        coreset.targets,
        len(y),
        coreset.path,
        "fix the imported set's targets or delete the coreset's directory, and re-run 'bpc distill'",
        ws.data.num_classes,
    )
    test_sets = {"test": ws.data.test_x.to(ws.device)}
    test_sets.update(corrupted_sets(ws, ev.common))
    t0 = time.perf_counter()
    model = ws.model(planned_calls=ev.planned_calls())
    reference = None
    if ev.common.agreement:
        reference_samples(ws)  # a clear error when it is missing
        ref_dir = ws.reference_dir().path
        reference = {
            name: reference_predictive(ws, ref_dir, name, xs, ev.common.seed) for name, xs in test_sets.items()
        }
    partial = art.path / "repeats.partial.json"  # the repeats finished so far (each has its own seed)
    finished = read_json(partial) if partial.exists() else None
    keys = METRICS[model.likelihood.task] + (("agreement", "tv", "predictive_kl") if reference is not None else ())
    if finished is not None and not repeat_records_fit(
        finished, set(test_sets), keys, ev.common.seed, ev.common.repeats
    ):
        raise UserError(f"{partial} does not hold this evaluation's finished repeats; delete it to redo them")
    results = evaluate_coreset(
        model,
        x,
        y,
        test_sets,
        ws.targets(ws.data.test_y),
        ev,
        quiet=ws.quiet,
        prepare=ws.prepare,
        recorded=recorded,
        reference=reference,
        finished=finished,
        on_repeat=lambda records: atomic_write_json(partial, records) if parallel.is_main() else None,
        on_draws=lambda seed, draws: save_tensors(art.path / draws_file(seed), {"log_predictive": draws}),
        targets=coreset.targets,
        target_noise=coreset.target_noise,
    )
    results.update(
        {
            "method": method,
            "ipc": ipc,
            "dataset": ws.config.data.name,
            "coreset_seed": cell.distill.seed,
            "replicate": replicate,
        }
    )
    if ws.config.model.arch == "linear" and ws.is_regression:  # Bayesian linear regression: everything exact
        results["exact"] = exact_comparison(
            ws.train_x(),
            ws.data.train_y,
            x,
            y,
            ws.config.model.noise_std,
            ev.posterior(recorded),
            ws.prepare(ws.data.test_x),
            ws.data.test_y,
        )
    if parallel.is_main():
        atomic_write_json(art.path / "results.json", results)
        art.finish(
            ev.common.seed,
            {"evaluate": time.perf_counter() - t0},
            {"method": method, "ipc": ipc, "resumed_repeats": len(finished or []), "processes": parallel.world()},
        )
        remove_file(partial)
    parallel.barrier()
    return art.path


def draws_file(seed: int) -> str:
    """The file holding the diagnostic draws of an evaluation's repeat with this seed: the log predictive
    probability of the diagnostic test points' labels, tensor ``log_predictive`` [chain, draw, point]."""
    return f"diagnostic_draws_seed{seed}.safetensors"


def corruption_names(requested: list[str]) -> list[str]:
    from ..corruptions import CORRUPTIONS, STANDARD

    names: list[str] = []
    for item in requested:
        names += list(CORRUPTIONS if item == "all" else STANDARD if item == "standard" else [item])
    return list(dict.fromkeys(names))


def corrupted_sets(ws: Workspace, ev: EvalConfig) -> dict[str, torch.Tensor]:
    """uint8 corrupted copies of the test split, generated once and cached next to the decoded data."""
    if not ev.corruptions:
        return {}
    from ..corruptions import corrupted_test_sets
    from ..data.datasets import default_cache_dir

    cache = Path(ws.config.data.cache_dir or default_cache_dir()) / "corruptions"
    images = ws.data.test_x.numpy()
    if ev.corruption_subset:
        images = images[: ev.corruption_subset]
    sets = corrupted_test_sets(images, corruption_names(ev.corruptions), ev.severities, seed=ev.seed, cache_dir=cache)
    return {f"{name}/{sev}": torch.from_numpy(arr).to(ws.device) for (name, sev), arr in sets}
