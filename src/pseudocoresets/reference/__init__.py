"""The full-data reference posterior: samples of pi_x by cyclical SGHMC (mini-batches) or full-batch HMC, or a
deep ensemble of networks trained to its modes."""

from .sampler import (
    SAMPLERS,
    CSGHMCState,
    ReferenceConfig,
    cyclical_lr,
    minibatch_energy_grad,
    sample_csghmc,
    sample_hmc,
    train_member,
)

__all__ = [
    "SAMPLERS",
    "CSGHMCState",
    "ReferenceConfig",
    "cyclical_lr",
    "minibatch_energy_grad",
    "sample_csghmc",
    "sample_hmc",
    "train_member",
]
