"""Coresets in and out of the formats the dataset-distillation field uses.

Export (``bpc export``) writes one learnt coreset as
- MTT / DD-Ranking-style tensors: ``images_best.pt`` (images in the network's input space: normalised, and
  ZCA-whitened when the run uses ZCA), ``labels_best.pt`` and, when the method learnt one (BPC-W / MTT),
  ``lr_best.pt`` (the student step size), and when the coreset has learnt per-point weights (``fkl_mcmc
  learn_weights``) ``weights_best.pt`` (the multipliers v of the recorded w; the full posterior record is in the
  artifact's summary.json), and when the method learnt real label targets (VBPC) ``targets_best.pt`` ([M, K]);
  plain tensors only, readable with ``torch.load(weights_only=True)``;
- ``coreset.npz``: ``images`` (float32, input space), ``pixels`` (uint8, the stored space: un-whitened and
  un-normalised), ``labels`` and, when learnt, ``point_weights`` and ``targets``;
- ``grid.png``: the un-whitened pictures, one row per class.

``--to`` must be new, empty, or a directory an earlier export made (marked by the file ``.bpc-export``), so
export never replaces a user's own files.

Import (``--methods imported --distill.import_from PATH``, or ``bpc import --from PATH``) reads a distilled set
made elsewhere — such a directory (``images_best.pt``/``labels_best.pt``, or ``images.pt``/``labels.pt``), a
``.pt`` holding a dict with ``images`` and ``labels`` or a pair, or an ``.npz`` with ``labels`` and ``pixels``
(uint8, prepared like the data) or ``images`` (float, taken as input space) — so any distilled set gets this
project's Bayesian evaluation. ``.pt`` files load with ``weights_only=True``; anything else is refused, and so
are pixels that are not uint8 and images that are not real floats (integer or complex), in one line before any
conversion. Import reads learnt label targets when they come with the set (``targets_best.pt``, ``targets``),
checked like every coreset's (:func:`~pseudocoresets.pipeline.coreset.check_targets`), not point weights: an
imported set is evaluated with the run's ``--posterior.weight``. Export writes only targets that pass the same
check.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io import atomic_write_bytes, atomic_write_text, check_path_kind, load_tensors, read_json, write_root


def source_digest(path: Path) -> str:
    """sha256 of an import source (a file, or the tensor files of a directory), part of the coreset's identity."""
    path = Path(path)
    check_path_kind(path, "--distill.import_from")
    if not path.exists():
        raise UserError(f"--distill.import_from {path} does not exist; give an MTT-style directory, a .pt or an .npz")
    files = sorted(p for p in path.iterdir() if p.suffix == ".pt" and p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


MAX_IMPORT_BYTES = 2**30
"""Largest uncompressed content of an imported .pt or .npz (a coreset of 50 CIFAR-10 images per class is 6 MB)."""


def _check_archive(path: Path) -> None:
    """A .pt (zip format) or .npz is refused, from its directory alone, when its members would inflate beyond
    :data:`MAX_IMPORT_BYTES`: nothing is decompressed first."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as z:
            size = sum(info.file_size for info in z.infolist())
    except (OSError, zipfile.BadZipFile):
        return  # the loader's own check names the problem
    if size > MAX_IMPORT_BYTES:
        raise UserError(
            f"{path} would inflate to {size / 2**30:.1f} GiB, more than any coreset (at most "
            f"{MAX_IMPORT_BYTES / 2**30:.0f} GiB); give the distilled set itself"
        )


def _load_pt(path: Path):
    import warnings

    _check_archive(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own warnings about legacy pickle protocols
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is refused with one line
        raise UserError(
            f"{path} is not a tensor file torch.load(weights_only=True) accepts "
            f"({type(exc).__name__}); export plain tensors"
        ) from None


def load_distilled(path: Path) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(images, labels, stored_space): ``stored_space`` is True for uint8 pixels that still need the data's
    preprocessing, False for images already in the network's input space."""
    path = Path(path)
    check_path_kind(path, "the distilled set")
    if path.is_dir():
        for images_name, labels_name in (("images_best.pt", "labels_best.pt"), ("images.pt", "labels.pt")):
            if (path / images_name).is_file() and (path / labels_name).is_file():
                return (*_checked(_load_pt(path / images_name), _load_pt(path / labels_name), path), False)
        raise UserError(f"{path} holds no images_best.pt/labels_best.pt (or images.pt/labels.pt)")
    if path.suffix == ".pt":
        obj = _load_pt(path)
        if isinstance(obj, dict) and "images" in obj and "labels" in obj:
            return (*_checked(obj["images"], obj["labels"], path), False)
        if isinstance(obj, (tuple, list)) and len(obj) == 2:
            return (*_checked(obj[0], obj[1], path), False)
        raise UserError(f"{path} must hold a dict with 'images' and 'labels' or an (images, labels) pair")
    if path.suffix == ".npz":
        arrays = _npz_arrays(path)
        if "labels" not in arrays or not ({"pixels", "images"} & arrays.keys()):
            raise UserError(f"{path} must hold 'labels' and 'pixels' (uint8) or 'images' (float)")
        pixels = "pixels" in arrays
        images = arrays["pixels" if pixels else "images"]
        return (*_checked(torch.from_numpy(images), torch.from_numpy(arrays["labels"]), path, pixels), pixels)
    raise UserError(f"cannot import {path}: give an MTT-style directory, a .pt or an .npz file")


def load_distilled_targets(path: Path, count: int, classes: int | None = None) -> torch.Tensor | None:
    """Learnt real label targets [count, K] that come with a distilled set (``targets_best.pt`` in its directory,
    ``targets`` in its .pt dict or .npz), or None; refused in one line when they do not fit
    (:func:`~pseudocoresets.pipeline.coreset.check_targets`: K is the data's ``classes`` when given, else at
    least a column per label of the set)."""
    from .coreset import check_targets, label_columns

    path = Path(path)
    targets = None
    if path.is_dir() and (path / "targets_best.pt").is_file():
        targets = _load_pt(path / "targets_best.pt")
    elif path.suffix == ".pt" and path.is_file():
        obj = _load_pt(path)
        targets = obj.get("targets") if isinstance(obj, dict) else None
    elif path.suffix == ".npz" and path.is_file():
        targets = _npz_arrays(path).get("targets")
        targets = None if targets is None else torch.from_numpy(targets)
    if targets is None:
        return None
    least = label_columns(load_distilled(path)[1])
    check_targets(targets, count, path, "fix or remove them in the distilled set", classes, least)
    return targets.float()


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    _check_archive(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} is not a readable .npz without pickled objects ({exc})") from None


def _checked(images, labels, path: Path, pixels: bool = False):
    """Images and labels of the formats the module docstring lists: uint8 ``pixels`` (0..255, prepared like the
    data) or real-valued images in the input space, [M, C, H, W], with M whole class labels. Anything else (float
    or wider-integer pixels, integer or complex images) is refused in one line, before any conversion."""
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise UserError(f"{path}: images and labels must be tensors")
    if pixels and images.dtype != torch.uint8:
        raise UserError(
            f"{path}: 'pixels' must be uint8 values 0..255 (got {images.dtype}); store float images in the "
            "network's input space as 'images' instead, or convert the pixels to uint8"
        )
    if not pixels and not images.is_floating_point():
        raise UserError(
            f"{path}: images must be real floats in the network's input space (got {images.dtype}); give uint8 "
            "pixels as 'pixels' in an .npz, or convert the images to float"
        )
    if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels) or len(labels) == 0:
        raise UserError(
            f"{path}: images must be [M, C, H, W] and labels [M] (got {tuple(images.shape)} and {tuple(labels.shape)})"
        )
    if labels.is_complex():
        raise UserError(f"{path}: labels must be whole class indices (got {labels.dtype})")
    if labels.is_floating_point():  # soft or float labels: only whole class indices are supported
        if not torch.equal(labels, labels.round()):
            raise UserError(f"{path}: labels must be class indices (soft labels are not supported)")
    return images, labels.long()


EXPORT_MARK = ".bpc-export"


def _claim_export_directory(to: Path) -> None:
    """Export writes only into a new directory, an empty one, or one an earlier export made (it holds the
    regular file ``.bpc-export``): the files it replaces there are its own."""
    if to.is_symlink() and not to.exists():
        raise UserError(f"--to {to} is a broken symbolic link; choose another directory")
    if to.exists():
        if not to.is_dir():
            raise UserError(f"--to {to} exists and is not a directory; choose a directory path")
        mark = to / EXPORT_MARK
        if mark.is_symlink() or (mark.exists() and not mark.is_file()):
            raise UserError(f"{mark} is not a regular file; remove it or choose another --to")
        if not mark.exists() and any(to.iterdir()):
            raise UserError(
                f"--to {to} is a directory that bpc export did not make (it holds files and no "
                f"{EXPORT_MARK}); choose a new or empty directory"
            )
    to.mkdir(parents=True, exist_ok=True)
    if not (to / EXPORT_MARK).exists():
        atomic_write_text(to / EXPORT_MARK, "files written by 'bpc export'\n")


def export_coreset(directory: Path, to: Path) -> list[Path]:
    """Write the coreset of an artifact ``directory`` in every format (module docstring) under ``to``."""
    from ..report.figures import coreset_grid, coreset_pixels

    from .coreset import load_coreset

    directory, to = Path(directory), Path(to)
    with write_root(to):
        load_coreset(directory)  # refuses a damaged coreset (labels, weights; targets by check_targets) in one line
        t = load_tensors(directory / "coreset.safetensors")
        if t["images"].dim() != 4:
            raise UserError(f"{directory} holds a tabular coreset; export is for image coresets")
        _claim_export_directory(to)
        written = []

        def save_pt(name: str, tensor: torch.Tensor) -> None:
            import io

            buf = io.BytesIO()
            torch.save(tensor.detach().cpu().contiguous(), buf)
            atomic_write_bytes(to / name, buf.getvalue())
            written.append(to / name)

        save_pt("images_best.pt", t["images"].float())
        save_pt("labels_best.pt", t["labels"].long())
        summary = read_json(directory / "summary.json")
        lr = summary.get("learnt_student_lr") if isinstance(summary, dict) else None
        if lr is not None:
            save_pt("lr_best.pt", torch.tensor(float(lr)))
        posterior = summary.get("posterior", {}) if isinstance(summary, dict) else {}
        weights = posterior.get("point_weights") if isinstance(posterior, dict) else None
        extra = {}
        if weights is not None:
            save_pt("weights_best.pt", torch.tensor(weights, dtype=torch.float32))
            extra["point_weights"] = np.asarray(weights, dtype=np.float32)
        if "targets" in t:
            save_pt("targets_best.pt", t["targets"].float())
            extra["targets"] = t["targets"].float().numpy()
        pixels, labels = coreset_pixels(directory)
        import io

        buf = io.BytesIO()
        np.savez(
            buf,
            images=t["images"].float().numpy(),
            labels=labels.long().numpy(),
            pixels=(pixels.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
            **extra,
        )
        atomic_write_bytes(to / "coreset.npz", buf.getvalue())
        written.append(to / "coreset.npz")
        manifest = read_json(directory / "manifest.json")
        written += coreset_grid(directory, to / "grid", directory.name, manifest.get("classes"), formats=("png",))
        return written
