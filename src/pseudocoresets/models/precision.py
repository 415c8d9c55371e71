"""Compute precision of the network's forward pass: fp32, or bf16 mixed precision.

With ``bf16`` the network's forward runs under ``torch.autocast(dtype=torch.bfloat16)``: convolutions and matrix
products take bf16 inputs, everything else (parameters, pixels, optimiser states, log-likelihoods, energies,
sums over data and samples) stays fp32, and the outputs are cast back to fp32 before the likelihood. Gradients
with respect to fp32 tensors (parameters, pixels) come back in fp32. ``auto`` picks bf16 where the device
computes it natively (a CUDA card with bf16 support; a CPU with AMX or AVX512-BF16), else fp32.
"""

from __future__ import annotations

import torch

from ..errors import UserError

PRECISIONS = ("fp32", "bf16", "auto")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` has bf16 arithmetic units (so bf16 can be faster than fp32 there)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        capability = str(torch.backends.cpu.get_cpu_capability()).upper()
        if "AMX" in capability or "BF16" in capability:
            return True
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return False
        return " amx_bf16" in flags or " avx512_bf16" in flags
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for the user's choice ``name`` on ``device`` (``auto`` decided by :func:`bf16_native`)."""
    if name not in PRECISIONS:
        raise UserError(f"unknown --model.precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    return name


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (None: plain fp32)."""
    return torch.bfloat16 if precision == "bf16" else None
