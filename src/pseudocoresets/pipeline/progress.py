"""What every stage shares to survive a kill: the claim of its directory, checkpoints, progress logs, signals.

A progress log is read back (on a resume) through :func:`pseudocoresets.io.read_bytes`: a log replaced by a FIFO,
a device or a file larger than any log is refused in one line, never a hang."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Callable

import torch

from .. import parallel
from ..errors import UserError
from ..io import LOG_LIMIT, append_text, atomic_write_text, load_tensors, read_bytes
from .artifacts import ArtifactDir


def claim(art: ArtifactDir) -> None:
    """Rank 0 claims the directory (every other rank waits for it): the only writer of shared files."""
    if parallel.is_main():
        art.claim()
    parallel.barrier()


def rank_log_name() -> str:
    """progress.jsonl on rank 0 (and in one process); progress-rank<r>.jsonl for the work of another rank."""
    return "progress.jsonl" if parallel.is_main() else f"progress-rank{parallel.rank()}.jsonl"


def load_checkpoint(path: Path, required: set[str], device: torch.device) -> dict[str, torch.Tensor]:
    """A stage's saved partial state, or {} when there is none; one clear line when it lacks what it must hold."""
    if not Path(path).exists():
        return {}
    state = load_tensors(path, device)
    missing = sorted(required - state.keys())
    if missing:
        raise UserError(f"{path} is incomplete (no {', '.join(missing)}); delete it to restart that part of the stage")
    return state


class ProgressLog:
    """A JSONL metrics log, one line per iteration or epoch, readable while the run goes (``tail -f``). On a resume
    the lines of work after the resumed state (written after the checkpoint, or cut by a kill) are dropped:
    ``keep(row)`` says which lines stay (the default keeps iterations before ``start``)."""

    def __init__(self, path: Path, start: int = 0, keep: Callable[[dict], bool] | None = None):
        self.path, self.start = Path(path), start
        keep = keep or (lambda row: row.get("iteration", start) < start)
        kept = []
        if self.path.exists():
            for line in read_bytes(self.path, "progress log", LOG_LIMIT).decode(errors="replace").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut by a kill, and whatever follows it
                if not isinstance(row, dict) or not keep(row):
                    continue
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        self.t0 = time.perf_counter()

    def write(self, k: int, metrics: dict, key: str = "iteration") -> None:
        row = {
            key: k,
            "seconds": round(time.perf_counter() - self.t0, 4),
            **{m: v for m, v in metrics.items() if isinstance(v, (int, float, str, bool))},
        }
        append_text(self.path, json.dumps(row) + "\n")


class StopOnSignal:
    """While active, SIGINT and SIGTERM only set a flag that the distillation loop reads after the current
    iteration (it then saves a checkpoint and stops); a second signal interrupts at once."""

    def __init__(self):
        self.stop = False
        self.previous: dict = {}

    def requested(self) -> bool:
        return self.stop

    def _handle(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True

    def __enter__(self) -> "StopOnSignal":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: signals stay as they are
            self.previous = {}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
