"""IDX files (MNIST / Fashion-MNIST), plain or gzipped."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from ..errors import UserError

# IDX magic: two zero bytes, a type code, and the number of dimensions.
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}


MAX_IDX_BYTES = 2**32
"""Largest IDX payload read (4 GiB; Fashion-MNIST's largest file holds 47 MB): a header that declares more is
refused before anything is allocated, and a compressed file is never inflated beyond what its header declares."""


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file into an array of its declared shape; garbled files raise :class:`UserError`. The
    payload is read as a stream, at most the size the header declares (plus one byte to detect trailing
    garbage), so a decompression bomb or an overflowing header costs nothing."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise UserError(f"{path} is not an IDX file (bad magic number); re-install or re-download it")
            ndim = head[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise UserError(f"{path} is truncated (IDX header cut short); re-install or re-download it")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
            dtype = np.dtype(_DTYPES[head[2]])
            expected = math.prod(shape) * dtype.itemsize
            if expected > MAX_IDX_BYTES:
                raise UserError(
                    f"{path} declares {expected / 2**30:.1f} GiB of data (shape {shape}), more than any IDX dataset "
                    f"read here (at most {MAX_IDX_BYTES / 2**30:.0f} GiB); the header is garbled, re-install it"
                )
            raw = f.read(expected + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read IDX file {path}: {exc}; re-install or re-download it") from exc
    if len(raw) != expected:
        raise UserError(
            f"{path} holds {'more' if len(raw) > expected else len(raw)} data bytes but its header promises "
            f"{expected}; the file is truncated or garbled, re-install or re-download it"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


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
        if images.dtype != np.uint8 or labels.dtype.kind not in "iu":
            raise UserError(
                f"{root}: {prefix} images are {images.dtype} and labels {labels.dtype}; Fashion-MNIST holds uint8 "
                "pixels and integer labels, re-install or re-download the IDX files"
            )
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(
                f"{root}: {prefix} images {images.shape} and labels {labels.shape} do not match; "
                "re-install or re-download the IDX files"
            )
        parts += [images[:, None], labels.astype(np.int64)]
    return tuple(parts)  # type: ignore[return-value]
