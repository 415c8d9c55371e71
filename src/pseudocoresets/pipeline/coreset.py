"""The coreset file (``coreset.safetensors``) and the typed :class:`Coreset` read from it.

A coreset artifact holds, as safetensors tensors: ``images`` (the learnt points in the network's input space:
normalised, and ZCA-whitened when the run uses ZCA), ``labels`` (int64 classes, or float targets for
regression), ``init_images`` and ``init_indices`` (the real training points it started from; -1 for an imported
set), the preprocessing state (so its pixels can be recovered) and, when the method learnt them, ``targets``
(real vectors [M, K], VBPC's learnt label targets). Its metadata records ``method``, ``ipc`` and
``posterior``: the coreset posterior it was learnt for (weight w, temperature T, prior scale, learnt per-point
weights), as JSON of :class:`~pseudocoresets.samplers.PosteriorSpec`. A file without a record (made before the
record existed) stands for w = T = sigma = 1.

Learnt targets pass one check wherever they enter or leave a run (:func:`check_targets`: import, load, export and
the evaluation): real numbers of shape [M, K], one row per point and K the data's number of classes (one column
for regression), finite and at most :data:`TARGETS_MAX` in magnitude.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from .. import integrity
from ..errors import UserError
from ..io import load_tensors, read_json
from ..samplers import PosteriorSpec

COREFILE = "coreset.safetensors"

TARGETS_MAX = 1e6
"""Largest magnitude of a learnt target: VBPC's start at the centred one-hot labels (below 1) and move by small
steps; a larger value (3e38) is a damaged or foreign file and overflows the last layer's solve."""


def _targets_problem(targets, count: int, classes: int | None, least: int) -> str | None:
    """What is wrong with ``targets`` (see :func:`check_targets`), or None."""
    if not isinstance(targets, torch.Tensor) or not targets.is_floating_point():
        return f"targets of type {getattr(targets, 'dtype', type(targets).__name__)}, not real numbers"
    if targets.dim() != 2 or len(targets) != count:
        return f"targets of shape {tuple(targets.shape)} for {count} points"
    columns = targets.shape[1]
    if columns == 0:
        return f"targets of shape {tuple(targets.shape)}, without a column per class"
    if classes is not None and columns != max(classes, 1):
        return f"targets with {columns} columns for data of {max(classes, 1)} classes (the model's outputs)"
    if columns < least:
        return f"targets with {columns} columns for labels up to {least - 1}"
    if not torch.isfinite(targets).all():
        return "non-finite targets (nan or inf)"
    largest = float(targets.abs().max()) if targets.numel() else 0.0
    if largest > TARGETS_MAX:
        return f"targets as large as {largest:.3g} (at most {TARGETS_MAX:.0e} in magnitude)"
    return None


def check_targets(targets, count: int, where, fix: str, classes: int | None = None, least: int = 1) -> None:
    """Learnt ``targets`` (None: nothing to check) fit a coreset of ``count`` points: real numbers [count, K],
    finite, at most :data:`TARGETS_MAX` in magnitude, with K the data's ``classes`` (1 for regression) when known,
    else at least ``least`` (a column per label). Refused in one line, ``{where} holds ...; {fix}``."""
    if targets is None:
        return
    problem = _targets_problem(targets, count, classes, least)
    if problem:
        raise UserError(f"{where} holds {problem}; {fix}")


def label_columns(labels: torch.Tensor) -> int:
    """The fewest target columns class ``labels`` need (one more than the largest label; 1 for regression)."""
    if labels.is_floating_point() or not len(labels):
        return 1
    return int(labels.max()) + 1


def recorded_classes(directory: Path) -> int | None:
    """The number of classes a run's coreset directory records in its manifest (None when it records none)."""
    manifest = directory / "manifest.json"
    record = read_json(manifest) if manifest.is_file() else None
    classes = record.get("classes") if isinstance(record, dict) else None
    return len(classes) if isinstance(classes, list) else None


@dataclass(frozen=True)
class Coreset:
    """A pseudocoreset as stored by ``bpc distill`` (module docstring).

    Attributes:
        images: the points, ``(M, C, H, W)`` for images or ``(M, D)`` for tables, in the network's input space.
        labels: ``(M,)`` int64 class labels, or float targets for regression.
        posterior: the coreset posterior the points were learnt for; evaluate with it.
        method: the method that made it (``random``, ``fkl``, ``imported`` ...), empty when not recorded.
        ipc: images per class (points, for regression), 0 when not recorded.
        path: the file it was read from.
        targets: learnt real targets ``(M, K)`` (VBPC), or None.
        target_noise: the std of the Gaussian likelihood the targets were learnt for, or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    posterior: PosteriorSpec
    method: str = ""
    ipc: int = 0
    path: Path | None = None
    targets: torch.Tensor | None = None
    target_noise: float | None = None

    def __len__(self) -> int:
        return len(self.images)


def load_coreset(path: str | Path, device: torch.device | str = "cpu") -> Coreset:
    """Read a coreset artifact: ``path`` is its directory (``OUT/coresets/fkl-ipc10``) or its
    ``coreset.safetensors``. Refuses, in one line, a file without matching images and labels, with a garbled
    posterior record, or with point weights that do not fit."""
    file = Path(path)
    if file.is_dir() or not file.name.endswith(".safetensors"):
        file = file / COREFILE
    if (file.parent / "manifest.json").is_file():  # a run's coreset directory: its files match their checksums
        from .artifacts import run_of, run_records_checksums

        integrity.verify(file.parent, "coreset", lambda: run_records_checksums(run_of(file.parent)))
    t = load_tensors(file, device)
    if "images" not in t or "labels" not in t or len(t["images"]) != len(t["labels"]):
        raise UserError(f"{file} lacks matching 'images' and 'labels'; re-run 'bpc distill'")
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
        spec = PosteriorSpec(**json.loads(meta.get("posterior", "{}")))
        ipc = int(meta.get("ipc", 0))
        noise = float(meta["target_noise"]) if "target_noise" in meta else None
    except (TypeError, ValueError) as exc:
        raise UserError(f"{file} holds a garbled posterior record ({exc}); re-run 'bpc distill'") from exc
    numbers = (spec.weight, spec.temperature, spec.prior_std)
    if not all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in numbers):
        raise UserError(
            f"{file} records a coreset posterior with weight {spec.weight}, temperature {spec.temperature}, prior "
            f"std {spec.prior_std}: each must be a finite number > 0; re-run 'bpc distill'"
        )
    v = spec.point_weights
    if v is not None and (len(v) != len(t["images"]) or not all(math.isfinite(w) and w > 0 for w in v)):
        raise UserError(
            f"{file} records {len(v)} point weights for {len(t['images'])} images (or some not finite "
            "and > 0); re-run 'bpc distill'"
        )
    labels = t["labels"].float() if t["labels"].is_floating_point() else t["labels"].long()
    targets = t.get("targets")
    fix = "re-run 'bpc distill'"
    check_targets(targets, len(labels), file, fix, recorded_classes(file.parent), label_columns(labels))
    if noise is not None and not (math.isfinite(noise) and noise > 0):
        raise UserError(f"{file} records a target noise of {noise}; re-run 'bpc distill'")
    return Coreset(
        t["images"].float(),
        labels,
        spec,
        str(meta.get("method", "")),
        ipc,
        file,
        None if targets is None else targets.float(),
        noise,
    )
