"""Atomic file writes and safe tensor files.

Every artifact is written to a temporary file in the same directory and moved into place with
``os.replace``, so an interrupted run never leaves a half-written file under the final name. The temporary
file is created exclusively (``mkstemp``: ``O_EXCL``, never through a link) under a name only bpc makes,
``.<name>.<8 random characters>.bpc.tmp`` (:data:`TEMP_NAME`), so the clean-up after a kill
(:mod:`pseudocoresets.pipeline.lock`) can tell its own orphans from a user's files. Files get the mode the
user's umask allows (``mkstemp`` alone would make them 0600). Tensors are stored as safetensors (no pickle),
metadata as JSON.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as st_save

from .errors import UserError

TEMP_SUFFIX = ".bpc.tmp"
#: the names of atomic writes' temporary files: ``.<final name>.<mkstemp's 8 characters>.bpc.tmp``
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


def check_path_kind(path: str | Path, what: str) -> None:
    """Refuse, in one line, a ``path`` that exists but is neither a regular file nor a directory (a FIFO, a device
    such as /dev/zero, a socket), or that is a loop of symbolic links: reading one would block or never end. A
    missing path passes (the caller says what is missing)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror}); give a regular file or directory") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "socket"
        raise UserError(f"{what} {path} is a {kind}, not a regular file or directory; give a file or directory")


def _file_mode() -> int:
    """0o666 less the process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise UserError(f"{path} is missing; run the stage that writes it first") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); delete the artifact directory and re-run") from exc


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(data, metadata=metadata))


def load_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; run the stage that writes it first")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not a valid safetensors file ({exc}); delete it and re-run the stage") from exc
