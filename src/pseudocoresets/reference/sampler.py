"""Samples of the full-data posterior pi_x, the yardstick every coreset posterior is compared with.

    pi_x(theta) ∝ prod_n p(y_n | x_n, theta) N(theta; 0, sigma^2 I)          (w = T = 1, all N points)

Two samplers (``--reference.sampler``):

- ``csghmc``: cyclical SGHMC (Zhang et al., "Cyclical Stochastic Gradient MCMC for Bayesian Deep Learning",
  ICLR 2020) on mini-batches. Each chain runs ``cycles`` cycles of ``epochs_per_cycle`` passes over the data;
  within a cycle the step follows the cosine schedule

      lr_k = lr / 2 (cos(pi * k / K) + 1),   k = 0..K-1 steps of the cycle,

  the first ``exploration`` share of the cycle moves without injected noise (SGD with momentum, to find a new
  mode) and the rest samples with SGHMC (samplers/sghmc.py; friction alpha, eta = lr_k / N on the summed
  potential U = N/B sum_batch nll + |theta|^2 / (2 sigma^2), so ``lr`` is a learning rate on the mean loss).
  The last ``samples_per_cycle`` states of each cycle, ``sample_spacing`` steps apart, are kept.
- ``hmc``: full-batch HMC (samplers/hmc.py) through the shared chain driver, with step-size adaptation during
  burn-in: exact up to Monte Carlo error, for models small enough to take full-data gradients (linear models,
  small tables).
- ``ensemble``: a deep ensemble (Lakshminarayanan et al., NeurIPS 2017), the second kind of reference and one
  that shares nothing with the experts: member c is a network from its own random initialisation (seed
  ``seed + 1000 + c``), trained for ``epochs`` epochs of mini-batch SGD with momentum on the posterior's
  negative log density per data point,

      L(theta) = 1/B sum_{b in batch} nll_b + |theta|^2 / (2 sigma^2 N),                              (R1)

  (weight decay 1 / (sigma^2 N), so a member ends near a mode of pi_x), and its final weights are one sample. A
  deep ensemble is a mixture of modes, not a sampler: on a convex problem (Bayesian linear regression) every
  member finds the one mode, the posterior mean, and the ensemble has no spread.

csghmc and hmc chains start from the experts' final snapshots (one expert per chain, cycling; ``--reference.start experts``, the
default) or from N(0, init_std^2 I) (``--reference.start random``). :func:`sample_csghmc` resumes from a :class:`CSGHMCState` after every cycle, so a killed
reference run continues at the cycle where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import UserError
from ..models import FlatModel
from ..samplers import CoresetPosterior, PosteriorSpec, StepSizeAdapter, Tuning, hmc, run_chain, sample, sghmc

SAMPLERS = ("csghmc", "hmc", "ensemble")
STARTS = ("experts", "random")


@dataclass
class ReferenceConfig:
    """Sampling the full-data posterior (its prior is --posterior.prior_std; w = T = 1)."""

    sampler: str = field(
        default="csghmc",
        metadata={
            "help": f"one of {SAMPLERS}: cyclical SGHMC on mini-batches, full-batch HMC for small models, or a deep "
            "ensemble (one network per chain, trained from its own random initialisation to the posterior's mode)"
        },
    )
    chains: int = field(default=2, metadata={"help": "independent chains (ensemble: members)"})
    cycles: int = field(default=4, metadata={"help": "csghmc: cycles per chain"})
    settle_rhat: float = field(
        default=0.0,
        metadata={
            "help": "csghmc: 0 = exactly `cycles`; else double the cycles until the median split R-hat of the "
            "chains' log predictive on the diagnostic test points is at most this (e.g. 1.1), up to max_cycles",
            "identity": "unless-set",
        },
    )
    max_cycles: int = field(
        default=0,
        metadata={
            "help": "csghmc: most cycles under settle_rhat (0 = 8 x cycles)",
            "identity": "unless-set",
            "only_with": ("settle_rhat",),
        },
    )
    epochs_per_cycle: float = field(default=2.0, metadata={"help": "csghmc: passes over the data per cycle"})
    batch_size: int = field(default=128, metadata={"help": "csghmc: mini-batch size"})
    lr: float = field(default=0.01, metadata={"help": "csghmc: peak learning rate on the mean loss (eta = lr / N)"})
    friction: float = field(default=0.1, metadata={"help": "csghmc: friction alpha (momentum 1 - alpha)"})
    exploration: float = field(default=0.5, metadata={"help": "csghmc: share of each cycle without injected noise"})
    samples_per_cycle: int = field(default=3, metadata={"help": "csghmc: states kept at the end of each cycle"})
    sample_spacing: int = field(default=20, metadata={"help": "csghmc: steps between kept states"})
    iterations: int = field(default=400, metadata={"help": "hmc: iterations per chain (incl. burn-in)"})
    burn_in: int = field(default=200, metadata={"help": "hmc: iterations discarded (step size adapted meanwhile)"})
    thin: int = field(default=5, metadata={"help": "hmc: keep every thin-th state after burn-in"})
    leapfrog_steps: int = field(default=10, metadata={"help": "hmc: leapfrog steps per proposal"})
    step_size: float = field(default=0.001, metadata={"help": "hmc: initial leapfrog step size (adapted)"})
    epochs: int = field(
        default=10,
        metadata={"help": "ensemble: SGD epochs per member (lr, batch_size as for csghmc)", "identity": "unless-set"},
    )
    momentum: float = field(
        default=0.9, metadata={"help": "ensemble: SGD momentum of the members", "identity": "unless-set"}
    )
    start: str = field(
        default="experts",
        metadata={
            "help": "where the chains start: experts (the experts' final snapshots, one per chain; trained first "
            "when missing), or random (N(0, init_std^2 I))",
            "identity": "never",  # enters the reference's identity as chain_starts, recorded only when random
        },
    )
    init_std: float = field(default=0.1, metadata={"help": "chains from random weights start at N(0, init_std^2 I)"})
    seed: int = field(default=0, metadata={"help": "seed of the chains and mini-batches"})
    compare: list[str] = field(
        default_factory=list,
        metadata={
            "help": "reference kinds (samplers) to check this reference against: 'bpc reference' samples each again "
            "with independent seeds (seed + chains) and writes their agreement, TV and KL with this one to "
            "references/ceiling.json, the ceiling of any coreset's agreement",
            "identity": "never",
        },
    )

    def validate(self) -> None:
        unknown = [k for k in self.compare if k not in SAMPLERS]
        if unknown:
            raise UserError(f"unknown --reference.compare {','.join(unknown)}; choose from {', '.join(SAMPLERS)}")
        if self.start not in STARTS:
            raise UserError(f"unknown --reference.start {self.start!r}; choose one of {', '.join(STARTS)}")
        if self.sampler not in SAMPLERS:
            raise UserError(f"unknown --reference.sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.chains < 1 or self.cycles < 1 or self.batch_size < 1 or self.samples_per_cycle < 1:
            raise UserError("--reference.chains, cycles, batch_size and samples_per_cycle must be >= 1")
        if self.sample_spacing < 1 or self.thin < 1 or self.leapfrog_steps < 1:
            raise UserError("--reference.sample_spacing, thin and leapfrog_steps must be >= 1")
        if not self.epochs_per_cycle > 0 or not self.lr > 0 or not self.step_size > 0 or self.init_std < 0:
            raise UserError("--reference.epochs_per_cycle, lr and step_size must be > 0 (init_std >= 0)")
        if not 0 < self.friction <= 1 or not 0 <= self.exploration < 1:
            raise UserError("--reference.friction must be in (0, 1] and exploration in [0, 1)")
        if self.epochs < 1 or not 0 <= self.momentum < 1:
            raise UserError("--reference.epochs must be >= 1 and momentum in [0, 1)")
        if self.settle_rhat and self.sampler != "csghmc":
            raise UserError(
                "--reference.settle_rhat sets the cycles of cyclical SGHMC; use it with --reference.sampler csghmc"
            )
        if self.settle_rhat and not 1 < self.settle_rhat < 10:
            raise UserError(f"--reference.settle_rhat must be 0 (off) or in (1, 10), e.g. 1.1 (got {self.settle_rhat})")
        if self.settle_rhat and self.max_cycles and self.max_cycles < self.cycles:
            raise UserError(f"--reference.max_cycles ({self.max_cycles}) must be 0 (8 x cycles) or at least cycles")
        if not 0 <= self.burn_in < self.iterations:
            raise UserError(
                f"--reference.burn_in ({self.burn_in}) must be >= 0 and below iterations ({self.iterations})"
            )

    def companion(self, sampler: str) -> "ReferenceConfig":
        """The reference of kind ``sampler`` that checks this one: its chains' and members' seeds follow this one's
        (``seed + chains``), so no generator of the two is the same."""
        settle = {} if sampler == "csghmc" else {"settle_rhat": 0.0, "max_cycles": 0}  # cycles are cSGHMC's
        return dataclasses.replace(self, sampler=sampler, seed=self.seed + self.chains, compare=[], **settle)

    def steps_per_cycle(self, num_data: int) -> int:
        return max(1, math.ceil(self.epochs_per_cycle * num_data / self.batch_size))

    def check_schedule(self, num_data: int) -> None:
        """The kept states must lie in the sampling part of each cycle."""
        steps = self.steps_per_cycle(num_data)
        sampling = steps - math.ceil(self.exploration * steps)
        needed = (self.samples_per_cycle - 1) * self.sample_spacing + 1
        if needed > sampling:
            raise UserError(
                f"--reference: {self.samples_per_cycle} samples {self.sample_spacing} steps apart need "
                f"{needed} sampling steps per cycle, the cycle has {sampling}; lower samples_per_cycle "
                "or sample_spacing, or raise epochs_per_cycle"
            )


def cyclical_lr(lr: float, k: int, steps: int) -> float:
    """The cosine schedule of one cycle: lr at k = 0, decaying to lr / 2 (cos(pi (K-1)/K) + 1) at k = K - 1."""
    return 0.5 * lr * (math.cos(math.pi * k / steps) + 1)


@dataclass
class CSGHMCState:
    """Where a chain stands after a finished cycle: enough to continue it bit for bit."""

    position: torch.Tensor
    velocity: torch.Tensor
    cycle: int  # cycles finished
    generator_state: torch.Tensor
    samples: list[torch.Tensor]


def minibatch_energy_grad(model: FlatModel, x: torch.Tensor, y: torch.Tensor, prior_std: float, batch: int):
    """(theta, g) -> grad of U~(theta) = N/B sum_{b in batch} nll_b + |theta|^2 / (2 sigma^2) on a random batch."""
    n = len(y)

    def grad_fn(theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(n, (min(batch, n),), generator=g, device=x.device)
        theta = theta.detach().requires_grad_(True)
        energy = model.nll(theta, x[idx], y[idx], reduction="mean") * n + 0.5 * (theta * theta).sum() / prior_std**2
        (grad,) = torch.autograd.grad(energy, theta)
        return grad

    return grad_fn


def sample_csghmc(
    model: FlatModel,
    x: torch.Tensor,
    y: torch.Tensor,
    prior_std: float,
    config: ReferenceConfig,
    state: CSGHMCState,
    on_cycle: Callable[[CSGHMCState], None] | None = None,
) -> CSGHMCState:
    """Run the remaining cycles of one chain from ``state``; ``on_cycle`` sees the state after every cycle."""
    n = len(y)
    steps = config.steps_per_cycle(n)
    grad_fn = minibatch_energy_grad(model, x, y, prior_std, config.batch_size)
    g = torch.Generator(device=x.device)
    g.set_state(state.generator_state)
    position, velocity, samples = state.position, state.velocity, list(state.samples)
    schedule = CyclicalSchedule(config, steps, n, samples)
    kernel = sghmc.build(grad_fn, config.lr / n, config.friction, 1.0)
    for cycle in range(state.cycle, config.cycles):
        (s,), kernel = sample(kernel, [sghmc.SGHMCState(position, velocity)], g, steps, schedule)
        position, velocity = s.position, s.velocity
        state = CSGHMCState(position, velocity, cycle + 1, g.get_state(), samples)
        if on_cycle is not None:
            on_cycle(state)
    return state


class CyclicalSchedule(Tuning):
    """The chain driver's tuning for one cycle of ``steps`` SGHMC steps (module docstring): step ``k`` takes the
    cosine schedule's step size lr_k / N and, in the exploration share of the cycle, the kernel's temperature 0
    (no injected noise: SGD with momentum), else 1; the states of the cycle's last ``samples_per_cycle`` kept
    steps are appended to ``samples``."""

    def __init__(self, config: ReferenceConfig, steps: int, num_data: int, samples: list[torch.Tensor]):
        self.config, self.steps, self.num_data, self.samples = config, steps, num_data, samples
        self.explore = math.ceil(config.exploration * steps)
        self.keep = {steps - 1 - j * config.sample_spacing for j in range(config.samples_per_cycle)}

    def kernel(self, kernel, it: int, chain: int):
        exploring = it < self.explore
        return dataclasses.replace(
            kernel,
            step_size=cyclical_lr(self.config.lr, it, self.steps) / self.num_data,
            temperature=0.0 if exploring else 1.0,
        )

    def observe(self, kernel, it: int, chain: int, state, info):
        if it in self.keep:
            if not torch.isfinite(state.position).all():
                raise UserError("the reference chain diverged (non-finite weights); lower --reference.lr")
            self.samples.append(state.position.detach().clone())
        return kernel


def train_member(
    model: FlatModel,
    x: torch.Tensor,
    y: torch.Tensor,
    prior_std: float,
    config: ReferenceConfig,
    member: int,
    resume: dict[str, torch.Tensor] | None = None,
    on_checkpoint: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> torch.Tensor:
    """One member of an ensemble reference: (R1) minimised from its own random initialisation; its final weights.
    ``on_checkpoint`` sees the state after every epoch, ``resume`` continues from one, bit for bit."""
    from ..experts import ExpertConfig, sgd_trajectory

    seed = config.seed + 1000 + member
    sgd = ExpertConfig(
        num_experts=1,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        momentum=config.momentum,
        weight_decay=1.0 / (prior_std**2 * len(y)),
        seed=seed,
    )
    theta0 = model.init(seed).to(x.device)
    try:
        return sgd_trajectory(model, theta0, x, y, sgd, seed, resume=resume, on_checkpoint=on_checkpoint)[-1]
    except UserError as exc:
        raise UserError(str(exc).replace("--experts.lr", "--reference.lr")) from None


def sample_hmc(
    model: FlatModel,
    x: torch.Tensor,
    y: torch.Tensor,
    prior_std: float,
    config: ReferenceConfig,
    start: torch.Tensor,
    g: torch.Generator,
) -> tuple[list[torch.Tensor], float]:
    """One full-batch HMC chain on pi_x; (kept samples, mean acceptance after burn-in)."""
    posterior = CoresetPosterior.from_spec(model, x, y, PosteriorSpec(1.0, 1.0, prior_std))
    kernel = hmc.build(
        posterior.potential_and_grad, config.leapfrog_steps, config.step_size, posterior.metropolis_potential
    )
    adapter = StepSizeAdapter(config.step_size, 0.75)
    chain = run_chain(kernel, start, g, config.iterations, config.burn_in, config.thin, 0, adapter)
    accept = sum(chain.accept_probs) / max(1, len(chain.accept_probs))
    return chain.samples, accept
