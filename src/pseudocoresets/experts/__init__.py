"""Expert SGD trajectories on the full data (the "buffer" of MTT, reused by every divergence)."""

from .train import ExpertConfig, sgd_trajectory

__all__ = ["ExpertConfig", "sgd_trajectory"]
