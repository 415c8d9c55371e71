"""The expert trajectory file format, written and read here only.

One safetensors file per expert, ``expert_EEE.safetensors`` in the experts directory, holding one tensor
``trajectory`` of shape [T + 1, P] (theta at initialisation and after every epoch, float32) and the metadata
``seed`` and ``train_loss`` (comma-separated, one value per epoch). Readers take single rows lazily
(:class:`ExpertPool`), so a buffer of 100 experts x 51 snapshots never has to fit in memory.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import UserError
from ..io import save_tensors

TRAJECTORY_KEY = "trajectory"


def expert_file(directory: Path, index: int) -> Path:
    return Path(directory) / f"expert_{index:03d}.safetensors"


def expert_files(directory: Path, count: int) -> list[Path]:
    return [expert_file(directory, e) for e in range(count)]


def save_trajectory(path: Path, trajectory: torch.Tensor, seed: int, losses: list[float]) -> None:
    save_tensors(
        path,
        {TRAJECTORY_KEY: trajectory},
        metadata={"seed": str(seed), "train_loss": ",".join(f"{v:.4f}" for v in losses)},
    )


def trajectory_shape(path: Path) -> tuple[int, int] | None:
    """(snapshots, parameters) of a readable trajectory file, or None when it is missing or broken."""
    try:
        with safe_open(str(path), framework="pt") as f:
            rows, cols = f.get_slice(TRAJECTORY_KEY).get_shape()
        return int(rows), int(cols)
    except Exception:  # noqa: BLE001 - any unreadable file counts as absent and is rebuilt
        return None


class ExpertPool:
    """The experts of one run; ``snapshot(e, t)`` reads row t of expert e (lazily, never the whole file)."""

    def __init__(self, paths: list[Path], device: torch.device, dtype: torch.dtype = torch.float32):
        if not paths:
            raise UserError("no expert trajectories found; run 'bpc experts' first")
        self.paths = paths
        self.device = device
        self.dtype = dtype
        self._handles: dict[int, object] = {}
        shape = trajectory_shape(paths[0])
        if shape is None:
            raise UserError(f"{paths[0]} is not a readable expert trajectory; delete it and re-run 'bpc experts'")
        self.num_snapshots, self.num_params = shape

    def snapshot(self, expert: int, epoch: int) -> torch.Tensor:
        if expert not in self._handles:
            self._handles[expert] = safe_open(str(self.paths[expert]), framework="pt")
        row = self._handles[expert].get_slice(TRAJECTORY_KEY)[epoch]  # type: ignore[attr-defined]
        return row.to(self.device, self.dtype).clone()

    def sample_segment(
        self, max_start: int, length: int, g: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Algorithm 1: expert ~ U{experts}, r ~ U{0..T+}; returns (theta^(r), theta^(r+L_x), info)."""
        e = int(torch.randint(len(self.paths), (1,), generator=g, device=g.device))
        r = int(torch.randint(max_start + 1, (1,), generator=g, device=g.device))
        return self.snapshot(e, r), self.snapshot(e, r + length), {"expert": e, "start_epoch": r}
