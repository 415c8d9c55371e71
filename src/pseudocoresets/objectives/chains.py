"""Persistent HMC chains on the current coreset posterior pi_u, for objectives that need samples of it.

The coreset u changes little between outer iterations, so chains are not restarted: each iteration every chain
continues from its last position for ``steps`` HMC transitions (samplers/hmc.py, with its Metropolis test) on the
coreset posterior of the *current* pixels (samplers/posterior.py: weight w, temperature T, prior sigma), and its
positions after every ``thin`` transitions are returned: persistent contrastive divergence (Tieleman 2008)
applied to pseudocoresets. As u is learnt the curvature of pi_u changes (it grows with the norm of u), so the
leapfrog step size is adapted all along, towards ``target_accept``, with a constant gain:
log eps <- log eps + gain (a - target). Chains start at random expert snapshots (where the full-data posterior,
and so eventually pi_u, has mass) and burn in for ``burn_in`` transitions at the first iteration. Given
``starts``, ``advance`` instead runs one chain from each start without burn-in and keeps nothing for the next
call (contrastive divergence CD-k; fkl_mcmc's ``chain_start x``); the step size is adapted in both modes.

Mass matrix (``chain_mass``). On an ill-conditioned posterior one step size cannot fit every direction: the
narrowest sets it and the chains crawl along the widest. With ``chain_mass`` diagonal or dense the HMC kernel
uses the shape of the full-data posterior's covariance as its inverse mass (samplers/mass.py, Eq. M1, scaled to
a unit mean variance; the step size keeps adapting to pi_u's scale): the coreset posterior is learnt to look like
pi_x, so its shape is the best guess before pi_u is known. The samples are the reference stage's
(``context.reference``) where the objective has them, else the expert snapshots of the second half of every
trajectory; a dense metric is for small models (at most samplers.mass.DENSE_MAX_DIM parameters). The metric
only changes how fast the chains mix, every metric leaves pi_u invariant. Measured on the closed-form family's
large problem (docs/fidelity.md): the dense metric takes the chains' lag-1 autocorrelation along pi_u's widest
direction from 0.78 to -0.22, but the objectives' descent does not improve with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import UserError
from ..samplers import ConstantGain, CoresetPosterior, hmc, sample
from ..samplers import mass as mass_matrix
from .interface import DistillContext

ADAPT_GAIN = 0.05


@dataclass
class ChainOptions:
    """Options of the persistent chains, shared by every objective that samples pi_u with them."""

    chains: int = field(default=4, metadata={"help": "persistent HMC chains on pi_u"})
    chain_steps: int = field(default=2, metadata={"help": "HMC transitions per chain and outer iteration"})
    chain_thin: int = field(default=1, metadata={"help": "a chain contributes its state every chain_thin transitions"})
    chain_burn_in: int = field(default=20, metadata={"help": "HMC transitions per chain before the first iteration"})
    chain_step_size: float = field(default=0.01, metadata={"help": "initial leapfrog step size (adapted all along)"})
    chain_leapfrog: int = field(default=5, metadata={"help": "leapfrog steps per HMC transition"})
    chain_target_accept: float = field(default=0.75, metadata={"help": "acceptance rate the step size is adapted to"})
    chain_mass: str = field(
        default="identity",
        metadata={
            "help": "mass matrix of the chains' HMC: identity, diagonal or dense (the shape of the full-data "
            "posterior samples' covariance: the reference's, else the experts' later snapshots)",
            "identity": "unless-set",
        },
    )

    def validate_chains(self, section: str) -> None:
        if min(self.chains, self.chain_steps, self.chain_thin, self.chain_leapfrog) < 1:
            raise UserError(f"--{section}.chains, chain_steps, chain_thin and chain_leapfrog must be >= 1")
        if self.chain_thin > self.chain_steps:
            raise UserError(f"--{section}.chain_thin must not exceed chain_steps (no state would be kept)")
        if self.chain_burn_in < 0 or not self.chain_step_size > 0 or not 0 < self.chain_target_accept < 1:
            raise UserError(
                f"--{section}.chain_burn_in must be >= 0, chain_step_size > 0, chain_target_accept in (0, 1)"
            )
        if self.chain_mass not in mass_matrix.KINDS:
            raise UserError(
                f"--{section}.chain_mass must be one of {', '.join(mass_matrix.KINDS)} (got {self.chain_mass!r})"
            )


class PersistentChains:
    def __init__(
        self,
        context: DistillContext,
        num_chains: int,
        steps: int,
        thin: int,
        burn_in: int,
        step_size: float,
        leapfrog: int,
        target_accept: float = 0.75,
        mass: str = "identity",
    ):
        self.ctx = context
        self.num_chains, self.steps, self.thin, self.burn_in = num_chains, steps, thin, burn_in
        self.leapfrog, self.target_accept = leapfrog, target_accept
        self.log_step = math.log(step_size)
        self.positions: list[torch.Tensor] | None = None
        self.accept_probs: list[float] = []
        self.mass = mass
        self.metric: mass_matrix.Metric | None = None  # estimated at the first call (the context's samples are fixed)
        if mass != "identity" and context.reference is None and context.experts is None:
            raise UserError("chain_mass needs full-data posterior samples: the reference's or the experts'")
        if mass == "dense" and context.model.num_params > mass_matrix.DENSE_MAX_DIM:
            raise UserError(
                f"chain_mass dense over {context.model.num_params} parameters is too large "
                f"(at most {mass_matrix.DENSE_MAX_DIM}); use chain_mass diagonal"
            )

    @classmethod
    def from_options(cls, context: DistillContext, o: ChainOptions) -> "PersistentChains":
        return cls(
            context,
            o.chains,
            o.chain_steps,
            o.chain_thin,
            o.chain_burn_in,
            o.chain_step_size,
            o.chain_leapfrog,
            o.chain_target_accept,
            o.chain_mass,
        )

    @property
    def step_size(self) -> float:
        return math.exp(self.log_step)

    def _start(self, g: torch.Generator, dtype: torch.dtype) -> list[torch.Tensor]:
        pool = self.ctx.experts
        starts = []
        for _ in range(self.num_chains):
            e = int(torch.randint(len(pool.paths), (1,), generator=g, device=g.device))
            r = int(torch.randint(pool.num_snapshots, (1,), generator=g, device=g.device))
            starts.append(pool.snapshot(e, r).to(dtype))
        return starts

    def _metric(self, dtype: torch.dtype) -> mass_matrix.Metric:
        if self.metric is None:
            if self.mass == "identity":
                self.metric = mass_matrix.IDENTITY
            else:
                samples = self.ctx.reference
                if samples is None:
                    pool = self.ctx.experts
                    later = range(pool.num_snapshots // 2, pool.num_snapshots)
                    samples = torch.stack([pool.snapshot(e, r) for e in range(len(pool.paths)) for r in later])
                self.metric = mass_matrix.estimate(samples, self.mass)
        return self.metric.to(dtype)

    def _transitions(self, kernel: hmc.HMCKernel, states: list, count: int, g: torch.Generator) -> list:
        """``count`` transitions of every chain through the shared driver, the step size adapted after each."""
        tuning = ConstantGain(self.log_step, self.target_accept, ADAPT_GAIN)
        states, _ = sample(kernel, states, g, count, tuning)
        self.log_step = tuning.log_step
        self.accept_probs += tuning.accept_probs
        return states

    def advance(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        g: torch.Generator,
        point_weights: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Move every chain on pi_u(current images, current per-point weights if learnt); return the kept
        positions [chains * (steps // thin), P]. With ``starts`` [K, P] the chains are not persistent: K chains
        start there, without burn-in, and are forgotten afterwards (contrastive divergence CD-k, Hinton 2002)."""
        posterior = CoresetPosterior.from_spec(
            self.ctx.model,
            images.detach(),
            labels,
            self.ctx.posterior,
            None if point_weights is None else point_weights.detach(),
        )
        kernel = hmc.build(
            posterior.potential_and_grad,
            self.leapfrog,
            self.step_size,
            posterior.metropolis_potential,
            self._metric(images.dtype),
        )
        self.accept_probs = []
        if starts is not None:
            states = [kernel.init(theta.detach().to(images.dtype)) for theta in starts]
        elif self.positions is None:
            states = [kernel.init(theta) for theta in self._start(g, images.dtype)]
            states = self._transitions(kernel, states, self.burn_in, g)
        else:  # the potential changed with the images: recompute U and its gradient at the kept positions
            states = [kernel.init(theta) for theta in self.positions]
        kept = []
        for _ in range(self.steps // self.thin):
            states = self._transitions(kernel, states, self.thin, g)
            kept += [state.position for state in states]
        if starts is None:
            self.positions = [state.position for state in states]
        samples = torch.stack(kept)
        if not torch.isfinite(samples).all():
            raise UserError("the coreset-posterior chains diverged (non-finite weights); lower chain_step_size")
        return samples

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Chain positions (absent before the first iteration) and the adapted log step size."""
        state = {"chains.log_step": torch.tensor([self.log_step], dtype=torch.float64)}
        if self.positions is not None:
            state["chains.positions"] = torch.stack(self.positions)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.log_step = float(state["chains.log_step"][0])
        self.positions = list(state["chains.positions"].unbind(0)) if "chains.positions" in state else None

    def acceptance(self) -> float:
        return sum(self.accept_probs) / len(self.accept_probs) if self.accept_probs else float("nan")
