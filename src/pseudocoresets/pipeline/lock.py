"""One process per run directory: an exclusive lock, and the clean-up of temporary files a killed run left.

``bpc`` holds ``OUT/.bpc.lock`` (``fcntl.flock``, exclusive, non-blocking) for as long as a stage command runs.
The kernel releases it when the process ends in any way (a crash or SIGKILL included), so a stale lock never
blocks a re-run. A second process on the same ``--out`` gets one line naming the holder.

The lock file also marks a directory as a run directory: bpc writes only into a new directory, an empty one, or
one that holds a ``.bpc.lock`` it made before; a directory holding anything else is refused, so a user's own
folder is never written into. The lock file is created with ``O_EXCL`` and opened with ``O_NOFOLLOW``: a link,
a file with other hard links (which could be a user's file) or any other non-regular file planted under its name
is refused, never written. While the lock is held the directory is a :func:`pseudocoresets.io.write_root`:
nothing is written through a link planted inside it.

Once the lock is held, no other process can be writing in the directory, so the temporary files of interrupted
atomic writes are orphans and are removed: only regular files whose names match the pattern that
:mod:`pseudocoresets.io` gives its own temporary files (``.<name>.<8 characters>.bpc.tmp``), found without
following links. On systems without ``fcntl`` (Windows) there is no lock.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from pathlib import Path

from ..errors import UserError
from ..io import TEMP_NAME, remove_file, write_root

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".bpc.lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def orphan_temp_files(out: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes under ``out`` (regular files only, links never followed)."""
    found = []
    for root, _dirs, files in os.walk(out, followlinks=False):
        for name in files:
            if TEMP_NAME.match(name):
                path = Path(root) / name
                try:
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        found.append(path)
                except OSError:
                    continue
    return found


def check_run_directory(out: Path, option: str = "--out") -> None:
    """Refuse ``out`` unless bpc may write there: it does not exist yet, is an empty directory, or is a run
    directory (it holds the regular file ``.bpc.lock``)."""
    out = Path(out)
    if not out.exists():
        if out.is_symlink():
            raise UserError(f"{option} {out} is a broken symbolic link; choose another directory")
        return
    if not out.is_dir():
        raise UserError(f"{option} {out} exists and is not a directory; choose a directory path")
    try:
        lock_mode = os.lstat(out / LOCK_NAME).st_mode
    except FileNotFoundError:
        lock_mode = None
    if lock_mode is not None and not stat.S_ISREG(lock_mode):
        raise UserError(
            f"{out / LOCK_NAME} is not a regular file (a link or a special file that bpc did not make); "
            "remove it or choose another " + option
        )
    if lock_mode is not None and os.lstat(out / LOCK_NAME).st_nlink != 1:
        raise UserError(_hard_linked(out / LOCK_NAME, option))
    if lock_mode is None and any(out.iterdir()):
        raise UserError(
            f"{option} {out} is a directory that bpc did not make (it holds files and no {LOCK_NAME}); "
            "choose a new or empty directory"
        )


def _hard_linked(path: Path, option: str) -> str:
    return (
        f"{path} has other hard links (a file bpc did not make, or a link to one); remove it or choose another "
        + option
    )


def _open_lock(path: Path) -> int:
    """The lock file's descriptor: created exclusively, or an existing regular file opened without following a
    link."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDWR | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
            except FileNotFoundError:  # removed in between: create it again
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UserError(
                        f"{path} is a symbolic link that bpc did not make; remove it or choose another --out"
                    ) from None
                raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise UserError(f"{path} is not a regular file; remove it or choose another --out")
        if st.st_nlink != 1:  # a hard link to a user's file: writing the holder into it would damage that file
            os.close(fd)
            raise UserError(_hard_linked(path, "--out"))
        return fd
    raise UserError(f"{path} keeps disappearing; is another program deleting it?")


class RunDirectoryLock:
    """``with RunDirectoryLock(out):`` checks that bpc may write in ``out`` (:func:`check_run_directory`), holds
    its lock (creating ``out``), removes bpc's own orphan temporary files, and on exit removes ``out`` again if
    bpc created it and the command left nothing in it (e.g. it failed before any work)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.fd: int | None = None
        self.created = False
        self._root = None

    def __enter__(self) -> "RunDirectoryLock":
        check_run_directory(self.out)
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return self
        fd = _open_lock(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(
                f"{self.out} is in use by another bpc process ({holder}); wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode(), 0)
        self.fd = fd
        self._root = write_root(self.out)
        self._root.__enter__()
        for tmp in orphan_temp_files(self.out):
            remove_file(tmp)
        return self

    def __exit__(self, *exc) -> None:
        if self._root is not None:
            self._root.__exit__(None, None, None)
            self._root = None
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
