"""One chain driver for every kernel: burn-in (with optional step-size adaptation), thinning, kept samples,
acceptance statistics.

A kernel is anything with ``init(position) -> State``, ``step(state, g) -> (State, Info)``, a ``step_size`` field
(a frozen dataclass: the driver swaps in the adapted value with ``dataclasses.replace``), a ``position`` on
its states and an ``accept_prob`` (``None`` for kernels without a Metropolis test) on its infos.

After ``burn_in`` iterations the state of iteration ``it`` is kept when ``(it - burn_in) % thin == phase``:
phase 0 keeps the first state of every block of ``thin`` (our HMC), phase ``thin - 1`` the last (the official
A-SGHMC, one sample at the end of every block of 5 steps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import UserError
from .adaptation import MassAdapter, StepSizeAdapter


@dataclass
class Chain:
    samples: list[torch.Tensor] = field(default_factory=list)
    accept_probs: list[float] = field(default_factory=list)  # after burn-in; empty without a Metropolis test
    step_size: float = 0.0
    observations: list[torch.Tensor] = field(default_factory=list)  # observe(state) after burn-in, every iteration
    metric: str = "identity"  # the mass matrix the kept samples were drawn with


def acceptance_rate(chains: list[Chain]) -> float:
    """Mean post-burn-in acceptance probability over all chains (NaN for kernels without a Metropolis test)."""
    total, count = 0.0, 0
    for chain in chains:
        for p in chain.accept_probs:
            total += p
            count += 1
    return total / count if count else float("nan")


def run_chain(
    kernel: Any,
    position: torch.Tensor,
    g: torch.Generator,
    iterations: int,
    burn_in: int,
    thin: int,
    phase: int = 0,
    adapter: StepSizeAdapter | None = None,
    observe: Callable[[torch.Tensor], torch.Tensor] | None = None,
    mass_adapter: MassAdapter | None = None,
) -> Chain:
    """Run ``iterations`` kernel steps from ``position`` and keep the thinned post-burn-in states; ``observe``
    (e.g. predictions on fixed test points, for convergence diagnostics) is applied to the position of every
    post-burn-in iteration, thinned or not. ``mass_adapter`` (kernels with a ``metric`` field, HMC) sets a
    diagonal mass matrix from a window of the burn-in."""
    if not 0 <= phase < thin:
        raise ValueError(f"thinning phase {phase} must lie in 0..{thin - 1}")
    chain = Chain()
    state = kernel.init(position)
    for it in range(iterations):
        if adapter is not None:
            kernel = dataclasses.replace(kernel, step_size=adapter.step_size)
        state, info = kernel.step(state, g)
        if it < burn_in:
            if adapter is not None and info.accept_prob is not None:
                adapter.update(info.accept_prob)
            metric = None if mass_adapter is None else mass_adapter.observe(it, state.position)
            if metric is not None:
                kernel = dataclasses.replace(kernel, metric=metric)
                chain.metric = metric.kind
                if adapter is not None:
                    adapter.restart()
            continue
        if info.accept_prob is not None:
            chain.accept_probs.append(info.accept_prob)
        if observe is not None:
            with torch.no_grad():
                chain.observations.append(observe(state.position.detach()))
        if (it - burn_in) % thin == phase:
            if not torch.isfinite(state.position).all():
                raise UserError("the chain diverged (non-finite weights); lower the step size")
            chain.samples.append(state.position.detach())
    chain.step_size = kernel.step_size
    return chain
