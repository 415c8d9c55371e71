"""One process per run directory: an exclusive lock, and the clean-up of temporary files a killed run left.

``bpc`` holds ``OUT/.bpc.lock`` (``fcntl.flock``, exclusive, non-blocking) for as long as a stage command runs.
The kernel releases it when the process ends in any way (a crash or SIGKILL included), so a stale lock never
blocks a re-run. A second process on the same ``--out`` gets one line naming the holder. Once the lock is held,
no other process can be writing in the directory, so the temporary files of interrupted atomic writes
(``.<name>.*.tmp``, see :mod:`pseudocoresets.io`) are orphans and are removed.
On systems without ``fcntl`` (Windows) there is no lock.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".bpc.lock"


def orphan_temp_files(out: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes under ``out``."""
    return [p for p in Path(out).rglob(".*.tmp") if p.is_file()]


class RunDirectoryLock:
    """``with RunDirectoryLock(out):`` holds ``out``'s lock (creating ``out``), removes orphan temporary files, and
    on exit removes ``out`` again if the command left nothing in it (e.g. it failed before any work)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> "RunDirectoryLock":
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"--out {self.out} exists and is not a directory; choose a directory path")
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(f"{self.out} is in use by another bpc process ({holder}); wait for it to finish or "
                            "choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        self.fd = fd
        for tmp in orphan_temp_files(self.out):
            tmp.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        if self.created and {p.name for p in self.out.iterdir()} <= {LOCK_NAME}:
            self.path.unlink(missing_ok=True)
            self.out.rmdir()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']}, started {info['started']}"
    except (OSError, ValueError, KeyError):
        return "pid unknown"
