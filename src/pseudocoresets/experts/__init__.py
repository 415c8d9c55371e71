"""Expert SGD trajectories on the full data (the "buffer" of MTT, reused by every divergence)."""

from .store import ExpertPool, expert_file, expert_files, save_trajectory, trajectory_shape
from .train import ExpertConfig, sgd_trajectory

__all__ = [
    "ExpertConfig",
    "ExpertPool",
    "expert_file",
    "expert_files",
    "save_trajectory",
    "sgd_trajectory",
    "trajectory_shape",
]
