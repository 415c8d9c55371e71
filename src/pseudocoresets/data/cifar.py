"""CIFAR-10 in its standard python layout (``cifar-10-batches-py/``).

The batches are Python pickles. They are read with an unpickler that refuses every global except the
few numpy reconstructors a CIFAR batch needs, so a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import UserError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _read_batch(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            batch = _SafeUnpickler(fh, encoding="bytes").load()
    except FileNotFoundError as exc:
        raise UserError(
            f"CIFAR-10 file {path.name} missing in {path.parent}; the standard cifar-10-batches-py/ holds "
            "data_batch_1..5, test_batch and batches.meta"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a garbled file
        raise UserError(f"cannot read CIFAR-10 batch {path}: {exc}; re-extract cifar-10-python.tar.gz") from exc
    if not isinstance(batch, dict):
        raise UserError(f"{path} is not a CIFAR-10 batch (not a dict); re-extract cifar-10-python.tar.gz")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _images_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_batch(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise UserError(f"{path} lacks 'data' or 'labels'; re-extract cifar-10-python.tar.gz")
    labels = _labels(labels, path)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise UserError(f"{path} has data of shape {data.shape}, expected [N, 3072] uint8; re-extract the archive")
    return data.reshape(-1, 3, 32, 32), labels


def _labels(labels, path: Path) -> np.ndarray:
    """A batch's labels as int64: a flat list (or 1-D integer array) of whole numbers in 0..9, nothing else (no
    floats truncated, no strings, no nesting, no numbers beyond int64)."""
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and (labels.dtype.kind in "iu" or labels.size == 0)
        values = labels.tolist() if ok else []
    else:
        ok = isinstance(labels, (list, tuple))
        values = list(labels) if ok else []
    ok = ok and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 9 for v in values)
    if not ok:
        raise UserError(f"{path} holds labels that are not a flat list of class numbers 0..9; re-extract the archive")
    return np.asarray(values, dtype=np.int64)


def _class_names(names, path: Path) -> list[str]:
    if not isinstance(names, (list, tuple)) or len(names) != 10 or not all(isinstance(n, (bytes, str)) for n in names):
        raise UserError(f"{path} holds label_names that are not 10 names; re-extract the archive (or delete it)")
    try:
        return [n.decode() if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} holds label_names that are not text; re-extract the archive") from exc


def find_cifar_root(root: Path) -> Path | None:
    """The directory holding ``data_batch_1`` (``root`` itself or ``root/cifar-10-batches-py``), if any."""
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / "data_batch_1").is_file():
            return cand
    return None


def load_cifar10(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    base = find_cifar_root(root)
    if base is None:
        raise UserError(
            f"no CIFAR-10 found at {root}: expected cifar-10-batches-py/ (data_batch_1..5, test_batch); "
            "extract cifar-10-python.tar.gz there, or pass an image-folder tree or .tar.gz"
        )
    xs, ys = zip(*(_images_labels(base / f"data_batch_{i}") for i in range(1, 6)))
    test_x, test_y = _images_labels(base / "test_batch")
    classes = [f"class_{i}" for i in range(10)]
    if (base / "batches.meta").is_file():
        names = _read_batch(base / "batches.meta").get("label_names")
        if names is not None:
            classes = _class_names(names, base / "batches.meta")
    return np.concatenate(xs), np.concatenate(ys), test_x, test_y, classes
