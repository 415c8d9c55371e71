"""``hmc``: full-batch Hamiltonian Monte Carlo on the coreset posterior (samplers/hmc.py), the paper's protocol.

Each chain adapts its leapfrog step size during burn-in towards ``target_accept`` (samplers/adaptation.py) and,
with ``mass`` diagonal, estimates a diagonal mass matrix from its own burn-in in windows of doubling length, as
Stan does; the Metropolis test keeps the chain exact for the coreset posterior. Chains, scoring and diagnostics:
:mod:`.sampled`. The paper preset at ipc 1 uses the official short schedule (20 iterations, 10 burn-in, 20
leapfrog steps of 0.05).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import UserError
from ...samplers import MassAdapter, StepSizeAdapter, batched, hmc
from .interface import Prediction, ProtocolContext
from .sampled import (
    iteration_cap,
    kept_per_chain,
    max_iterations_field,
    sample_predictive,
    BATCH_CHOICES,
    batch_chains_field,
    settle_points_field,
    settle_rhat_field,
    settle_tv_field,
    validate_chains,
    validate_settling,
)

NAME = "hmc"
SECTION = "hmc"


@dataclass
class Config:
    """HMC on the coreset posterior (defaults: the official settings at ipc 10, with a correct sampler)."""

    chains: int = field(default=10, metadata={"help": "independent chains per repeat"})
    iterations: int = field(default=100, metadata={"help": "HMC iterations per chain (incl. burn-in)"})
    burn_in: int = field(default=50, metadata={"help": "iterations discarded at the start of each chain"})
    thin: int = field(default=1, metadata={"help": "keep every thin-th state after burn-in"})
    leapfrog_steps: int = field(default=5, metadata={"help": "leapfrog steps per HMC proposal"})
    step_size: float = field(default=0.01, metadata={"help": "leapfrog step size (initial value if adapted)"})
    adapt_step_size: bool = field(default=True, metadata={"help": "adapt the step size during burn-in"})
    target_accept: float = field(default=0.75, metadata={"help": "target acceptance probability of the adaptation"})
    mass: str = field(
        default="identity",
        metadata={
            "help": "mass matrix: identity, or diagonal (each chain estimates it from its own burn-in in windows "
            "of doubling length, as Stan does)",
            "identity": "unless-set",
        },
    )
    init_std: float = field(default=0.1, metadata={"help": "chains start at theta ~ N(0, init_std^2 I)"})
    settle_tv: float = settle_tv_field()
    settle_rhat: float = settle_rhat_field()
    max_iterations: int = max_iterations_field()
    settle_points: int = settle_points_field()
    batch_chains: str = batch_chains_field()

    def validate(self) -> None:
        validate_chains(self, SECTION)
        if self.batch_chains not in BATCH_CHOICES:
            raise UserError(f"--hmc.batch_chains must be one of {', '.join(BATCH_CHOICES)} (got {self.batch_chains!r})")
        validate_settling(self, SECTION)
        if self.leapfrog_steps < 1:
            raise UserError(f"--hmc.leapfrog_steps must be >= 1 (got {self.leapfrog_steps})")
        if not self.step_size > 0:
            raise UserError(f"--hmc.step_size must be > 0 (got {self.step_size})")
        if not 0 < self.target_accept < 1:
            raise UserError(f"--hmc.target_accept must be in (0, 1) (got {self.target_accept})")
        if self.mass not in ("identity", "diagonal"):
            raise UserError(f"--hmc.mass must be identity or diagonal (got {self.mass!r})")


# the options' names before each protocol had its own section
ALIASES = {
    "evaluate.chains": "chains",
    "evaluate.iterations": "iterations",
    "evaluate.burn_in": "burn_in",
    "evaluate.thin": "thin",
    "evaluate.leapfrog_steps": "leapfrog_steps",
    "evaluate.step_size": "step_size",
    "evaluate.adapt_step_size": "adapt_step_size",
    "evaluate.target_accept": "target_accept",
    "evaluate.mass": "mass",
    "evaluate.init_std": "init_std",
}


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """The official ipc-1 schedule under the paper preset."""
    if preset == "paper" and ipc == 1:
        return {"hmc.iterations": 20, "hmc.burn_in": 10, "hmc.leapfrog_steps": 20, "hmc.step_size": 0.05}
    return {}


def check_data(config: Config, is_image: bool, is_regression: bool) -> None:
    """HMC evaluates any coreset posterior."""


def planned_calls(config: Config) -> int:
    return config.chains * iteration_cap(config) * (config.leapfrog_steps + 1)


def kept_states(config: Config) -> int:
    return config.chains * kept_per_chain(config)


def _kernel(posterior, config: Config):
    kernel = hmc.build(
        posterior.potential_and_grad, config.leapfrog_steps, config.step_size, posterior.metropolis_potential
    )
    adapter = StepSizeAdapter(config.step_size, config.target_accept) if config.adapt_step_size else None
    mass = MassAdapter(config.burn_in) if config.mass == "diagonal" else None
    return kernel, adapter, 0, mass


def _batched_step(posterior):
    """All chains' HMC steps at once (samplers/batched.py), each with its own step size and mass matrix."""
    grad_fn, potential = batched.potential_and_grad(posterior), batched.exact_potential(posterior)

    def step(kernels, states, g):
        return batched.step(kernels, states, g, grad_fn, potential)

    return step


def predict(ctx: ProtocolContext, config: Config, seed: int) -> Prediction:
    return sample_predictive(ctx, config, seed, NAME, _kernel, _batched_step)
