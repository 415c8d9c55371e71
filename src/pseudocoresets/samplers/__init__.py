"""MCMC over flat parameter vectors: kernels (one module each), integrator, adaptation and one chain driver.

Every kernel module has ``build(...) -> kernel`` with ``kernel.init(theta) -> State`` and
``kernel.step(state, g) -> (State, Info)``; one driver (:func:`sample`) runs every loop of the package, with what
differs between loops passed in as a :class:`Tuning` (:func:`run_chain`: burn-in adaptation and thinning for the
evaluation; :class:`ConstantGain` for the objectives' persistent chains; the reference's cyclical schedule);
HMC's mass matrix (mass.py) is one of its arguments. Adding a sampler = one module here and one evaluation
protocol (evaluation/protocols/).
"""

from . import batched, hmc, mass, sghmc
from .adaptation import MassAdapter, StepSizeAdapter
from .driver import (
    BurnInAdaptation,
    Chain,
    ConstantGain,
    Tuning,
    acceptance_rate,
    run_chain,
    sample,
    sample_batched,
)
from .hmc import HMCInfo, HMCState, energy_change, metropolis_accept
from .integrators import leapfrog
from .posterior import CoresetPosterior, PosteriorConfig, PosteriorSpec
from .sghmc import SGHMCInfo, SGHMCState

__all__ = [
    "batched",
    "hmc",
    "mass",
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
    "sample",
    "sample_batched",
    "BurnInAdaptation",
    "ConstantGain",
    "Tuning",
]
