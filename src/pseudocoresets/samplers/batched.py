"""Several HMC chains stepped as one batch: their parameters stacked into [C, P], one vectorised potential and
gradient for all of them (``torch.func.vmap``), the leapfrog integrator and the Metropolis test applied per row.

Each chain keeps its own step size and mass matrix (the driver's tunings adapt them per chain, as in the loop),
so a batched step is C independent HMC steps (hmc.py): with the same momenta and the same uniform draws it gives
the loop's states up to floating-point rounding (the batched convolution adds in another order; a test holds
the two together). The random draws come in another order than the loop's (all chains' momenta at once), so a
batched evaluation is another, equally valid, draw of the same chains, not the loop's bit for bit.

Whether batching pays depends on the device: a coreset of 100 images leaves a GPU launch-bound, where C chains
cost about one; on a CPU the arithmetic is already the bottleneck and vmap's batched kernels are slower than the
loop (benchmarks/bench_chains_batched.py measures both). The evaluation's ``auto`` decides by the device's type,
never by a timing, so that results never depend on load.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.func import grad_and_value, vmap

from .hmc import HMCInfo, HMCKernel, HMCState
from .posterior import CoresetPosterior

BatchedPotentialAndGrad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def potential_and_grad(posterior: CoresetPosterior) -> BatchedPotentialAndGrad:
    """[C, P] -> (U [C], dU/dtheta [C, P]) of the tempered coreset posterior, one vectorised call."""

    def one(theta: torch.Tensor) -> torch.Tensor:
        return posterior.energy(theta) / posterior.temperature

    gradient = vmap(grad_and_value(one))

    def both(thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with posterior.model.eager():  # vmap over the eager network, never through a compiled graph
            grad, value = gradient(thetas.detach())
        return value.detach(), grad.detach()

    return both


def exact_potential(posterior: CoresetPosterior) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """[C, P] -> U [C] in fp32 for the Metropolis test when the model computes in bf16 (None in fp32)."""
    single = posterior.metropolis_potential
    if single is None:
        return None

    @torch.no_grad()
    def potential(thetas: torch.Tensor) -> torch.Tensor:
        return torch.stack([single(t) for t in thetas])  # one forward pass each, compiled where the model is

    return potential


def _inverse_mass(kernels: list[HMCKernel], like: torch.Tensor) -> torch.Tensor | None:
    """[C, P] diagonal inverse masses (identity rows of ones), or None when every chain has the identity."""
    if all(k.metric.inverse_mass is None for k in kernels):
        return None
    rows = []
    for k, q in zip(kernels, like):
        inv = k.metric.inverse_mass
        if inv is not None and inv.dim() != 1:
            raise ValueError("batched chains take identity or diagonal mass matrices; run dense ones in a loop")
        rows.append(torch.ones_like(q) if inv is None else inv.to(q.dtype))
    return torch.stack(rows)


def step(
    kernels: list[HMCKernel],
    states: list[HMCState],
    g: torch.Generator,
    grad_fn: BatchedPotentialAndGrad,
    potential: Callable[[torch.Tensor], torch.Tensor] | None = None,
    momenta: torch.Tensor | None = None,
    uniforms: torch.Tensor | None = None,
) -> tuple[list[HMCState], list[HMCInfo]]:
    """One HMC step of every chain (``kernels[c]``'s step size, mass matrix and leapfrog count; the count must
    be the same). ``momenta`` [C, P] and ``uniforms`` [C] replace the draws from ``g`` (tests)."""
    steps = {k.num_leapfrog for k in kernels}
    if len(steps) != 1:
        raise ValueError("batched chains take the same number of leapfrog steps")
    (num_steps,) = steps
    q0 = torch.stack([s.position for s in states])
    u0 = torch.stack([torch.as_tensor(s.potential, dtype=q0.dtype, device=q0.device) for s in states])
    grad = torch.stack([s.grad for s in states])
    eps = torch.tensor([k.step_size for k in kernels], dtype=q0.dtype, device=q0.device).unsqueeze(1)
    inv = _inverse_mass(kernels, q0)
    if momenta is None:
        z = torch.randn(q0.shape, generator=g, device=q0.device, dtype=q0.dtype)
        momenta = z if inv is None else z / inv.sqrt()
    velocity = (lambda p: p) if inv is None else (lambda p: inv * p)
    p = momenta - 0.5 * eps * grad
    q, u1 = q0, u0
    for i in range(num_steps):
        q = q + eps * velocity(p)
        u1, grad = grad_fn(q)
        p = p - (eps if i < num_steps - 1 else 0.5 * eps) * grad
    if potential is not None:
        u1 = potential(q)
    k0 = 0.5 * (momenta * velocity(momenta)).sum(1)
    k1 = 0.5 * (p * velocity(p)).sum(1)
    delta_h = (u1 + k1) - (u0 + k0)
    if uniforms is None:
        uniforms = torch.rand(len(states), generator=g, device=g.device)
    new_states, infos = [], []
    for c, state in enumerate(states):
        dh = float(delta_h[c])
        prob = math.exp(min(0.0, -dh)) if math.isfinite(dh) else 0.0
        accepted = math.isfinite(dh) and float(uniforms[c]) < prob
        new_states.append(HMCState(q[c], u1[c], grad[c]) if accepted else state)
        infos.append(HMCInfo(accepted, prob, dh))
    return new_states, infos
