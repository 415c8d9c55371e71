"""Small shared helpers: device choice, seeded generators, quiet-aware progress."""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

import torch

T = TypeVar("T")


def choose_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; any explicit torch device string is honoured."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from .errors import UserError

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
    return device


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded with ``seed`` on ``device`` (all randomness in the package goes through these)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def configure_threads(threads: int) -> None:
    """Set intra-op threads when ``threads`` > 0 (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def progress(items: Iterable[T], total: int, desc: str, quiet: bool = False) -> Iterator[T]:
    """Yield ``items``, printing a one-line progress counter to stderr when it is a terminal and not quiet."""
    show = not quiet and sys.stderr.isatty() and os.environ.get("BPC_QUIET") != "1"
    start = time.perf_counter()
    last = 0.0
    for i, item in enumerate(items):
        yield item
        now = time.perf_counter()
        if show and (now - last > 0.5 or i + 1 == total):
            last = now
            rate = (i + 1) / max(now - start, 1e-9)
            sys.stderr.write(f"\r{desc}: {i + 1}/{total} ({rate:.1f}/s)")
            sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
