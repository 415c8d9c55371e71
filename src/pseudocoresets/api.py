"""The public Python API: a configuration, a :class:`Run` over one run directory, and typed coresets.

Example (the same pipeline as ``bpc run --preset demo --out runs/demo``)::

    import pseudocoresets as bpc

    config = bpc.make_config("demo", overrides={"methods": "random,fkl", "ipcs": "10"})
    run = bpc.Run(config, "runs/demo")
    run.experts()                        # expert SGD trajectories (skipped when already complete)
    coreset = run.distill("fkl", 10)     # a typed Coreset: images, labels, the coreset posterior
    result = run.evaluate("fkl", 10)     # HMC on the coreset, metrics on the test split
    print(result.summary["accuracy"])

Every stage skips work that is complete for the same configuration and resumes work that was interrupted, exactly
as the command line does (the ``bpc`` subcommands call these methods). Each call holds the run directory's lock
(:mod:`pseudocoresets.pipeline.lock`), so a Python program and a ``bpc`` process never write the same run at once.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from . import parallel
from .config import RunConfig, apply_overrides, load_config_file, preset, validate_run
from .errors import UserError
from .pipeline.coreset import Coreset, load_coreset
from .pipeline.distill import run_distill
from .pipeline.evaluate import run_evaluate
from .pipeline.experts import run_experts
from .pipeline.lock import RunDirectoryLock
from .pipeline.reference import run_reference
from .pipeline.run import run_all
from .pipeline.workspace import Workspace
from .utils import choose_device


def make_config(
    preset_name: str = "quick", file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """A validated :class:`RunConfig`: the preset ``preset_name`` (``quick``, ``demo``, ``medium``, ``paper``,
    ``blr``, ``none``), then a YAML/JSON ``file`` of sections, then ``overrides`` with dotted keys as on the
    command line (``{"distill.iterations": 50, "methods": "random,fkl"}``). Raises :class:`UserError` naming the
    first bad value."""
    config = preset(preset_name)
    if file is not None:
        apply_overrides(config, load_config_file(str(file)))
    if overrides:
        apply_overrides(config, dict(overrides))
    validate_run(config)
    return config


@dataclass(frozen=True)
class Evaluation:
    """One finished evaluation: its directory and its ``results.json``.

    ``summary`` maps each metric (accuracy, nll, ece, brier; rmse, nll, coverage_95 for regression) to
    ``{"mean": ..., "std": ...}`` over the repeats; ``results`` holds everything else (per-repeat metrics,
    acceptance rates, convergence, corrupted sets, agreement)."""

    path: Path
    results: dict[str, Any]

    @property
    def summary(self) -> dict[str, dict[str, float | None]]:
        return self.results["summary"]


class Run:
    """One run directory ``out`` and the configuration of its stages.

    Args:
        config: a :class:`RunConfig` (see :func:`make_config`) or a preset name.
        out: the run directory; a new or empty directory, or one that bpc made (it is refused otherwise).
        device: ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda:1`` ... or a ``torch.device``.
        quiet: no progress bars or messages.
    """

    def __init__(
        self,
        config: RunConfig | str = "quick",
        out: str | Path = "runs/quick",
        *,
        device: str | torch.device = "auto",
        quiet: bool = False,
    ):
        if isinstance(config, str):
            config = make_config(config)
        if not str(out).strip():
            raise UserError("the run directory is empty; name one, e.g. runs/quick")
        self.config = config
        self.out = Path(out)
        self.device = device if isinstance(device, torch.device) else choose_device(device)
        self.workspace = Workspace(config, self.out, self.device, quiet=quiet or not parallel.is_main())
        self._lock: RunDirectoryLock | None = None
        self._depth = 0

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory's lock (re-entrant: the stage methods take it too). Under torchrun rank 0 holds
        it and every rank learns whether it got it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        lock = RunDirectoryLock(self.out)
        problem = None
        if parallel.is_main():
            try:
                lock.__enter__()
            except (UserError, OSError) as exc:
                problem = exc
        refusal = parallel.broadcast_object(None if problem is None else str(problem))
        if problem is not None:
            raise problem
        if refusal is not None:
            raise UserError(refusal)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            if parallel.is_main():
                lock.__exit__(None, None, None)

    def experts(self) -> Path:
        """Train the expert SGD trajectories (their directory)."""
        with self.lock():
            return run_experts(self.workspace)

    def reference(self) -> Evaluation:
        """Sample the full-data reference posterior and score it on the test split."""
        with self.lock():
            path = run_reference(self.workspace)
        return Evaluation(path, json.loads((path / "results.json").read_text()))

    def distill(self, method: str, ipc: int) -> Coreset:
        """Learn (or, for ``random``, draw) the coreset of ``method`` at ``ipc`` images per class."""
        with self.lock():
            path = run_distill(self.workspace, method, ipc)
        return load_coreset(path)

    def evaluate(self, method: str, ipc: int, protocol: str = "hmc") -> Evaluation:
        """Evaluate that coreset with ``protocol`` (``hmc``, ``asghmc`` or ``vbpc``); distill it first."""
        with self.lock():
            path = run_evaluate(self.workspace, method, ipc, protocol)
        return Evaluation(path, json.loads((path / "results.json").read_text()))

    def run_all(self) -> dict[str, Any]:
        """Every stage the configuration asks for, then the report (``bpc run``): ``{"rows", "markdown",
        "wall_seconds"}``."""
        with self.lock():
            return run_all(self.workspace)

    def report(self) -> dict[str, Any]:
        """The markdown and JSON results table over every finished evaluation (``bpc report``)."""
        from .report import write_report

        return write_report(self.out)


__all__ = ["Coreset", "Evaluation", "Run", "load_coreset", "make_config"]
