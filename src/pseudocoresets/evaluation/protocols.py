"""Evaluation protocols. ``hmc``: full-batch HMC on the coreset.

Posterior on the coreset (u, y_u), at temperature T:

    pi_u(theta) ∝ exp( (1/T) [ sum_m log p(y_m | u_m, theta) + log N(theta; 0, sigma^2 I) ] ),

i.e. potential U(theta) = (1/T) [ CE_sum(u; theta) + ||theta||^2 / (2 sigma^2) ]. Chains start at
theta ~ N(0, init_std^2 I); after ``burn_in`` iterations every ``thin``-th state is kept. The predictive
averages the softmax over all kept samples of all chains; metrics are computed on it (metrics.py).
A protocol is repeated with independent seeds and reported as mean and std.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models import FlatModel
from ..samplers import build_hmc
from ..samplers.hmc import StepSizeAdapter
from ..utils import progress
from .metrics import classification_metrics

PROTOCOLS = ("hmc",)


@dataclass
class EvalConfig:
    """Bayesian evaluation (defaults: the official HMC settings at ipc 10, with a correct sampler)."""

    protocol: str = field(default="hmc", metadata={"help": f"evaluation protocol, one of {PROTOCOLS}"})
    chains: int = field(default=10, metadata={"help": "independent chains per repeat"})
    iterations: int = field(default=100, metadata={"help": "HMC iterations per chain (incl. burn-in)"})
    burn_in: int = field(default=50, metadata={"help": "iterations discarded at the start of each chain"})
    thin: int = field(default=1, metadata={"help": "keep every thin-th state after burn-in"})
    leapfrog_steps: int = field(default=5, metadata={"help": "leapfrog steps per HMC proposal"})
    step_size: float = field(default=0.01, metadata={"help": "leapfrog step size (initial value if adapted)"})
    adapt_step_size: bool = field(default=True, metadata={"help": "adapt the step size during burn-in"})
    target_accept: float = field(default=0.75, metadata={"help": "target acceptance probability of the adaptation"})
    prior_std: float = field(default=1.0, metadata={"help": "sigma of the Gaussian prior N(0, sigma^2 I)"})
    init_std: float = field(default=0.1, metadata={"help": "chains start at theta ~ N(0, init_std^2 I)"})
    temperature: float = field(default=1.0, metadata={"help": "posterior temperature T (1 = Bayes posterior)"})
    repeats: int = field(default=10, metadata={"help": "independent repeats (seeds) for mean +/- std"})
    test_batch: int = field(default=256, metadata={"help": "test images per forward pass"})
    ece_bins: int = field(default=15, metadata={"help": "bins of the expected calibration error"})
    seed: int = field(default=0, metadata={"help": "base seed; repeat r uses seed + r"})

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UserError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.chains < 1 or self.repeats < 1 or self.thin < 1 or self.leapfrog_steps < 1:
            raise UserError("--evaluate.chains, repeats, thin and leapfrog_steps must be >= 1")
        if not 0 <= self.burn_in < self.iterations:
            raise UserError(
                f"--evaluate.burn_in ({self.burn_in}) must be >= 0 and below iterations ({self.iterations})"
            )
        if self.step_size <= 0 or self.prior_std <= 0 or self.temperature <= 0 or self.init_std < 0:
            raise UserError("--evaluate.step_size, prior_std and temperature must be > 0, init_std >= 0")


def coreset_potential(model: FlatModel, x: torch.Tensor, y: torch.Tensor, prior_std: float, temperature: float):
    """U(theta) and dU/dtheta for the tempered coreset posterior (module docstring)."""

    def potential_and_grad(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        theta = theta.detach().requires_grad_(True)
        nll_sum = F.cross_entropy(model(theta, x), y, reduction="sum")
        u = (nll_sum + 0.5 * (theta * theta).sum() / prior_std**2) / temperature
        (grad,) = torch.autograd.grad(u, theta)
        return u.detach(), grad

    return potential_and_grad


@torch.no_grad()
def predictive_probs(model: FlatModel, theta: torch.Tensor, x: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([F.softmax(model(theta, x[i : i + batch]), dim=1) for i in range(0, len(x), batch)])


def hmc_predictive(
    model: FlatModel,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    test_sets: dict[str, torch.Tensor],
    config: EvalConfig,
    seed: int,
    quiet: bool = True,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Run ``config.chains`` HMC chains; return averaged predictive probabilities per test set and stats."""
    device = coreset_x.device
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    kernel = build_hmc(coreset_potential(model, coreset_x, coreset_y, config.prior_std, config.temperature),
                       config.leapfrog_steps)
    sums = {k: None for k in test_sets}
    kept, accept_after, steps_after, step_sizes = 0, 0.0, 0, []
    start = time.perf_counter()
    sample_time = 0.0
    for chain in progress(range(config.chains), config.chains, "hmc chains", quiet):
        theta0 = config.init_std * torch.randn(model.num_params, generator=g, device=device)
        state = kernel.init(theta0)
        adapter = StepSizeAdapter(config.step_size, config.target_accept)
        for it in range(config.iterations):
            state, info = kernel.step(state, g, adapter.step_size)
            if it < config.burn_in:
                if config.adapt_step_size:
                    adapter.update(info["accept_prob"])
                continue
            accept_after += info["accept_prob"]
            steps_after += 1
            if (it - config.burn_in) % config.thin == 0:
                t0 = time.perf_counter()
                for name, x in test_sets.items():
                    p = predictive_probs(model, state.position, x, config.test_batch)
                    sums[name] = p if sums[name] is None else sums[name] + p
                sample_time += time.perf_counter() - t0
                kept += 1
        step_sizes.append(adapter.step_size)
    elapsed = time.perf_counter() - start
    probs = {k: v / kept for k, v in sums.items()}
    stats = {
        "acceptance_rate": accept_after / max(steps_after, 1),
        "samples": kept,
        "final_step_size_mean": sum(step_sizes) / len(step_sizes),
        "sampling_seconds": elapsed - sample_time,
        "prediction_seconds": sample_time,
    }
    return probs, stats


def _mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def evaluate_coreset(
    model: FlatModel,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    config: EvalConfig,
    quiet: bool = False,
) -> dict:
    """All repeats of the protocol: per-repeat metrics and their mean/std."""
    config.validate()
    runs = []
    for r in progress(range(config.repeats), config.repeats, f"evaluate {config.protocol}", quiet):
        probs, stats = hmc_predictive(model, coreset_x, coreset_y, {"test": test_x}, config, config.seed + r)
        runs.append({**classification_metrics(probs["test"], test_y, config.ece_bins), **stats, "seed": config.seed + r})
    summary = {}
    for key in ("accuracy", "nll", "ece", "brier", "acceptance_rate"):
        mean, std = _mean_std([run[key] for run in runs])
        summary[key] = {"mean": mean, "std": std}
    return {"protocol": config.protocol, "summary": summary, "repeats": runs}
