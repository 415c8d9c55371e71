"""One chain driver for every loop that runs a kernel: :func:`sample` steps one or several chains and hands every
step to the parts that differ between loops; :func:`run_chain` is the evaluation's use of it (burn-in with
optional step-size and mass-matrix adaptation, thinning, kept samples, acceptance statistics).

A kernel is anything with ``init(position) -> State``, ``step(state, g) -> (State, Info)``, a ``step_size`` field
(a frozen dataclass: parts swap in new values with ``dataclasses.replace``), a ``position`` on its states and an
``accept_prob`` (``None`` for kernels without a Metropolis test) on its infos.

What differs between loops is passed in as a :class:`Tuning`: it gives the kernel of every step (an adapted step
size, a cyclical schedule's step size and temperature) and sees every step's result (to adapt, to keep states).
Three tunings cover the package: :class:`BurnInAdaptation` (the evaluation: Robbins-Monro step size and windowed
diagonal mass matrix during burn-in, then thinning), :class:`ConstantGain` (the objectives' persistent chains:
the step size adapted all along with a constant gain, shared by their chains) and the cyclical schedule of the
reference sampler (reference/sampler.py).

Several chains step in lockstep: at every iteration each chain takes one step, in order, so that chains that
share a tuning see each other's steps as they happen (the order of random draws is the loop's, for a
bit-identical resume). :func:`sample_batched` steps chains with their own kernels and tunings as one batch (one
vectorised gradient for all of them, samplers/batched.py).

After ``burn_in`` iterations the state of iteration ``it`` is kept when ``(it - burn_in) % thin == phase``:
phase 0 keeps the first state of every block of ``thin`` (our HMC), phase ``thin - 1`` the last (the official
A-SGHMC, one sample at the end of every block of 5 steps).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import UserError
from .adaptation import MassAdapter, StepSizeAdapter


class Tuning:
    """The part of a loop that differs: ``kernel(kernel, it, chain)`` gives the kernel of chain ``chain``'s step at
    iteration ``it``; ``observe(kernel, it, chain, state, info)`` sees its result and returns the kernel to go on
    with. The base class changes nothing."""

    def kernel(self, kernel: Any, it: int, chain: int) -> Any:
        return kernel

    def observe(self, kernel: Any, it: int, chain: int, state: Any, info: Any) -> Any:
        return kernel


def sample(
    kernel: Any, states: list, g: torch.Generator, iterations: int, tuning: Tuning | None = None, start: int = 0
) -> tuple:
    """Step every chain of ``states`` ``iterations`` times, in lockstep, with the kernels ``tuning`` gives;
    returns ``(states, kernel)`` after the last step. ``start``: the number of the first iteration (a chain
    continued after ``start`` earlier iterations)."""
    tuning = tuning or Tuning()
    states = list(states)
    for it in range(start, start + iterations):
        for c, state in enumerate(states):
            kernel = tuning.kernel(kernel, it, c)
            states[c], info = kernel.step(state, g)
            kernel = tuning.observe(kernel, it, c, states[c], info)
    return states, kernel


def sample_batched(
    kernels: list,
    states: list,
    g: torch.Generator,
    iterations: int,
    tunings: list[Tuning],
    step: Callable[[list, list, torch.Generator], tuple[list, list]],
    start: int = 0,
) -> tuple[list, list]:
    """:func:`sample` for chains stepped as one batch (samplers/batched.py): chain c has its own kernel and tuning
    (``kernels[c]``, ``tunings[c]``), and ``step(kernels, states, g) -> (states, infos)`` steps them all at once.
    Returns ``(states, kernels)`` after the last step."""
    kernels, states = list(kernels), list(states)
    for it in range(start, start + iterations):
        kernels = [tuning.kernel(k, it, c) for c, (k, tuning) in enumerate(zip(kernels, tunings))]
        states, infos = step(kernels, states, g)
        kernels = [t.observe(k, it, c, s, i) for c, (k, t, s, i) in enumerate(zip(kernels, tunings, states, infos))]
    return states, kernels


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


class BurnInAdaptation(Tuning):
    """The evaluation's tuning of one chain: during ``burn_in`` the step size follows ``adapter`` and a diagonal
    mass matrix is estimated in windows (``mass_adapter``); afterwards the acceptance, ``observe(position)`` of
    every iteration and the thinned states are recorded into ``chain``."""

    def __init__(
        self,
        chain: Chain,
        burn_in: int,
        thin: int,
        phase: int = 0,
        adapter: StepSizeAdapter | None = None,
        observe: Callable[[torch.Tensor], torch.Tensor] | None = None,
        mass_adapter: MassAdapter | None = None,
    ):
        if not 0 <= phase < thin:
            raise ValueError(f"thinning phase {phase} must lie in 0..{thin - 1}")
        self.chain, self.burn_in, self.thin, self.phase = chain, burn_in, thin, phase
        self.adapter, self.watch, self.mass_adapter = adapter, observe, mass_adapter

    def kernel(self, kernel: Any, it: int, chain: int) -> Any:
        if self.adapter is not None:
            return dataclasses.replace(kernel, step_size=self.adapter.step_size)
        return kernel

    def observe(self, kernel: Any, it: int, chain: int, state: Any, info: Any) -> Any:
        if it < self.burn_in:
            if self.adapter is not None and info.accept_prob is not None:
                self.adapter.update(info.accept_prob)
            metric = None if self.mass_adapter is None else self.mass_adapter.observe(it, state.position)
            if metric is not None:
                kernel = dataclasses.replace(kernel, metric=metric)
                self.chain.metric = metric.kind
                if self.adapter is not None:
                    self.adapter.restart()
            return kernel
        if info.accept_prob is not None:
            self.chain.accept_probs.append(info.accept_prob)
        if self.watch is not None:
            with torch.no_grad():
                self.chain.observations.append(self.watch(state.position.detach()))
        if (it - self.burn_in) % self.thin == self.phase:
            if not torch.isfinite(state.position).all():
                raise UserError("the chain diverged (non-finite weights); lower the step size")
            self.chain.samples.append(state.position.detach())
        return kernel


class ConstantGain(Tuning):
    """A step size adapted after every step of every chain towards ``target`` with a constant gain,
    log eps <- log eps + gain (a - target), shared by the chains; the acceptance of every step is recorded."""

    def __init__(self, log_step: float, target: float, gain: float):
        self.log_step, self.target, self.gain = log_step, target, gain
        self.accept_probs: list[float] = []

    def kernel(self, kernel: Any, it: int, chain: int) -> Any:
        return dataclasses.replace(kernel, step_size=math.exp(self.log_step))

    def observe(self, kernel: Any, it: int, chain: int, state: Any, info: Any) -> Any:
        self.accept_probs.append(info.accept_prob)
        self.log_step += self.gain * (info.accept_prob - self.target)
        return kernel


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
    chain = Chain()
    tuning = BurnInAdaptation(chain, burn_in, thin, phase, adapter, observe, mass_adapter)
    _, kernel = sample(kernel, [kernel.init(position)], g, iterations, tuning)
    chain.step_size = kernel.step_size  # the last step's
    return chain
