"""``bpc reference``: the full-data reference posterior (cyclical SGHMC or full-batch HMC), its metrics and its
predictive per test set; the 'Full data' row and the yardstick of agreement."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .. import parallel
from ..errors import ResumeMismatch, UserError
from ..evaluation.checks import check_result
from ..evaluation.scoring import (
    METRICS,
    compile_pays,
    predictive_average,
    predictive_metrics,
    predictive_samples,
    prepared,
)
from ..experts import ExpertPool
from ..io import atomic_write_json, load_tensors, remove_file, save_tensors
from ..evaluation.diagnostics import predictive_diagnostics
from ..evaluation.metrics import agreement_metrics
from ..reference import CSGHMCState, ReferenceConfig, sample_csghmc, sample_hmc, train_member
from ..utils import generator
from .artifacts import ArtifactDir, ceiling_path
from .experts import expert_paths, run_experts
from .progress import claim, load_checkpoint
from .workspace import Workspace

DRAWS_FILE = "diagnostic_draws.safetensors"  # the reference's own diagnostic draws (_function_space_diagnostics)


CSGHMC_KEYS = {"position", "velocity", "cycle", "generator_state", "samples"}
MEMBER_KEYS = {"snapshots", "velocity", "generator_state", "losses"}  # an ensemble member's SGD state


def _chain_starts(ws: Workspace, count: int, g: torch.Generator, init_std: float) -> list[torch.Tensor]:
    """Final snapshots of the experts (one per chain, cycling; trained first when missing) or N(0, init_std^2 I),
    as :meth:`Workspace.reference_starts` resolves ``--reference.start``."""
    if ws.reference_starts() == "experts":
        run_experts(ws)  # nothing to do when they are complete
        pool = ExpertPool(expert_paths(ws), ws.device)
        return [pool.snapshot(c % len(pool.paths), pool.num_snapshots - 1).float() for c in range(count)]
    n = ws.model().num_params
    return [init_std * torch.randn(n, generator=g, device=ws.device) for _ in range(count)]


def run_reference(ws: Workspace, reference: ReferenceConfig | None = None) -> Path:
    """The full-data reference posterior: samples (samples.safetensors), its own metrics on the test split
    (results.json, the "Full data" row) and its predictive per test set (predictive/, filled on demand).
    cSGHMC chains save their state after every cycle (chain_<c>.safetensors), HMC chains when they finish,
    ensemble members after every epoch, so a killed run resumes where it stopped. With ``--reference.compare``
    the companions of the run's reference are sampled too and the ceiling written (:func:`reference_ceiling`);
    ``reference``: sample that reference instead (a companion)."""
    cfg = reference or ws.config.reference
    cfg.validate()
    ws.config.posterior.validate()
    if cfg.sampler == "csghmc" and cfg.settle_rhat and (ws.is_regression or not ws.config.evaluate.diagnostic_points):
        raise UserError(
            "--reference.settle_rhat reads the R-hat of the class predictive on the diagnostic points; it needs "
            "classification data and --evaluate.diagnostic_points > 0"
        )
    art = ws.reference_dir(reference)
    if not art.is_complete():
        try:  # under torchrun the chains are split round robin; rank 0 gathers them from their files and writes
            _sample_reference(ws, cfg, art)
        finally:
            parallel.barrier()
    if reference is None and cfg.compare:
        reference_ceiling(ws)
    return art.path


def reference_ceiling(ws: Workspace) -> dict:
    """The run's reference against each of its companions (``--reference.compare``: the same or another kind,
    sampled with independent seeds): agreement, total variation and predictive KL of their test predictives,
    and each one's accuracy, written to ``references/ceiling.json``. No coreset's agreement with the reference
    can be read as better than two references' agreement with each other."""
    own = ws.config.reference
    main = ws.reference_dir()
    test_x = ws.data.test_x
    ours = reference_predictive(ws, main.path, "test", test_x)
    targets = ws.targets(ws.data.test_y)
    rows = []
    for kind in own.compare:
        companion = own.companion(kind)
        path = run_reference(ws, companion)
        theirs = reference_predictive(ws, path, "test", test_x)
        rows.append(
            {
                "sampler": kind,
                "seed": companion.seed,
                "directory": path.relative_to(ws.out).as_posix(),
                **agreement_metrics(theirs, ours),
                "accuracy": float((theirs.argmax(1) == targets).float().mean()),
            }
        )
    record = {
        "reference": {"sampler": own.sampler, "seed": own.seed, "directory": main.path.relative_to(ws.out).as_posix()},
        "accuracy": float((ours.argmax(1) == targets).float().mean()),
        "against": rows,
    }
    if parallel.is_main():
        atomic_write_json(ceiling_path(ws.out), record)
    return record


def _run_chains(ws: Workspace, cfg, art: ArtifactDir, model, x, y, prior: float, starts: list) -> None:
    """Every chain (member) of this rank up to ``cfg``'s length, each resumed from its file; then waits for the
    other ranks' chains."""
    for c in range(cfg.chains):
        if not parallel.mine(c):
            continue
        path = art.path / f"chain_{c:03d}.safetensors"
        if cfg.sampler == "ensemble":
            _ensemble_member(ws, model, x, y, prior, cfg, c, path)
            continue
        saved = load_checkpoint(path, {"samples", "accept"} if cfg.sampler == "hmc" else CSGHMC_KEYS, ws.device)
        if cfg.sampler == "hmc":
            if "samples" not in saved:
                chain_g = generator(cfg.seed + 1000 + c, ws.device)
                kept, accept = sample_hmc(model, x, y, prior, cfg, starts[c], chain_g)
                saved = {"samples": torch.stack(kept), "accept": torch.tensor([accept])}
                save_tensors(path, saved)
        else:
            if saved:
                state = CSGHMCState(
                    saved["position"],
                    saved["velocity"],
                    int(saved["cycle"][0]),
                    saved["generator_state"].cpu(),
                    list(saved["samples"]),
                )
            else:
                chain_g = generator(cfg.seed + 1000 + c, ws.device)
                state = CSGHMCState(starts[c], torch.zeros_like(starts[c]), 0, chain_g.get_state(), [])

            def checkpoint(st: CSGHMCState, path=path, c=c) -> None:
                save_tensors(
                    path,
                    {
                        "position": st.position,
                        "velocity": st.velocity,
                        "cycle": torch.tensor([st.cycle]),
                        "generator_state": st.generator_state,
                        "samples": torch.stack(st.samples),
                    },
                )
                if not ws.quiet:
                    print(f"reference chain {c + 1}/{cfg.chains}: cycle {st.cycle}/{cfg.cycles}")

            sample_csghmc(model, x, y, prior, cfg, state, on_cycle=checkpoint)  # its file then holds all its samples
    parallel.barrier()  # every rank's chains are in their files


def _sample_reference(ws: Workspace, cfg, art: ArtifactDir) -> Path:
    if cfg.sampler == "csghmc":
        calls = cfg.chains * cfg.cycles * cfg.steps_per_cycle(len(ws.data.train_y))
    elif cfg.sampler == "ensemble":
        calls = cfg.chains * cfg.epochs * -(-len(ws.data.train_y) // cfg.batch_size)
    else:
        calls = cfg.chains * cfg.iterations * (cfg.leapfrog_steps + 1)
    model = ws.model(planned_calls=calls)
    x, y = ws.train_x(), ws.targets(ws.data.train_y)
    if cfg.sampler == "csghmc":
        cfg.check_schedule(len(y))
    claim(art)
    prior = float(ws.config.posterior.prior_std)
    g = generator(cfg.seed, ws.device)
    starts = _chain_starts(ws, cfg.chains, g, cfg.init_std) if cfg.sampler != "ensemble" else []
    t0 = time.perf_counter()
    settling: dict = {}
    cycles, trace = cfg.cycles, []
    kept = None  # under settle_rhat: the samples per chain of the cycles the rule settled on
    while True:  # csghmc under settle_rhat: double the cycles until the chains agree (one pass otherwise)
        _run_chains(ws, dataclasses.replace(cfg, cycles=cycles), art, model, x, y, prior, starts)
        if cfg.sampler != "csghmc" or not cfg.settle_rhat:
            break
        # each check reads the first `cycles` cycles of every chain, so a resumed run (whose chains may hold more
        # cycles) makes the same checks as one never stopped; the main rank decides for every rank
        kept = cycles * cfg.samples_per_cycle
        rhat = None
        if parallel.is_main():
            per_chain = [
                load_tensors(art.path / f"chain_{c:03d}.safetensors", ws.device)["samples"][:kept]
                for c in range(cfg.chains)
            ]
            rhat = _function_space_diagnostics(ws, model, per_chain, None).get("rhat_median", float("inf"))
        rhat = parallel.broadcast_object(rhat)
        trace.append({"cycles": cycles, "rhat_median": rhat})
        cap = cfg.max_cycles or 8 * cfg.cycles
        if rhat <= cfg.settle_rhat or cycles >= cap:
            settling = {"cycles": cycles, "stopped": "settled" if rhat <= cfg.settle_rhat else "cap", "trace": trace}
            break
        cycles = min(2 * cycles, cap)
    if not parallel.is_main():
        return art.path
    chains = [load_tensors(art.path / f"chain_{c:03d}.safetensors", ws.device) for c in range(cfg.chains)]
    if kept is not None:
        chains = [{**chain, "samples": chain["samples"][:kept]} for chain in chains]
    accepts = [float(chain["accept"][0]) for chain in chains if "accept" in chain]
    thetas = torch.cat([chain["samples"] for chain in chains])
    sampling = time.perf_counter() - t0
    save_tensors(art.path / "samples.safetensors", {"samples": thetas})
    predictive = reference_predictive(ws, art.path, "test", ws.data.test_x)
    metrics = predictive_metrics(model, predictive, ws.targets(ws.data.test_y), ws.config.evaluate.ece_bins)
    keys = METRICS[model.likelihood.task]
    check_result(
        "the reference posterior",
        {"test": {k: metrics[k] for k in keys}},
        advice="lower --reference.lr (csghmc) or step_size (hmc)",
    )
    convergence = _function_space_diagnostics(ws, model, [chain["samples"] for chain in chains], art.path)
    results = {
        "method": "full data",
        "protocol": f"reference-{cfg.sampler}",
        "convergence": {**convergence, **({"settling": settling} if settling else {})},
        "ipc": 0,
        "dataset": ws.config.data.name,
        "samples": len(thetas),
        "summary": {k: {"mean": metrics[k], "std": None} for k in keys},
        "acceptance_rate": sum(accepts) / len(accepts) if accepts else None,
        "sampling_seconds": sampling,
        "repeats": [metrics],
    }
    atomic_write_json(art.path / "results.json", results)
    art.finish(
        cfg.seed,
        {"sampling": sampling, "predictive": time.perf_counter() - t0 - sampling},  # parts that sum to the stage
        {"samples": len(thetas), "num_params": model.num_params},
    )
    return art.path


@torch.no_grad()
def _function_space_diagnostics(ws: Workspace, model, per_chain: list[torch.Tensor], directory: Path | None) -> dict:
    """Split R-hat and ESS of the reference's own chains in function space (evaluation/diagnostics.py): the log
    predictive probability of the first ``--evaluate.diagnostic_points`` test labels under every kept sample, one
    scalar chain per point. Empty where there is nothing to diagnose: regression, fewer than 4 samples per chain
    (an ensemble keeps one per member), or chains of unequal length. The draws are saved in ``directory`` (tensor
    ``log_predictive`` [chain, draw, point] of ``diagnostic_draws.safetensors``) for ArviZ or any other tool."""
    points = min(ws.config.evaluate.diagnostic_points, len(ws.data.test_y))
    if model.likelihood.task != "classification" or not points or len({len(s) for s in per_chain}) != 1:
        return {}
    diag_x = prepared(ws.data.test_x[:points].to(ws.device), ws.prepare)
    diag_y = ws.targets(ws.data.test_y[:points]).long().reshape(-1, 1)
    log_probs = torch.stack(
        [
            torch.stack([torch.log_softmax(model._forward(t, diag_x), 1).gather(1, diag_y).squeeze(1) for t in s])
            for s in per_chain
        ]
    )
    if directory is not None:
        save_tensors(directory / DRAWS_FILE, {"log_predictive": log_probs})
    return {"draws_per_chain": int(log_probs.shape[1]), **predictive_diagnostics(log_probs.cpu())}


def _ensemble_member(ws: Workspace, model, x, y, prior: float, cfg, c: int, path: Path) -> None:
    """Member ``c`` of an ensemble reference, trained unless its file holds it; its state saved after every epoch
    (``chain_<c>.partial.safetensors``), so a killed run resumes at the epoch where it stopped."""
    if "samples" in load_checkpoint(path, {"samples"}, ws.device):
        return
    partial = path.with_name(f"{path.stem}.partial.safetensors")
    resume = load_checkpoint(partial, MEMBER_KEYS, ws.device) or None
    try:
        theta = train_member(model, x, y, prior, cfg, c, resume, on_checkpoint=lambda st: save_tensors(partial, st))
    except ResumeMismatch as exc:
        raise UserError(f"{partial} does not fit this run ({exc}); delete it to train member {c} again") from None
    save_tensors(path, {"samples": theta[None]})
    remove_file(partial)
    if not ws.quiet:
        print(f"reference ensemble: member {c + 1}/{cfg.chains} trained")


def reference_predictive(ws: Workspace, directory: Path, name: str, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The reference posterior's predictive on one test set (``name``: ``test`` or e.g. ``fog/3`` with the
    corruption ``seed``), computed once and kept under ``predictive/`` of the reference directory. A corrupted
    set made from the first n test images only (``--evaluate.corruption_subset``) is kept under its own name."""
    key = "test" if name == "test" else f"{name.replace('/', '-')}-seed{seed}"
    if name != "test" and len(x) != len(ws.data.test_x):
        key += f"-first{len(x)}"
    path = Path(directory) / "predictive" / f"{key}.safetensors"
    if path.exists():
        return load_tensors(path, ws.device)["probs"]
    thetas = load_tensors(Path(directory) / "samples.safetensors", ws.device)["samples"]
    model = ws.model()
    batch = ws.config.evaluate.test_batch
    compile = compile_pays(ws.config.evaluate.compile, model, len(thetas), len(x), batch, ws.device)
    score = predictive_samples if model.likelihood.task == "regression" else predictive_average
    probs = score(model, thetas, x.to(ws.device), batch, ws.prepare, compile)
    save_tensors(path, {"probs": probs})
    return probs


def reference_samples(ws: Workspace) -> torch.Tensor:
    art = ws.reference_dir()
    if not art.is_complete():
        raise UserError(
            f"no complete reference posterior in {art.path} for this configuration; run 'bpc reference' first"
        )
    return load_tensors(art.path / "samples.safetensors", ws.device)["samples"]
