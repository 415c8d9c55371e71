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

Every public function checks its arguments' types and values first, through one helper (:func:`_check`): a wrong
one is refused at the call with a :class:`UserError` naming the argument, what it must be and what it got, never
with a traceback from deep inside a stage.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

from . import parallel
from .config import COUNT_MAX, PRESETS, RunConfig, apply_overrides, load_config_file, preset, validate_run
from .errors import UserError
from .io import read_json
from .evaluation.protocols import PROTOCOLS
from .pipeline.coreset import Coreset, load_coreset
from .pipeline.distill import run_distill
from .pipeline.evaluate import run_evaluate
from .pipeline.experts import run_experts
from .pipeline.lock import RunDirectoryLock
from .pipeline.reference import run_reference
from .pipeline.run import run_all
from .pipeline.workspace import Workspace
from .utils import choose_device


SCALARS = (str, numbers.Real, os.PathLike)
"""The types an override's value may have (or a list of them): what a YAML file or the command line gives (str,
int, float, bool), numpy's numbers and paths. None is none of them."""


def _is_path(value: Any) -> bool:
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    return isinstance(text, str) and bool(text.strip()) and not any(c in text for c in "\n\r\0")


def _is_value(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return all(isinstance(v, SCALARS) for v in items)


_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "count": (
        lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and 1 <= v <= COUNT_MAX,
        f"a whole number from 1 to {COUNT_MAX:,} (an int, not a bool), e.g. 10",
    ),
    "index": (
        lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v < COUNT_MAX,
        "a whole number from 0 (an int, not a bool), e.g. 0 for the cell's first coreset",
    ),
    "method": (lambda v: isinstance(v, str) and v.strip() == v != "", "a method's name (a string), e.g. 'fkl'"),
    "preset": (lambda v: isinstance(v, str) and v in PRESETS, f"one of {', '.join(map(repr, PRESETS))}"),
    "protocol": (lambda v: isinstance(v, str) and v in PROTOCOLS, f"one of {', '.join(map(repr, PROTOCOLS))}"),
    "path": (_is_path, "a path (a str or os.PathLike, not empty) whose name has no newline"),
    "config": (lambda v: isinstance(v, (RunConfig, str)), "a RunConfig (see make_config) or a preset name"),
    "overrides": (lambda v: isinstance(v, Mapping), "a mapping of option names to values, e.g. {'ipcs': '10'}"),
    "option": (lambda v: isinstance(v, str), "a string naming an option, e.g. 'distill.iterations'"),
    "value": (_is_value, "a str, number, bool or path, or a list of them (leave an option out to keep its value)"),
    "device": (lambda v: isinstance(v, (str, torch.device)), "a device name (auto, cpu, cuda:N) or a torch.device"),
    "flag": (lambda v: isinstance(v, bool), "True or False"),
}


def _check(argument: str, value: Any, kind: str) -> Any:
    """The one argument check of the public functions: ``value`` is of ``kind`` (a key of ``_KINDS``), else one
    :class:`UserError` line names ``argument``, what it must be and what it got. Returns ``value``."""
    test, wanted = _KINDS[kind]
    if not test(value):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise UserError(f"{argument} must be {wanted} (got {type(value).__name__} {shown})")
    return value


def _check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    _check("overrides", overrides, "overrides")
    for key, value in overrides.items():
        _check(f"overrides key {key!r}", key, "option")
        _check(f"overrides[{key!r}]", value, "value")
    return dict(overrides)


def make_config(
    preset_name: str = "quick", file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """A validated :class:`RunConfig`: the preset ``preset_name`` (``quick``, ``demo``, ``medium``, ``paper``,
    ``blr``, ``none``), then a YAML/JSON ``file`` of sections, then ``overrides`` with dotted keys as on the
    command line (``{"distill.iterations": 50, "methods": "random,fkl"}``; values are strings, numbers, booleans
    or lists of them). Raises :class:`UserError` naming the first bad argument or value."""
    _check("preset_name", preset_name, "preset")
    if file is not None:
        _check("file", file, "path")
    changes = _check_overrides(overrides) if overrides is not None else {}
    config = preset(preset_name)
    if file is not None:
        apply_overrides(config, load_config_file(os.fspath(file)))
    if changes:
        apply_overrides(config, changes)
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
        _check("config", config, "preset" if isinstance(config, str) else "config")
        if isinstance(out, str) and not out.strip():
            raise UserError("the run directory (out, --out) is empty; name one, e.g. runs/quick")
        _check("the run directory (out, --out)", out, "path")
        _check("device", device, "device")
        _check("quiet", quiet, "flag")
        if isinstance(config, str):
            config = make_config(config)
        self.config = config
        self.out = Path(out)
        self.device = choose_device(device, option="device")
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
        return Evaluation(path, read_json(path / "results.json"))

    def distill(self, method: str, ipc: int, replicate: int = 0) -> Coreset:
        """Learn (or, for ``random``, draw) the coreset of ``method`` at ``ipc`` images per class; ``replicate``
        k: the cell's k-th coreset of ``--distill.seeds``, learnt with seed ``distill.seed + k``."""
        _check("method", method, "method")
        ipc = int(_check("ipc", ipc, "count"))
        replicate = int(_check("replicate", replicate, "index"))
        with self.lock():
            path = run_distill(self.workspace, method, ipc, replicate)
        return load_coreset(path)

    def evaluate(self, method: str, ipc: int, protocol: str = "hmc", replicate: int = 0) -> Evaluation:
        """Evaluate that coreset (the cell's ``replicate``-th) with ``protocol`` (``hmc``, ``asghmc`` or
        ``vbpc``); distill it first."""
        _check("method", method, "method")
        ipc = int(_check("ipc", ipc, "count"))
        _check("protocol", protocol, "protocol")
        replicate = int(_check("replicate", replicate, "index"))
        with self.lock():
            path = run_evaluate(self.workspace, method, ipc, protocol, replicate)
        return Evaluation(path, read_json(path / "results.json"))

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
