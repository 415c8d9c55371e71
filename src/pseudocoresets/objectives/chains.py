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
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

from ..errors import UserError
from ..samplers import CoresetPosterior, hmc
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

    def validate_chains(self, section: str) -> None:
        if min(self.chains, self.chain_steps, self.chain_thin, self.chain_leapfrog) < 1:
            raise UserError(f"--{section}.chains, chain_steps, chain_thin and chain_leapfrog must be >= 1")
        if self.chain_thin > self.chain_steps:
            raise UserError(f"--{section}.chain_thin must not exceed chain_steps (no state would be kept)")
        if self.chain_burn_in < 0 or not self.chain_step_size > 0 or not 0 < self.chain_target_accept < 1:
            raise UserError(
                f"--{section}.chain_burn_in must be >= 0, chain_step_size > 0, chain_target_accept in (0, 1)"
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
    ):
        self.ctx = context
        self.num_chains, self.steps, self.thin, self.burn_in = num_chains, steps, thin, burn_in
        self.leapfrog, self.target_accept = leapfrog, target_accept
        self.log_step = math.log(step_size)
        self.positions: list[torch.Tensor] | None = None
        self.accept_probs: list[float] = []

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

    def _transitions(self, kernel: hmc.HMCKernel, states: list, count: int, g: torch.Generator) -> list:
        for _ in range(count):
            for i, state in enumerate(states):
                kernel = dataclasses.replace(kernel, step_size=self.step_size)
                states[i], info = kernel.step(state, g)
                self.accept_probs.append(info.accept_prob)
                self.log_step += ADAPT_GAIN * (info.accept_prob - self.target_accept)
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
        kernel = hmc.build(posterior.potential_and_grad, self.leapfrog, self.step_size, posterior.metropolis_potential)
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
