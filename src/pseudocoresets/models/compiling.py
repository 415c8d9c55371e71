"""When the network runs under torch.compile, and what happens when compilation fails.

A ConvNet's convolutions are surrounded by memory-bound layers (group norm, ReLU, average pooling and their
backwards: about half of an fKL iteration's time on the CPUs measured, benchmarks/results/profile_fkl_*.md).
torch.compile (inductor) fuses those into a few passes over memory; the convolutions stay library calls. It costs
a compilation per input shape and grad mode (20-30 s for a forward with its backward on a 2-core CPU), so a stage
compiles only when it plans enough network calls to earn that back (``planned_calls``), only networks with
convolutions, on CPUs only with a C++ compiler, and never for a double backward (``FlatModel.eager``). A failed
compilation prints one line and the process goes on eagerly: the eager network computes the same function.
"""

from __future__ import annotations

import os
import shutil
import sys

import torch

# A stage runs its network compiled from this many planned forward(+backward) calls on (see each stage's count):
# on the 2-core CPU the quick ConvNet's forward + backward on 100 images took 95 ms eager and 43 ms compiled after
# about 22 s of compilation per graph, and a stage compiles 2-4 graphs (grad modes, a last partial batch).
COMPILE_MIN_CALLS = 2000

_FAILED: list[str] = []  # the first compilation failure of this process: nothing compiles after it


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would use on CPUs ($CXX, else c++ / g++ / clang++ on the PATH), or None."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def can_compile(module: torch.nn.Module, device: torch.device) -> bool:
    """A network with convolutions (the linear model gains nothing), on a device inductor can generate code for,
    and no compilation has failed in this process."""
    if _FAILED or not any(isinstance(m, torch.nn.Conv2d) for m in module.modules()):
        return False
    return device.type != "cpu" or cpp_compiler() is not None


def should_compile(switch: bool, module: torch.nn.Module, device: torch.device, planned_calls: int) -> bool:
    """``--model.compile`` on, enough planned calls, and a network and device that can compile."""
    return switch and planned_calls >= COMPILE_MIN_CALLS and can_compile(module, device)


def failed() -> bool:
    return bool(_FAILED)


def record_failure(exc: BaseException) -> None:
    """Remember the first failure and say so once, on stderr."""
    if _FAILED:
        return
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    _FAILED.append(f"{type(exc).__name__}: {first}"[:200])
    print(
        f"bpc: torch.compile failed ({_FAILED[0]}); going on without it (--no-model.compile and "
        "--no-evaluate.compile skip the attempt)",
        file=sys.stderr,
    )


def configure(limit: int = 64) -> None:
    """torch.compile settings for the library's use:

    - every FlatModel compiles its own forward, and torch's default of 8 compiled variants per function would leave
      a process with many models (a whole table's cells) eager after the eighth: raised to ``limit``;
    - the backward graph is compiled with the forward, not lazily at the first backward, so that a compiler
      failure surfaces inside the forward call, where FlatModel falls back to the eager network."""
    import torch._dynamo.config
    import torch._functorch.config

    dynamo = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # the name since torch 2.6, and before
        if hasattr(dynamo, name) and getattr(dynamo, name) < limit:
            setattr(dynamo, name, limit)
    functorch = torch._functorch.config
    if hasattr(functorch, "force_non_lazy_backward_lowering"):
        functorch.force_non_lazy_backward_lowering = True
