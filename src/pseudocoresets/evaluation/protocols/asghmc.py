"""``asghmc``: the paper's A-SGHMC, SGHMC (samplers/sghmc.py) on the coreset posterior where every gradient is
taken on a fresh DSA augmentation of the fixed coreset.

Friction 0.1, temperature 0.01 and one kept sample at the end of every block of 5 steps are the official values;
the chain length, 1000 steps with 500 burn-in, is ours (one SGHMC step is one gradient, so HMC's iteration counts
would not train the network). Chains, scoring and diagnostics: :mod:`.sampled`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...augment import DSA
from ...errors import UserError
from ...samplers import sghmc
from .interface import Prediction, ProtocolContext
from .sampled import (
    iteration_cap,
    kept_per_chain,
    max_iterations_field,
    sample_predictive,
    settle_points_field,
    settle_rhat_field,
    settle_tv_field,
    validate_chains,
    validate_settling,
)

NAME = "asghmc"
SECTION = "asghmc"


@dataclass
class Config:
    """A-SGHMC on the augmented coreset posterior (defaults: the official values)."""

    chains: int = field(default=10, metadata={"help": "independent chains per repeat"})
    iterations: int = field(default=1000, metadata={"help": "SGHMC steps per chain (incl. burn-in)"})
    burn_in: int = field(default=500, metadata={"help": "steps discarded at the start of each chain"})
    thin: int = field(default=5, metadata={"help": "keep the last state of every block of thin steps after burn-in"})
    step_size: float = field(default=1e-4, metadata={"help": "SGHMC step size eta"})
    friction: float = field(default=0.1, metadata={"help": "friction alpha"})
    augment_per_image: bool = field(default=True, metadata={"help": "DSA draws per image (false: one per batch)"})
    init_std: float = field(default=0.1, metadata={"help": "chains start at theta ~ N(0, init_std^2 I)"})
    settle_tv: float = settle_tv_field()
    settle_rhat: float = settle_rhat_field()
    max_iterations: int = max_iterations_field()
    settle_points: int = settle_points_field()

    def validate(self) -> None:
        validate_chains(self, SECTION)
        validate_settling(self, SECTION)
        if not 0 < self.friction <= 1 or not self.step_size > 0:
            raise UserError("--asghmc.friction must be in (0, 1] and step_size > 0")


# the options' names before each protocol had its own section
ALIASES = {
    "evaluate.chains": "chains",
    "evaluate.iterations": "iterations",
    "evaluate.burn_in": "burn_in",
    "evaluate.thin": "thin",
    "evaluate.sghmc_step_size": "step_size",
    "evaluate.friction": "friction",
    "evaluate.augment_per_image": "augment_per_image",
    "evaluate.init_std": "init_std",
}


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """The official temperature of the sampled posterior, T = 0.01 (a cold posterior), at every preset."""
    return {"evaluate.temperature": 0.01}


def check_data(config: Config, is_image: bool, is_regression: bool) -> None:
    if not is_image:
        raise UserError("asghmc augments images (DSA) at every step; use --protocols hmc for tabular data")


def planned_calls(config: Config) -> int:
    return config.chains * iteration_cap(config)


def kept_states(config: Config) -> int:
    return config.chains * kept_per_chain(config)


def _kernel(posterior, config: Config):
    kernel = sghmc.build(
        posterior.energy_grad(DSA(per_image=config.augment_per_image)),
        config.step_size,
        config.friction,
        posterior.temperature,
    )
    return kernel, None, config.thin - 1, None


def predict(ctx: ProtocolContext, config: Config, seed: int) -> Prediction:
    if ctx.coreset_x.dim() != 4:
        check_data(config, False, False)
    return sample_predictive(ctx, config, seed, NAME, _kernel)
