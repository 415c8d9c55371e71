"""Image-folder trees ``<root>/train/<class>/*`` and ``<root>/test/<class>/*``, as a directory or a .tar(.gz).

Decoding tens of thousands of small files is slow, so :func:`load_imagefolder` decodes once and keeps a
uint8 array in a cache file keyed by the source's identity (path, size and modification time of the
archive, or of every file of a directory tree).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from ..io import atomic_write_json, load_tensors, read_json, save_tensors

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "test")


def _split_class(name: str) -> tuple[str, str] | None:
    """('train', 'cat') for '.../train/cat/0001.jpg' (any leading folders), else None."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 3 or not parts[-1].lower().endswith(EXTENSIONS) or parts[-3] not in SPLITS:
        return None
    return parts[-3], parts[-2]


MAX_FILE_BYTES = 64 * 2**20
"""Largest image file read from a tree or archive (CIFAR-10's JPEGs are about 1-2 KB)."""
MAX_PIXELS = 2**24
"""Largest image (16.8 million pixels, 4096 x 4096), checked from its header before decoding."""


def _members(source: Path):
    """Yield (split, class, name, bytes-reader) for every image of the tree or archive."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            key = _split_class(str(path.relative_to(source)))
            if key and path.is_file():
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise UserError(
                        f"{path} is {path.stat().st_size / 2**20:.0f} MiB, more than any image of an "
                        f"image-classification dataset (at most {MAX_FILE_BYTES // 2**20} MiB); remove it"
                    )
                yield key[0], key[1], str(path), path.read_bytes
    else:
        try:
            tar = tarfile.open(source, "r:*")
        except (tarfile.TarError, OSError) as exc:
            raise UserError(f"cannot open {source} as a .tar/.tar.gz archive: {exc}") from exc
        with tar:
            try:
                for m in tar:
                    key = _split_class(m.name)
                    if key and m.isfile():
                        if m.size > MAX_FILE_BYTES:
                            raise UserError(
                                f"{m.name} in {source} is {m.size / 2**20:.0f} MiB, more than any image of an "
                                f"image-classification dataset (at most {MAX_FILE_BYTES // 2**20} MiB); remove it"
                            )
                        data = tar.extractfile(m).read()  # type: ignore[union-attr]
                        yield key[0], key[1], m.name, (lambda d=data: d)
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise UserError(f"archive {source} is truncated or garbled ({exc}); fetch it again") from exc


def source_identity(source: Path) -> str:
    """A hash that changes when the archive, or any file of the tree, changes."""
    h = hashlib.sha256()
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                st = path.stat()
                h.update(f"{path.relative_to(source)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        st = source.stat()
        h.update(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _open_image(data: bytes) -> Image.Image:
    """PIL's (lazy) image of ``data``, without PIL's decompression-bomb warning: MAX_PIXELS refuses such an image
    in one line, and a warning line before it would make two."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def decode_imagefolder(source: Path):
    """Decode every image: returns (train_x, train_y, test_x, test_y, classes) as uint8 NCHW arrays."""
    images: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[str]] = {s: [] for s in SPLITS}
    shape = None
    for split, cls, name, read in _members(source):
        try:
            with _open_image(read()) as im:
                if im.width * im.height > MAX_PIXELS:  # read from the header, before any pixel is decoded
                    raise UserError(
                        f"image {name} in {source} declares {im.width} x {im.height} pixels, more than "
                        f"{MAX_PIXELS:,} (a decompression bomb or not a dataset image); remove it"
                    )
                arr = np.asarray(im.convert("L" if im.mode in ("L", "1", "I;16", "I") else "RGB"))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise UserError(f"cannot decode image {name} in {source}: {exc}") from exc
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise UserError(f"image {name} has shape {arr.shape}, others {shape}: all images must share one size")
        images[split].append(arr)
        labels[split].append(cls)
    for split in SPLITS:
        if not images[split]:
            raise UserError(
                f"no {split} images found in {source}: expected {split}/<class>/<image>.png|jpg "
                "(a directory or a .tar/.tar.gz archive)"
            )
    classes = sorted(set(labels["train"]))
    if len(classes) < 2:
        raise UserError(
            f"{source} holds one class ({classes[0]}): classification needs at least two class folders under train/"
        )
    unknown = set(labels["test"]) - set(classes)
    if unknown:
        raise UserError(f"test classes {sorted(unknown)} in {source} have no train images")
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for split in SPLITS:
        out += [np.stack(images[split]), np.array([index[c] for c in labels[split]], dtype=np.int64)]
    return (*out, classes)


def _content_digest(train_x, train_y, test_x, test_y, classes) -> str:
    """SHA-256 of a decode's arrays (with their shapes and types) and class names."""
    h = hashlib.sha256()
    for a in (train_x, train_y, test_x, test_y):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(list(classes)).encode())
    return h.hexdigest()


def load_imagefolder(source: Path, cache_dir: Path | None):
    """Decoded arrays of ``source``, read from ``cache_dir`` when this exact source was decoded before."""
    if not source.exists():
        raise UserError(f"image-folder source {source} does not exist; pass --data.root DIR_OR_TAR")
    if cache_dir is None:
        return decode_imagefolder(source)
    key = source_identity(source)
    tensors_path = cache_dir / f"imagefolder-{key}.safetensors"
    meta_path = cache_dir / f"imagefolder-{key}.json"
    if tensors_path.is_file() and meta_path.is_file():
        try:
            t = load_tensors(tensors_path)
            meta = read_json(meta_path)
            arrays = (t["train_x"].numpy(), t["train_y"].numpy(), t["test_x"].numpy(), t["test_y"].numpy())
            if meta["sha256"] == _content_digest(*arrays, meta["classes"]):
                return (*arrays, meta["classes"])
            print(f"bpc: the cached decode {tensors_path} does not match its checksum; decoding again", file=sys.stderr)
        except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never trusted
            pass
    train_x, train_y, test_x, test_y, classes = decode_imagefolder(source)
    import torch

    os.makedirs(cache_dir, exist_ok=True)
    save_tensors(
        tensors_path,
        {
            "train_x": torch.from_numpy(train_x),
            "train_y": torch.from_numpy(train_y),
            "test_x": torch.from_numpy(test_x),
            "test_y": torch.from_numpy(test_y),
        },
    )
    digest = _content_digest(train_x, train_y, test_x, test_y, classes)  # checked at every read
    atomic_write_json(meta_path, {"source": str(source), "classes": classes, "sha256": digest})
    return train_x, train_y, test_x, test_y, classes
