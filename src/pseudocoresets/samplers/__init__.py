"""MCMC samplers over flat parameter vectors: integrator, proposal test and kernel kept apart."""

from . import hmc
from .hmc import HMCState, build_hmc, energy_change, metropolis_accept
from .integrators import leapfrog

__all__ = ["hmc", "HMCState", "build_hmc", "energy_change", "metropolis_accept", "leapfrog"]
