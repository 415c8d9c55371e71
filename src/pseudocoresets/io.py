"""Atomic file writes and safe tensor files.

Every artifact is written to a temporary file in the same directory and moved into place with
``os.replace``, so an interrupted run never leaves a half-written file under the final name. The temporary
file is created exclusively (``O_EXCL | O_NOFOLLOW``, never through a link) under a name only bpc makes,
``.<name>.<8 random characters>.bpc.tmp`` (:data:`TEMP_NAME`), so the clean-up after a kill
(:mod:`pseudocoresets.pipeline.lock`) can tell its own orphans from a user's files. Files get the mode the
user's umask allows.

No write goes through a link into a user's files: the rename replaces a link or a hard-linked file of the
final name instead of writing into it, and under a directory bpc owns (:func:`write_root`: a run directory
whose lock it holds, an export directory) every directory on the way is entered without following links. Tensors
are stored as safetensors (no pickle), metadata as JSON.

Every file bpc reads that a user or an earlier run could have replaced goes through one reader,
:func:`open_file` (and :func:`read_bytes` on top of it): it opens without blocking (``O_NONBLOCK``, so a FIFO
never hangs a command), looks at what it opened (``fstat`` of the descriptor, not of the name) and refuses in one
line anything but a regular file (a FIFO, a device such as a link to /dev/zero, a directory, a socket) and any file
larger than its kind ever is (:data:`METADATA_LIMIT`, :data:`LOG_LIMIT`, :data:`TENSOR_LIMIT`). Safetensors files
are checked the same way just before the safetensors library maps them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as st_save

from .errors import UserError

TEMP_SUFFIX = ".bpc.tmp"
#: the names of atomic writes' temporary files: ``.<final name>.<8 random characters>.bpc.tmp``
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


#: the most a JSON or YAML metadata file (a manifest, a config, results, a benchmark) may hold
METADATA_LIMIT = 64 << 20
#: the most a JSONL metrics log may hold
LOG_LIMIT = 256 << 20
#: the most a tensor file (an expert trajectory, a coreset, posterior samples) may hold
TENSOR_LIMIT = 1 << 40
#: what to do about a damaged file of a run
REBUILD = "delete it and re-run the stage that writes it"


class Unreadable(UserError):
    """A file the reader refuses; ``reason`` is the short phrase (``a FIFO, not a regular file``)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _named(path: str | Path, what: str) -> str:
    return f"{what} {path}" if what else str(path)


def _size(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n < 1 << 30 else f"{n / (1 << 30):.0f} GiB"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a directory" if stat.S_ISDIR(mode) else "a socket"


@contextlib.contextmanager
def open_file(path: str | Path, what: str = "", limit: int = METADATA_LIMIT, fix: str = REBUILD) -> Iterator[BinaryIO]:
    """The regular file ``path`` open for binary reading, refused (:class:`Unreadable`, one line naming ``what``
    and ``path`` and ending in ``fix``) when it is anything else or larger than ``limit`` bytes. Opened with
    ``O_NONBLOCK`` and checked on the open descriptor, so a FIFO or a device never blocks or floods the reader. A
    missing file raises :class:`FileNotFoundError` (the caller says which stage writes it)."""

    def refuse(reason: str) -> Unreadable:
        return Unreadable(f"{_named(path, what)} is {reason}; {fix}", reason)

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise refuse(f"unreadable ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse(f"{_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise refuse(f"{_size(st.st_size)}, more than the {_size(limit)} such a file ever holds")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        yield fh


def read_bytes(path: str | Path, what: str = "", limit: int = METADATA_LIMIT, fix: str = REBUILD) -> bytes:
    """The content of the regular file ``path`` through :func:`open_file` (same refusals); a file that grows past
    ``limit`` while it is read is refused too."""
    with open_file(path, what, limit, fix) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise Unreadable(f"{_named(path, what)} is more than {_size(limit)}; {fix}", f"more than {_size(limit)}")
    return data


def check_file(path: str | Path, what: str = "", limit: int = TENSOR_LIMIT, fix: str = REBUILD) -> None:
    """Refuse ``path`` as :func:`open_file` does, without reading it (for files a library opens by name)."""
    with open_file(path, what, limit, fix):
        pass


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
        raise UserError(f"{what} {path} is {_kind(mode)}, not a regular file or directory; give a file or directory")


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: directories bpc owns while a command runs (a run directory whose lock it holds, an export directory): below
#: them it writes only into real directories, never through a link (:func:`write_root`)
_ROOTS: list[str] = []


@contextlib.contextmanager
def write_root(root: str | Path) -> Iterator[None]:
    """While active, every write, append and removal under ``root`` walks from ``root`` down one directory at a
    time without following links (``O_NOFOLLOW | O_DIRECTORY``): a symbolic link planted inside the run (say
    ``OUT/figures`` pointing at a user's folder) is refused in one line instead of written through. ``root``
    itself may be a link the user chose."""
    _ROOTS.append(os.path.abspath(root))
    try:
        yield
    finally:
        _ROOTS.pop()


def _root_of(path: str) -> str | None:
    """The innermost registered root that lexically holds ``path`` (absolute, links not resolved)."""
    best = None
    for root in _ROOTS:
        if path.startswith(root.rstrip(os.sep) + os.sep) and (best is None or len(root) > len(best)):
            best = root
    return best


def _parent_fd(path: Path, create: bool = True) -> tuple[int, str] | None:
    """An open descriptor of ``path``'s directory and the file's name in it. Under a :func:`write_root` the
    directories below the root are entered one by one without following links (created when missing and
    ``create``); elsewhere the parent is made with ``mkdir -p`` and opened as the user named it. ``None`` when
    ``create`` is false and a directory on the way is missing."""
    full = os.path.abspath(path)
    root = _root_of(full)
    if root is None:
        parent = os.path.dirname(full)
        if create:
            os.makedirs(parent, exist_ok=True)
        try:
            return os.open(parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC), os.path.basename(full)
        except FileNotFoundError:
            if create:
                raise
            return None
    parts = os.path.relpath(full, root).split(os.sep)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        where = root
        for part in parts[:-1]:
            where = os.path.join(where, part)
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if create:
                    raise
                os.close(fd)
                return None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UserError(
                        f"{where} is a symbolic link or not a directory inside {root}; bpc writes only into "
                        "directories it made there: remove it and re-run"
                    ) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a fresh temporary file (``O_EXCL | O_NOFOLLOW``, the umask's mode)
    in the same directory, flushed to disk, then renamed over ``path``. The rename replaces the directory entry,
    so a link or a hard-linked file of that name is replaced, never written through."""
    dfd, name = _parent_fd(Path(path))
    try:
        for _ in range(100):
            tmp = f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=dfd)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 32 random bits
            raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(dfd)


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to a log bpc made (created when missing). Refuses a link, a special file or a file with
    other hard links: appending to one would change a file that is not bpc's own."""
    dfd, name = _parent_fd(Path(path))
    try:
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link that bpc did not make; remove it and re-run") from None
        raise
    finally:
        os.close(dfd)
    with os.fdopen(fd, "a") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise UserError(
                f"{path} is not a file bpc made (a special file or one with {st.st_nlink} hard links); "
                "remove it and re-run"
            )
        fh.write(text)


def remove_file(path: Path) -> None:
    """Delete the file ``path`` (if present) without following a link on the way: a link named ``path`` is
    removed itself, and a directory inside a :func:`write_root` that is a link is refused."""
    found = _parent_fd(Path(path), create=False)
    if found is None:
        return
    dfd, name = found
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dfd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, what: str = "", limit: int = METADATA_LIMIT, fix: str = REBUILD) -> Any:
    """The JSON in the regular file ``path`` (read by :func:`read_bytes`); missing, special, oversized or invalid:
    one line."""
    try:
        return json.loads(read_bytes(path, what, limit, fix))
    except FileNotFoundError as exc:
        raise UserError(f"{_named(path, what)} is missing; run the stage that writes it first") from exc
    except (ValueError, RecursionError) as exc:  # invalid JSON or text, a number of 5,000 digits, nesting too deep
        reason = exc if isinstance(exc, ValueError) else "nested too deep"
        raise UserError(f"{_named(path, what)} is not valid JSON ({reason}); {fix}") from exc


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(data, metadata=metadata))


def load_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path`` (no pickle); missing, special, oversized or invalid: one line."""
    path = Path(path)
    try:
        check_file(path, limit=TENSOR_LIMIT)
    except FileNotFoundError:
        raise UserError(f"{path} is missing; run the stage that writes it first") from None
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not a valid safetensors file ({exc}); delete it and re-run the stage") from exc
