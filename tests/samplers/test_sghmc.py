"""SGHMC on a known Gaussian target: with exact or noisy gradients it samples exp(-U/T)."""

import math

import pytest
import torch

from pseudocoresets.samplers import sghmc

MEAN = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
STD = torch.tensor([0.5, 1.0, 0.8], dtype=torch.float64)


def run(temperature, grad_noise, seed, steps=40000, step_size=0.01, friction=0.1):
    def grad_fn(q, g):
        grad = (q - MEAN) / STD**2
        if grad_noise:
            grad = grad + grad_noise * torch.randn(q.shape, generator=g, dtype=q.dtype)
        return grad

    kernel = sghmc.build(grad_fn, step_size, friction, temperature)
    g = torch.Generator().manual_seed(seed)
    state = kernel.init(torch.zeros(3, dtype=torch.float64))
    out = []
    for it in range(steps):
        state, _ = kernel.step(state, g)
        if it >= 2000 and it % 5 == 0:
            out.append(state.position)
    return torch.stack(out)


@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_sghmc_targets_tempered_gaussian(temperature):
    s = run(temperature, 0.0, seed=0)
    var = STD**2 * temperature
    assert ((s.mean(0) - MEAN).abs() < 6 * var.sqrt() / math.sqrt(len(s) / 20)).all()
    assert ((s.var(0) / var - 1).abs() < 0.2).all()


def test_sghmc_without_noise_injection_collapses():
    # a sampler with the diffusion term removed is an optimiser: its spread is far below the target's
    s = run(1e-8, 0.0, seed=1, steps=6000)
    assert (s[-200:].std(0) < 0.05 * STD).all()


def test_small_gradient_noise_keeps_the_target():
    # noisy gradients with small step: the extra noise eta^2 * var adds little (Chen et al. Sec. 3)
    s = run(1.0, 1.0, seed=2)
    assert ((s.var(0) / STD**2 - 1).abs() < 0.25).all()
