"""MCMC over flat parameter vectors: kernels (one module each), integrator, adaptation and one chain driver.

Every kernel module has ``build(...) -> kernel`` with ``kernel.init(theta) -> State`` and
``kernel.step(state, g) -> (State, Info)``; the driver (:func:`run_chain`) does burn-in, adaptation and
thinning for all of them; HMC's mass matrix (metric.py) is one of its arguments. Adding a sampler = one
module here and one row in the evaluation's protocol table.
"""

from . import hmc, metric, sghmc
from .adaptation import MassAdapter, StepSizeAdapter
from .driver import Chain, acceptance_rate, run_chain
from .hmc import HMCInfo, HMCState, energy_change, metropolis_accept
from .integrators import leapfrog
from .posterior import CoresetPosterior, PosteriorConfig, PosteriorSpec
from .sghmc import SGHMCInfo, SGHMCState

__all__ = [
    "hmc",
    "metric",
    "sghmc",
    "Chain",
    "CoresetPosterior",
    "PosteriorConfig",
    "PosteriorSpec",
    "HMCInfo",
    "HMCState",
    "MassAdapter",
    "SGHMCInfo",
    "SGHMCState",
    "StepSizeAdapter",
    "acceptance_rate",
    "energy_change",
    "leapfrog",
    "metropolis_accept",
    "run_chain",
]
