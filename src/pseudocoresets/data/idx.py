"""IDX files (MNIST / Fashion-MNIST), plain or gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import UserError

# IDX magic: two zero bytes, a type code, and the number of dimensions.
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file into an array of its declared shape; garbled files raise :class:`UserError`."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read IDX file {path}: {exc}; re-install or re-download it") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number); re-install or re-download it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated (IDX header cut short); re-install or re-download it")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise UserError(
            f"{path} holds {len(raw) - header} data bytes but its header promises {expected}; "
            "the file is truncated or garbled, re-install or re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise UserError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}; install it with "
        "'apt-get install dataset-fashion-mnist' or pass --data.root DIR holding the four IDX files"
    )


def load_idx_split(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x [N,1,28,28] uint8, train_y, test_x, test_y) from the four standard IDX files in ``root``."""
    if not root.is_dir():
        raise UserError(
            f"Fashion-MNIST directory {root} does not exist; install it with "
            "'apt-get install dataset-fashion-mnist' or pass --data.root DIR holding the four IDX files"
        )
    parts = []
    for prefix in ("train", "t10k"):
        images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or images.dtype != np.uint8:
            raise UserError(
                f"{root}: {prefix} images {images.shape} and labels {labels.shape} do not match; "
                "re-install or re-download the IDX files"
            )
        parts += [images[:, None], labels.astype(np.int64)]
    return tuple(parts)  # type: ignore[return-value]
