"""Stage 2, ``bpc distill``: learn (or draw) the coreset of one (method, ipc) cell, resumable per iteration."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import torch

from .. import parallel
from ..augment import build_dsa
from ..distill import distill, random_real_subset
from ..distill.loop import checkpoint_iteration
from ..errors import ResumeMismatch, UserError
from ..experts import ExpertPool
from ..io import atomic_write_json, remove_file, save_tensors
from ..objectives import DistillContext
from ..utils import generator
from .experts import expert_paths, run_experts
from .interop import load_distilled, load_distilled_targets
from .progress import ProgressLog, StopOnSignal, claim, load_checkpoint
from .reference import reference_samples
from .workspace import Workspace, identity_dict, needs_experts, needs_reference


DISTILL_KEYS = {"iteration", "images", "generator", "elapsed"}


def _mismatch(checkpoint: Path, exc: ResumeMismatch) -> UserError:
    return UserError(
        f"{checkpoint} does not fit this run ({exc}): it was damaged or edited; delete it to restart this "
        "coreset's distillation from its first iteration"
    )


@contextlib.contextmanager
def _resume_errors(checkpoint: Path):
    try:
        yield
    except ResumeMismatch as exc:
        raise _mismatch(checkpoint, exc) from None


def run_distill(ws: Workspace, method: str, ipc: int, replicate: int = 0) -> Path:
    """Stage 2: learn (or, for ``random``, draw) the coreset of one (method, ipc) cell (its ``replicate``-th of
    ``--distill.seeds``)."""
    cell = ws.config.resolve(method, ipc, replicate=replicate)
    cfg, objective_cfg = cell.distill, cell.objective
    uses_experts = needs_experts(method)
    cfg.validate(ws.config.experts.epochs if uses_experts else None)
    if objective_cfg is not None:
        objective_cfg.validate()
    ws.check_distill_cell(cell)
    art = ws.coreset_dir(cell)
    if art.is_complete():
        return art.path
    data = ws.data
    imported_targets = None
    if method == "imported":
        images, labels, stored = load_distilled(Path(cfg.import_from))
        init = ws.prepare(images) if stored else images.float().to(ws.device)
        labels = ws.targets(labels)
        ws.check_coreset(Path(cfg.import_from), init, labels)
        expected = ipc * data.num_classes if data.num_classes else ipc
        if len(labels) != expected:
            raise UserError(
                f"{cfg.import_from} holds {len(labels)} images, not ipc {ipc} x {data.num_classes} classes; "
                f"give --ipcs {len(labels) // max(data.num_classes, 1)}"
            )
        idx = torch.full((len(labels),), -1, dtype=torch.long)
        classes = data.num_classes if not ws.is_regression else 1
        imported_targets = load_distilled_targets(Path(cfg.import_from), len(labels), classes)
    claim(art)
    if method != "imported":
        idx = random_real_subset(data.train_y, data.num_classes, ipc, generator(cfg.seed))
        init = ws.prepare(data.train_x[idx])
        labels = ws.targets(data.train_y[idx])
    if uses_experts and ws.expert_set(cell):
        run_experts(ws, ws.expert_set(cell))  # this coreset's own expert set: trained once, then reused
    experts = ExpertPool(expert_paths(ws, ws.expert_set(cell)), ws.device) if uses_experts else None
    posterior = ws.config.posterior.resolve(len(data.train_y), len(idx))
    reference = reference_samples(ws) if needs_reference(method, objective_cfg) else None
    context = DistillContext(
        ws.model(planned_calls=cfg.iterations * max(cfg.student_steps, 1)),
        experts,
        ws.train_x(),
        ws.targets(data.train_y),
        data.num_classes,
        build_dsa(cfg.augment, per_image=cfg.augment_per_image),
        ws.device,
        posterior=posterior,
        reference=reference,
    )
    t0 = time.perf_counter()
    checkpoint = art.path / "checkpoint.safetensors"
    resume = load_checkpoint(checkpoint, DISTILL_KEYS, ws.device) or None
    try:
        start = checkpoint_iteration(resume, cfg.iterations) if resume is not None else 0
    except ResumeMismatch as exc:
        raise _mismatch(checkpoint, exc) from None
    communication = parallel.COMMUNICATION["seconds"]
    main = parallel.is_main()  # every rank computes (objectives split their sample terms); rank 0 alone writes
    log = ProgressLog(art.path / "progress.jsonl", start) if main else None
    with StopOnSignal() as stop, _resume_errors(checkpoint):
        images, summary = distill(
            cfg,
            objective_cfg,
            context,
            init,
            labels,
            quiet=ws.quiet,
            on_iteration=log.write if main else None,
            resume=resume,
            on_checkpoint=(lambda state: save_tensors(checkpoint, state)) if main else None,
            stop_requested=stop.requested,
            on_snapshot=snapshotter(ws, art.path, labels, log) if main else None,
        )
    elapsed = time.perf_counter() - t0
    if not main:
        parallel.barrier()
        return art.path
    if "point_weights" in summary:  # learnt per-point weights belong to the coreset posterior it was learnt for
        posterior = dataclasses.replace(posterior, point_weights=summary.pop("point_weights"))
        if not all(math.isfinite(v) and v > 0 for v in posterior.point_weights):
            raise UserError(
                f"{method}: the learnt point weights are not all finite and > 0; lower the objective's lr_weights"
            )
    learnt, meta = {}, {}
    if "label_targets" in summary:  # learnt real targets (VBPC) belong with the images
        learnt["targets"] = torch.tensor(summary.pop("label_targets"), dtype=torch.float32)
        if learnt["targets"].shape[0] != len(labels) or not torch.isfinite(learnt["targets"]).all():
            raise UserError(f"{method}: the learnt targets are not finite; lower the objective's lr_targets")
        meta["target_noise"] = str(float(summary.get("target_noise", 1.0)))
    if imported_targets is not None:
        learnt["targets"] = imported_targets
    save_tensors(
        art.path / "coreset.safetensors",
        {
            "images": images,
            "labels": labels,
            "init_images": init,
            "init_indices": idx,
            **learnt,
            **ws.preprocessor.state(),
        },
        metadata={"method": method, "ipc": str(ipc), "posterior": json.dumps(identity_dict(posterior)), **meta},
    )
    atomic_write_json(art.path / "summary.json", {**summary, "posterior": identity_dict(posterior)})
    art.finish(
        cfg.seed,
        {"distill": elapsed},
        {
            "method": method,
            "ipc": ipc,
            "classes": data.classes,
            "resumed_at": start,
            "processes": parallel.world(),
            "communication_seconds": parallel.COMMUNICATION["seconds"] - communication,
        },
    )
    remove_file(checkpoint)
    parallel.barrier()
    return art.path


def snapshotter(ws: Workspace, directory: Path, labels: torch.Tensor, log: "ProgressLog"):
    """``on_snapshot`` of the distillation loop: keep the coreset under ``snapshots/`` and log a quick score
    (one SGD-trained network, first 1000 test points; evaluation/quick.py) as a line of progress.jsonl."""
    from ..evaluation.quick import quick_score

    def save(k: int, images: torch.Tensor) -> None:
        save_tensors(directory / "snapshots" / f"iter_{k:06d}.safetensors", {"images": images, "labels": labels})
        score = quick_score(
            ws.model(),
            images,
            labels,
            ws.data.test_x[:1000].to(ws.device),
            ws.targets(ws.data.test_y[:1000]),
            ws.prepare,
        )
        log.write(k - 1, {f"snapshot_{m}": v for m, v in score.items()})

    return save
