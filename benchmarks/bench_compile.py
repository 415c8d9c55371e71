"""Eager against compiled (``--model.compile``) per network path, against the FLOP floor measured in the same process.

    python benchmarks/bench_compile.py [--models quick,paper] [--precision fp32] [--repeats 5] [--fkl]
                                       [--name compile_cpu]

Paths, each a forward (+ backward) of the ConvNet as the library runs it (``FlatModel``, channels-last inputs):
expert SGD (256 real images, gradient in the parameters), student step / HMC gradient (100 coreset images,
gradient in the parameters), coreset gradient (100 images, gradient in the pixels: the surrogate terms of fKL,
fkl_mcmc and rKL) and scoring (256 test images, no gradient). Per path: the eager seconds per call (best of
``--repeats`` after a warm-up), the first compiled call (compilation included), the compiled seconds per call, the
speed-up, the calls after which compiling has paid for itself, FLOPs per call (torch.utils.flop_counter) and each
variant as a multiple of its floor (FLOPs / the rate of a matrix-product probe in the same process). The profiler's
top operators of the student step, eager and compiled. ``--fkl``: one fKL iteration at the paper's settings on
synthetic tensors of the real shapes (bench_precision.py's set-up), eager and compiled.
Writes benchmarks/results/NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# compilation times from a cold cache: inductor keeps compiled kernels on disk between processes
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bpc-inductor-"))
sys.path.insert(0, str(Path(__file__).parent))

from bench_precision import matmul_rate, sync  # noqa: E402
from common import MODELS, machine, synthetic_context, write_results  # noqa: E402


def paths(spec: dict, g) -> dict:
    import torch

    def images(n: int, grad: bool = False) -> torch.Tensor:
        x = torch.randn(n, spec["channels"], spec["size"], spec["size"], generator=g)
        return x.contiguous(memory_format=torch.channels_last).requires_grad_(grad)

    labels = {n: torch.arange(n) % 10 for n in (100, 256)}
    return {
        "expert SGD step (256 images, d/d theta)": (images(256), labels[256], "theta"),
        "student step / HMC gradient (100 images, d/d theta)": (images(100), labels[100], "theta"),
        "coreset gradient (100 images, d/d pixels)": (images(100, True), labels[100], "x"),
        "scoring (256 images, no gradient)": (images(256), labels[256], None),
    }


def call(model, theta, x, y, wrt):
    import torch

    if wrt is None:
        with torch.no_grad():
            return model(theta, x)
    t = theta.detach().requires_grad_(wrt == "theta")
    loss = model.nll(t, x, y)
    return torch.autograd.grad(loss, t if wrt == "theta" else x)[0]


def best_of(fn, repeats: int, device) -> float:
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def top_ops(fn, k: int = 6) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "share": e.self_cpu_time_total / total} for e in events[:k]]


def path_rows(model_name: str, precision: str, repeats: int, rate: float, device) -> tuple[list[dict], dict]:
    import torch

    from pseudocoresets.models import FlatModel, ModelConfig, build_convnet

    spec = MODELS[model_name]
    g = torch.Generator().manual_seed(0)

    def network() -> FlatModel:
        net = FlatModel(build_convnet(ModelConfig(width=spec["width"]), spec["channels"], spec["size"], 10))
        return net.to(device).with_precision(precision)

    eager, compiled = network(), network()  # the same initial parameters (init(0)), one of them compiled
    compiled.compile = True
    flop_counts = count_flops(model_name, precision)
    theta = eager.init(0).to(device)
    rows, profiles = [], {}
    for name, (x, y, wrt) in paths(spec, g).items():
        x, y = x.to(device), y.to(device)
        call(eager, theta, x, y, wrt)
        t_eager = best_of(lambda: call(eager, theta, x, y, wrt), repeats, device)
        sync(device)
        t0 = time.perf_counter()
        call(compiled, theta, x, y, wrt)
        sync(device)
        first = time.perf_counter() - t0
        t_compiled = best_of(lambda: call(compiled, theta, x, y, wrt), repeats, device)
        flops = flop_counts[name]
        saved = t_eager - t_compiled
        floor = flops / rate
        rows.append(
            {
                "model": model_name,
                "precision": precision,
                "path": name,
                "eager_s": t_eager,
                "compiled_s": t_compiled,
                "first_compiled_call_s": first,
                "speedup": t_eager / t_compiled,
                "break_even_calls": (first - t_compiled) / saved if saved > 0 else None,
                "flops": flops,
                "eager_x_floor": t_eager / floor,
                "compiled_x_floor": t_compiled / floor,
            }
        )
        print(rows[-1], flush=True)
        if wrt == "theta" and x.shape[0] == 100:
            profiles = {
                "eager": top_ops(lambda: call(eager, theta, x, y, wrt)),
                "compiled": top_ops(lambda: call(compiled, theta, x, y, wrt)),
            }
    return rows, profiles


def count_flops(model_name: str, precision: str) -> dict:
    """FLOPs of one call of every path (eager network)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pseudocoresets.models import FlatModel, ModelConfig, build_convnet

    spec = MODELS[model_name]
    model = FlatModel(build_convnet(ModelConfig(width=spec["width"]), spec["channels"], spec["size"], 10))
    model = model.with_precision(precision)
    theta = model.init(0)
    out = {}
    for name, (x, y, wrt) in paths(spec, torch.Generator().manual_seed(0)).items():
        with FlopCounterMode(display=False) as counter:
            if wrt == "x":  # the same work as call(); the counter breaks autograd.grad to a leaf (torch 2.13)
                model.nll(theta, x, y).backward()
            else:
                call(model, theta, x, y, wrt)
        out[name] = counter.get_total_flops()
    return out


def fkl_iteration(precision: str, device, rate: float) -> dict:
    """Seconds of one fKL iteration (official ipc-10 values, DSA on), eager then compiled (first iteration with
    its compilation, then the best of two), and its FLOPs (counted on an eager iteration) against the floor."""
    from torch.utils.flop_counter import FlopCounterMode

    from pseudocoresets.distill import DistillConfig, distill
    from pseudocoresets.objectives import OBJECTIVES

    ctx, device, _ = synthetic_context("paper", precision, augment=True)
    cfg = DistillConfig(
        method="fkl", ipc=10, iterations=1, max_start_epoch=2, expert_epochs=1, lr_images=1e-3, augment=True
    )
    with FlopCounterMode(display=False) as counter:
        distill(cfg, OBJECTIVES["fkl"].Config(), ctx, ctx.real_x[:100].clone(), ctx.real_y[:100].clone(), quiet=True)
    out = {"flops": counter.get_total_flops()}
    out["floor_s"] = out["flops"] / rate
    for mode in ("eager", "compiled"):
        ctx, device, _ = synthetic_context("paper", precision, augment=True)
        ctx.model.compile = mode == "compiled"
        cfg = DistillConfig(
            method="fkl", ipc=10, iterations=1, max_start_epoch=2, expert_epochs=1, lr_images=1e-3, augment=True
        )
        init, labels = ctx.real_x[:100].clone(), ctx.real_y[:100].clone()
        t0 = time.perf_counter()
        distill(cfg, OBJECTIVES["fkl"].Config(), ctx, init, labels, quiet=True)
        out[f"{mode}_first_s"] = time.perf_counter() - t0
        out[f"{mode}_s"] = best_of(
            lambda: distill(cfg, OBJECTIVES["fkl"].Config(), ctx, init, labels, quiet=True), 2, device
        )
        print(mode, out, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="quick,paper")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fkl", action="store_true")
    p.add_argument("--name", default="compile_cpu")
    args = p.parse_args()
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    rate, probe_n = matmul_rate(device, dtype, 8192 if device.type == "cuda" else 2048)
    rows, profiles = [], {}
    for model_name in args.models.split(","):
        r, prof = path_rows(model_name, args.precision, args.repeats, rate, device)
        rows += r
        profiles[model_name] = prof
    fkl = fkl_iteration(args.precision, device, rate) if args.fkl else None
    lines = [
        "| model | path | eager (ms) | compiled (ms) | speed-up | first compiled call (s) | pays after (calls) | "
        "GFLOP / call | eager x floor | compiled x floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pays = "never" if r["break_even_calls"] is None else f"{r['break_even_calls']:.0f}"
        lines.append(
            f"| {r['model']} | {r['path']} | {1e3 * r['eager_s']:.1f} | {1e3 * r['compiled_s']:.1f} | "
            f"{r['speedup']:.2f}x | {r['first_compiled_call_s']:.1f} | {pays} | {r['flops'] / 1e9:.2f} | "
            f"{r['eager_x_floor']:.1f} | {r['compiled_x_floor']:.1f} |"
        )
    for model_name, prof in profiles.items():
        for mode, ops in prof.items():
            top = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in ops)
            lines.append(f"\nTop operators ({model_name}, student step, {mode}; share of self CPU time): {top}")
    if fkl:
        lines.append(
            f"\nOne fKL iteration, paper model, ipc 10, DSA on ({fkl['flops'] / 1e9:.0f} GFLOP, floor "
            f"{fkl['floor_s']:.2f} s): eager {fkl['eager_s']:.2f} s ({fkl['eager_s'] / fkl['floor_s']:.2f}x of the "
            f"floor; first {fkl['eager_first_s']:.2f} s), compiled {fkl['compiled_s']:.2f} s "
            f"({fkl['compiled_s'] / fkl['floor_s']:.2f}x of the floor; first, with compilation, "
            f"{fkl['compiled_first_s']:.1f} s): {fkl['eager_s'] / fkl['compiled_s']:.2f}x."
        )
    lines.append(
        f"\n{args.precision}, {torch.get_num_threads()} threads, probe: {probe_n}x{probe_n} matmul at "
        f"{rate / 1e9:.0f} GFLOP/s. Command: `python benchmarks/bench_compile.py --models {args.models} "
        f"--precision {args.precision} --repeats {args.repeats}{' --fkl' if args.fkl else ''}`; the first compiled "
        "call includes inductor's compilation from a cold cache (a fresh TORCHINDUCTOR_CACHE_DIR)."
    )
    write_results(
        args.name,
        {"machine": machine(), "args": vars(args), "rows": rows, "profiles": profiles, "fkl": fkl},
        "\n".join(lines) + "\n",
    )


if __name__ == "__main__":
    main()
