"""Self-describing artifact directories and the layout of a run directory.

Layout of a run directory ``out``::

    out/experts/                           config.json, expert_000.safetensors ..., manifest.json
    out/reference/                         config.json, samples.safetensors, results.json, predictive/, manifest.json
    out/references/<sampler>-seed<s>/      the same, for a reference that checks the run's own (--reference.compare)
    out/references/ceiling.json            agreement, TV, KL of the run's reference with each of those
    out/coresets/<method>-ipc<n>[-w..]/    config.json, coreset.safetensors, summary.json, manifest.json
    out/evals/<method>-ipc<n>-<protocol>[-w..][-eval-w..]/  config.json, results.json, manifest.json

(a suffix names a non-default coreset posterior, ``-wnm`` for w = N/M, and evaluation-time posterior options)
    out/report.md, out/report.json, ...    (written by :mod:`pseudocoresets.report`)

Each stage writes into its own directory: ``config.json`` (the resolved configuration that produced it),
its tensors (safetensors) or results (JSON), and last ``manifest.json`` (package versions, seed, device,
timings, status, and the SHA-256 of every file it wrote: :mod:`pseudocoresets.integrity`). A directory is
finished work, skipped on re-runs, when its manifest says ``complete`` for the same config and every file the
stage promises exists; a finished directory whose files no longer match their checksums is refused. The same
directory with a *different* config is refused rather than overwritten once it holds any work (finished files or
a partial checkpoint); a directory holding only its config.json (a stage that failed before doing anything, e.g.
on a bad option) is taken over by the corrected configuration.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from .. import integrity
from ..errors import UserError
from ..io import atomic_write_json, read_json, remove_file
from ..utils import flatten_dict


def versions() -> dict[str, str]:
    import numpy
    import safetensors
    import torch

    from ..version import __version__

    return {
        "pseudocoresets": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "safetensors": safetensors.__version__,
        "platform": platform.platform(),
    }


def experts_path(out: Path, expert_set: int = 0) -> Path:
    """The run's experts, or with ``expert_set`` k >= 1 the k-th independent set (``--distill.expert_sets``)."""
    return Path(out) / ("experts" if not expert_set else f"experts-set{expert_set}")


def reference_path(out: Path) -> Path:
    return Path(out) / "reference"


def companion_path(out: Path, sampler: str, seed: int) -> Path:
    """A reference that checks the run's own (``--reference.compare``)."""
    return Path(out) / "references" / f"{sampler}-seed{seed}"


def ceiling_path(out: Path) -> Path:
    """Agreement, TV and KL of the run's reference with its companions: the ceiling of any coreset's agreement."""
    return Path(out) / "references" / "ceiling.json"


def coreset_path(out: Path, method: str, ipc: int, tag: str = "") -> Path:
    """``tag``: which of the cell's coresets (``-seed<s>``, Workspace.replicate_tag), then the coreset posterior's
    suffix when it is not the default (PosteriorConfig.tag)."""
    return Path(out) / "coresets" / f"{method}-ipc{ipc}{tag}"


def evaluation_path(out: Path, method: str, ipc: int, protocol: str, tag: str = "", replicate: str = "") -> Path:
    """``tag``: the coreset's posterior suffix, then the evaluation's own posterior options when set;
    ``replicate``: which of the cell's coresets (``-seed<s>``, Workspace.replicate_tag)."""
    return Path(out) / "evals" / f"{method}-ipc{ipc}{replicate}-{protocol}{tag}"


def is_log(name: str) -> bool:
    """A stage's per-epoch / per-iteration metrics log (progress.jsonl, progress-rank<r>.jsonl): a log, not work."""
    return name.startswith("progress") and name.endswith(".jsonl")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def _differing_keys(saved: Any, current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between a saved and the current configuration (absent counts as differing)."""
    a, b = flatten_dict(saved if isinstance(saved, dict) else {}), flatten_dict(current)
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or _canonical(a[k]) != _canonical(b[k]))


class ArtifactDir:
    """One stage's output directory, bound to the config that defines it. ``earlier``: identities the same
    artifact had in earlier versions (a directory written with one of them is this artifact, reused as it is);
    ``moved_from``: locations where earlier versions wrote it (an artifact found there with a matching identity,
    and none here, is moved here with one line on stderr)."""

    def __init__(
        self,
        path: Path,
        kind: str,
        config: dict[str, Any],
        promises: tuple[str, ...] = (),
        earlier: tuple[dict[str, Any], ...] = (),
        moved_from: tuple[Path, ...] = (),
    ):
        self.path = Path(path)
        self.kind = kind
        self.config = config
        self.promises = tuple(promises)  # files a complete directory must hold
        self.earlier = tuple(earlier)
        self.moved_from = tuple(Path(p) for p in moved_from)

    def _defines(self, saved: Any) -> bool:
        """Whether a saved config.json (kind and config) defines this artifact, now or as an earlier version did."""
        if not isinstance(saved, dict) or saved.get("kind", self.kind) != self.kind:
            return False
        return any(_canonical(saved.get("config")) == _canonical(c) for c in (self.config, *self.earlier))

    def _move_earlier(self) -> None:
        """Bring an artifact from a location of an earlier version here (module docstring of the class)."""
        if self.path.exists():
            return
        for old in self.moved_from:
            cfg = old / "config.json"
            if old.is_dir() and not old.is_symlink() and cfg.is_file() and self._defines(read_json(cfg)):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                old.rename(self.path)
                print(f"bpc: moved {old} to {self.path} (the same {self.kind}, at its location now)", file=sys.stderr)
                return

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def claim(self) -> None:
        """Create the directory for this config, or check that an existing one was made with it."""
        self._move_earlier()
        cfg_path = self.path / "config.json"
        if cfg_path.exists():
            saved = read_json(cfg_path)
            if not isinstance(saved, dict):
                saved = {}
            if self._defines(saved) and saved.get("kind") == self.kind:
                return
            if self.holds_work():
                differs = _differing_keys(saved.get("config"), self.config) if saved.get("kind") == self.kind else []
                detail = (
                    f" (differs in {', '.join(differs[:4])}{', ...' if len(differs) > 4 else ''})" if differs else ""
                )
                raise UserError(
                    f"{self.path} holds a {saved.get('kind')} artifact made with a different configuration{detail}; "
                    "choose another --out or delete that directory"
                )
            for log in self.path.iterdir():  # the failed configuration's metrics
                if is_log(log.name):
                    remove_file(log)
        atomic_write_json(cfg_path, {"kind": self.kind, "config": self.config})

    def holds_work(self) -> bool:
        """Whether anything besides config.json, the metrics log and temporary files is in the directory."""
        if not self.path.is_dir():
            return False
        return any(
            p.name != "config.json" and not is_log(p.name) and not p.name.endswith(".tmp") for p in self.path.iterdir()
        )

    def is_complete(self) -> bool:
        self._move_earlier()
        if not self.manifest_path.exists() or not (self.path / "config.json").exists():
            return False
        saved = read_json(self.path / "config.json")
        if not self._defines(saved):
            return False
        if not all((self.path / name).is_file() for name in self.promises):
            return False
        manifest = read_json(self.manifest_path)
        if not (isinstance(manifest, dict) and manifest.get("status") == "complete"):
            return False
        integrity.verify(self.path, self.kind, lambda: run_records_checksums(run_of(self.path)))  # damaged: refused
        return True

    def finish(self, seed: int | None, timings: dict[str, float], extra: dict[str, Any] | None = None) -> None:
        atomic_write_json(
            self.manifest_path,
            {
                "kind": self.kind,
                "status": "complete",
                "seed": seed,
                "versions": versions(),
                "timings_seconds": timings,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **(extra or {}),
                "format": integrity.FORMAT,
                "files": integrity.digests(self.path),
            },
        )

    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path)


ARTIFACT_MANIFESTS = (
    "experts/manifest.json",
    "experts-set*/manifest.json",
    "reference/manifest.json",
    "references/*/manifest.json",
    "coresets/*/manifest.json",
    "evals/*/manifest.json",
)


def run_of(directory: Path) -> Path:
    """The run directory an artifact directory belongs to (layout above)."""
    directory = Path(directory)
    return directory.parent.parent if directory.parent.name in ("coresets", "evals", "references") else directory.parent


def run_records_checksums(out: Path) -> bool:
    """Whether any artifact of the run directory ``out`` was written by a version that records checksums."""
    for pattern in ARTIFACT_MANIFESTS:
        for path in sorted(Path(out).glob(pattern)):
            try:
                manifest = read_json(path)
            except UserError:
                continue
            if isinstance(manifest, dict) and not integrity.predates_checksums(manifest):
                return True
    return False


def verify_run(out: Path) -> list[tuple[str, str]]:
    """``(artifact directory relative to out, status)`` for every stage directory of a run: ``ok``, ``unverified
    (no checksums: made before they were recorded)``, ``unfinished`` (no complete manifest: a stage that has not
    finished, which a re-run resumes), or what is damaged (:func:`pseudocoresets.integrity.check`)."""
    out = Path(out)
    dirs = [out / "experts", out / "reference"]
    dirs += sorted(p for p in out.glob("experts-set*") if p.is_dir() and not p.is_symlink())
    dirs += sorted(p for p in (out / "coresets").glob("*") if p.is_dir() and not p.is_symlink())
    dirs += sorted(p for p in (out / "evals").glob("*") if p.is_dir() and not p.is_symlink())
    dirs += sorted(p for p in (out / "references").glob("*") if p.is_dir() and not p.is_symlink())
    rows = []
    for d in dirs:
        if not d.is_dir():
            continue
        manifest = None
        if (d / "manifest.json").exists() or (d / "manifest.json").is_symlink():
            try:
                manifest = read_json(d / "manifest.json")
            except UserError as exc:  # a special file, a bomb, garbage: damaged, not unfinished
                rows.append((d.relative_to(out).as_posix(), f"manifest.json unreadable ({exc})"))
                continue
        if not isinstance(manifest, dict) or manifest.get("status") != "complete":
            rows.append((d.relative_to(out).as_posix(), "unfinished"))
            continue
        problems = integrity.check(d, lambda: run_records_checksums(out))
        if problems:
            status = "; ".join(problems)
        elif "files" not in manifest:
            status = "unverified (no checksums: made before they were recorded)"
        else:
            status = f"ok ({len(manifest['files'])} files)"
        rows.append((d.relative_to(out).as_posix(), status))
    return rows
