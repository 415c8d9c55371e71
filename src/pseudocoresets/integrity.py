"""Checksums of finished artifacts: every file a stage writes is recorded with its SHA-256 in the stage's
``manifest.json`` (``files``), and every read of a finished artifact checks them first, so a damaged, replaced
or hand-edited file is refused in one line (with the command that rebuilds it) instead of being trusted.

What is not recorded: ``manifest.json`` itself, the metrics logs (``progress*.jsonl``), temporary files, resume
state that the stage deletes when it finishes (``checkpoint.safetensors``, ``*.partial.*``), and caches that
grow after the stage finished (the reference posterior's ``predictive/``). Manifests written before checksums
existed have no ``files``; their artifacts are read as before and ``bpc verify`` reports them as unverified. A
manifest written with checksums says so (``format`` 2): one that has lost its ``files`` is damaged, not old, and
so is one without ``files`` in a run directory whose other artifacts record theirs (the caller says so with
``required``): a run written by a version that records checksums never goes back to trusting files without them.

What the checksums promise: a file damaged, cut short, replaced or edited after bpc wrote it is found, as long as
its manifest is intact. They are no defence against someone who rewrites a file and its manifest together.

A file is hashed once per process for a given size and modification time (experts of the paper's scale hold
gigabytes; hashing runs at about 1 GB/s). Manifests and hashed files are read through
:func:`pseudocoresets.io.open_file`: a manifest that is a FIFO, a device or larger than any manifest is a problem
of the artifact, never a hang.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from .errors import UserError
from .io import TENSOR_LIMIT, Unreadable, open_file, read_bytes

REBUILD = {
    "experts": "bpc experts",
    "reference": "bpc reference",
    "coreset": "bpc distill",
    "evaluation": "bpc evaluate",
}
_UNRECORDED_DIRS = {"predictive"}
_verified: dict[tuple[str, int, int], str] = {}


def recorded(name: str) -> bool:
    """Whether a file of this name (inside an artifact directory) is recorded in the manifest."""
    return not (
        name == "manifest.json"
        or (name.startswith("progress") and name.endswith(".jsonl"))
        or name.endswith(".tmp")
        or ".partial." in name
        or name == "checkpoint.safetensors"
        or name == ".bpc.lock"
    )


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex), memoised per (path, size, mtime) within this process."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        with open_file(path, limit=TENSOR_LIMIT) as f:
            _verified[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _verified[key]


def digests(directory: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every recorded regular file below ``directory`` (links not followed)."""
    directory = Path(directory)
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not (Path(root) == directory and d in _UNRECORDED_DIRS))
        for name in sorted(files):
            path = Path(root) / name
            if recorded(name) and path.is_file() and not path.is_symlink():
                out[path.relative_to(directory).as_posix()] = sha256(path)
    return out


FORMAT = 2
"""The manifest format that records checksums (``format`` in every manifest written since)."""


def predates_checksums(manifest: object) -> bool:
    """Whether a manifest says nothing of checksums: no ``files`` and no ``format`` of 2 or more."""
    return (
        isinstance(manifest, dict)
        and "files" not in manifest
        and not (isinstance(manifest.get("format"), int) and manifest["format"] >= FORMAT)
    )


def check(directory: Path, required: Callable[[], bool] = lambda: False) -> list[str]:
    """Problems of a finished artifact against its manifest's checksums, one phrase each (empty: intact).
    A manifest without ``files`` has none to check when it predates checksums and ``required()`` is false
    (module docstring); otherwise the missing list is the problem."""
    directory = Path(directory)
    try:
        manifest = json.loads(read_bytes(directory / "manifest.json"))
    except Unreadable as exc:
        return [f"manifest.json is {exc.reason}"]
    except (OSError, ValueError, RecursionError) as exc:
        return [f"manifest.json unreadable ({exc.__class__.__name__})"]
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if files is None:
        if not predates_checksums(manifest):
            return ["manifest.json has lost its checksums"]
        if required():
            return ["manifest.json records no checksums, though the other artifacts of its run do"]
        return []
    if not isinstance(files, dict):
        return ["manifest.json has a malformed file list"]
    problems = []
    for rel, digest in sorted(files.items()):
        path = directory / rel
        if not path.is_file() or path.is_symlink():
            problems.append(f"{rel} is missing")
        elif sha256(path) != digest:
            problems.append(f"{rel} was changed after bpc wrote it")
    return problems


def verify(directory: Path, kind: str | None = None, required: Callable[[], bool] = lambda: False) -> None:
    """Refuse (:class:`UserError`, one line) a finished artifact whose files differ from its manifest."""
    problems = check(directory, required)
    if problems:
        command = REBUILD.get(kind or "", "its stage")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(
            f"{directory}: {problems[0]}{more}: the artifact is damaged, replaced or edited; delete {directory} "
            f"and re-run '{command}' to rebuild it"
        )
