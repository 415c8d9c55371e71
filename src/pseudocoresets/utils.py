"""Small shared helpers: device choice, seeded generators, quiet-aware progress, dotted-key dictionaries."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, Iterator, TypeVar

import torch

T = TypeVar("T")


def choose_device(name: str | torch.device = "auto", option: str = "--device") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; any other name (or ``torch.device``) must be a CPU or an
    existing CUDA device, else one :class:`UserError` line naming ``option``."""
    from .errors import UserError

    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise UserError(f"{option} must be a device name such as auto, cpu or cuda:0 (got {type(name).__name__})")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown {option} {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"{option} {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but CUDA is not available; use {option} cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"device {name!r} was asked for but this machine has {torch.cuda.device_count()} CUDA device(s); "
            "use cuda:0 .. or auto"
        )
    if device.type == "cpu" and device.index not in (None, 0):
        raise UserError(f"{option} {name!r}: there is one CPU device; use {option} cpu")
    return device


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded with ``seed`` on ``device`` (all randomness in the package goes through these)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process: blocks up to 32 MiB come from the heap instead of fresh
    mmaps (glibc's own dynamic threshold never exceeds 32 MiB either; larger blocks are still unmapped when freed)
    and the heap top is never trimmed. Tensors freed in one training step are then reused by the next instead of
    being faulted in afresh from the kernel (benchmarks/bench_malloc.py measures it). The process keeps its peak
    heap; ``BPC_KEEP_FREED_MEMORY=0`` turns this off. Returns whether both settings were accepted; False without
    glibc (macOS, musl) or with another allocator's mallopt refusing them."""
    import ctypes

    if os.environ.get("BPC_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library, without spawning ldconfig
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    mmap_ok = bool(mallopt(m_mmap_threshold, 32 * 1024 * 1024))
    trim_ok = bool(mallopt(m_trim_threshold, 2**31 - 1))
    return mmap_ok and trim_ok


def configure_threads(threads: int) -> None:
    """Set intra-op threads when ``threads`` > 0 (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def showing_progress(quiet: bool = False) -> bool:
    """Progress bars appear on a terminal unless ``quiet`` or BPC_QUIET=1 (so never in CI logs or pipes)."""
    return not quiet and sys.stderr.isatty() and os.environ.get("BPC_QUIET") != "1"


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, quiet: bool = False, initial: int = 0):
    """A tqdm bar (rate and ETA) on stderr, or an object with the same ``update``/``close`` that shows nothing."""
    if not showing_progress(quiet):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


def progress(items: Iterable[T], total: int, desc: str, quiet: bool = False, initial: int = 0) -> Iterator[T]:
    """Yield ``items`` with a progress bar (:func:`progress_bar`); ``initial`` counts work done before a resume."""
    bar = progress_bar(initial + total, desc, quiet, initial)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


def flatten_dict(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dictionaries as one level of dotted keys: {"distill": {"ipc": 10}} -> {"distill.ipc": 10}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_dict(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
