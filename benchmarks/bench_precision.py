"""fp32 vs bf16 (``--precision``), against the FLOP floor measured in the same process.

    python benchmarks/bench_precision.py [--model paper|quick] [--methods fkl,rkl,wasserstein,dc] [--ipcs 10]
                                         [--iterations 2] [--warmup 1] [--name precision_cpu]

Per objective x ipc x precision (each cell in a fresh process): seconds per distillation iteration with DSA on
(the official setting; official ipc-10 values: L_u 30, S 30, rkl real batch 1000, dc loops 10/50, dc's time is
per image update), the FLOPs of one iteration counted by torch.utils.flop_counter (convolutions and matrix
products), the floor = FLOPs / the rate of a matrix-product probe in the same precision, measured in the same
process, and "x of floor" = seconds / floor. HMC cells: leapfrog steps per second on an ipc-10 coreset
(100 images) and seconds per scored posterior sample on 10,000 test images, per precision, plus scoring 8
samples at once (torch.func.vmap over the parameter vectors) against one at a time. Inputs are random tensors
of the real shapes (the cost does not depend on pixel values). The CPU's model and flags are recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import MODELS, machine, run_cell, synthetic_context as setup, write_results  # noqa: E402


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device, dtype, max_n: int) -> tuple[float, int]:
    """(FLOP/s, n) of an n x n matrix product in ``dtype``, best of 5 after a warm-up; n doubles from 256 up to
    ``max_n`` while one product takes under 50 ms (a CPU without bf16 units emulates it hundreds of times slower)."""
    import torch

    n = 256
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b
        best = float("inf")
        for _ in range(5):
            sync(device)
            t0 = time.perf_counter()
            a @ b
            sync(device)
            best = min(best, time.perf_counter() - t0)
        if n >= max_n or best > 0.05:
            return 2 * n**3 / best, n
        n *= 2


def distill_cell(model_name: str, method: str, ipc: int, precision: str, iterations: int, warmup: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pseudocoresets.distill import DistillConfig, distill
    from pseudocoresets.objectives import OBJECTIVES

    ctx, device, _ = setup(model_name, precision, augment=True)
    rate, probe_n = matmul_rate(
        device, torch.bfloat16 if precision == "bf16" else torch.float32, 8192 if device.type == "cuda" else 2048
    )
    cfg = DistillConfig(
        method=method,
        ipc=ipc,
        iterations=1,
        max_start_epoch=2,
        expert_epochs=1,
        lr_images=1e-3 if method != "dc" else 0.1,
        augment=True,
    )
    own = OBJECTIVES[method].Config()
    init, labels = ctx.real_x[: 10 * ipc].clone(), ctx.real_y[: 10 * ipc].clone()
    with FlopCounterMode(display=False) as counter:
        distill(cfg, own, ctx, init, labels, quiet=True)
    flops = counter.get_total_flops()
    cfg.iterations = warmup
    distill(cfg, own, ctx, init, labels, quiet=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cfg.iterations = iterations
    sync(device)
    t0 = time.perf_counter()
    distill(cfg, own, ctx, init, labels, quiet=True)
    sync(device)
    seconds = (time.perf_counter() - t0) / iterations
    floor = flops / rate
    out = {
        "kind": "distill",
        "model": model_name,
        "method": method,
        "ipc": ipc,
        "precision": precision,
        "seconds_per_iteration": seconds,
        "flops_per_iteration": flops,
        "probe_flops_per_second": rate,
        "probe": f"{probe_n}x{probe_n} matmul",
        "floor_seconds": floor,
        "x_of_floor": seconds / floor,
        "iterations_timed": iterations,
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        out["cuda_peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def hmc_cell(model_name: str, precision: str, leapfrog: int) -> dict:
    import torch

    from pseudocoresets.evaluation.scoring import predictive_average
    from pseudocoresets.samplers import CoresetPosterior, hmc

    ctx, device, spec = setup(model_name, precision, augment=False)
    model = ctx.model
    x, y = ctx.real_x[:100], ctx.real_y[:100]
    posterior = CoresetPosterior(model, x, y, 1.0)
    kernel = hmc.build(posterior.potential_and_grad, leapfrog, 1e-3, posterior.metropolis_potential)
    g = torch.Generator(device=device).manual_seed(0)
    state = kernel.init(0.1 * torch.randn(model.num_params, generator=g, device=device))
    state, _ = kernel.step(state, g)
    reps = 3
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        state, _ = kernel.step(state, g)
    sync(device)
    leapfrog_per_s = reps * leapfrog / (time.perf_counter() - t0)
    test = torch.randint(
        0,
        256,
        (10_000, spec["channels"], spec["size"], spec["size"]),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(1),
    ).to(device)

    def prepare(u8):
        return u8.float() / 127.5 - 1

    thetas = state.position + 0.01 * torch.randn(8, model.num_params, generator=g, device=device)
    predictive_average(model, thetas[:2], test[:512], 256, prepare)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    one_at_a_time = predictive_average(model, thetas, test, 500, prepare)
    sync(device)
    per_sample = (time.perf_counter() - t0) / len(thetas)
    with torch.no_grad():  # vmap over the 8 parameter vectors on each test batch
        model.batched(thetas, prepare(test[:64]))
        sync(device)
        t0 = time.perf_counter()
        chunks = []
        for i in range(0, len(test), 500):
            probs = torch.softmax(model.batched(thetas, prepare(test[i : i + 500])), dim=-1)
            chunks.append(probs.mean(0))
        batched = torch.cat(chunks)
        sync(device)
    per_sample_batched = (time.perf_counter() - t0) / len(thetas)
    return {
        "kind": "hmc",
        "model": model_name,
        "precision": precision,
        "num_params": model.num_params,
        "leapfrog_steps_per_second": leapfrog_per_s,
        "seconds_per_scored_sample": per_sample,
        "seconds_per_scored_sample_vmap8": per_sample_batched,
        "vmap_max_abs_diff": float((batched - one_at_a_time).abs().max()),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="paper", choices=sorted(MODELS))
    p.add_argument("--methods", default="fkl,rkl,wasserstein,dc")
    p.add_argument("--ipcs", default="10")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--leapfrog", type=int, default=5)
    p.add_argument("--no-hmc", action="store_true")
    p.add_argument("--name", default="precision_cpu")
    p.add_argument("--cell", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell:
        parts = args.cell.split(":")
        if parts[0] == "hmc":
            print(json.dumps(hmc_cell(parts[1], parts[2], args.leapfrog)))
        else:
            print(json.dumps(distill_cell(parts[1], parts[2], int(parts[3]), parts[4], args.iterations, args.warmup)))
        return
    precisions = args.precisions.split(",")
    cells = [
        f"distill:{args.model}:{m}:{ipc}:{pr}"
        for ipc in args.ipcs.split(",")
        for m in args.methods.split(",")
        for pr in precisions
        if m
    ]
    if not args.no_hmc:
        cells += [f"hmc:{args.model}:{pr}" for pr in precisions]
    rows = []
    for c in cells:
        r = run_cell(
            __file__,
            [
                "--cell",
                c,
                "--iterations",
                str(args.iterations),
                "--warmup",
                str(args.warmup),
                "--leapfrog",
                str(args.leapfrog),
            ],
            timeout=3000,
        )
        r.setdefault("cell", c)
        rows.append(r)
        print(json.dumps(r), flush=True)
    write_results(args.name, {"machine": machine(), "rows": rows, "args": vars(args)}, markdown(rows, args))


def markdown(rows: list[dict], args) -> str:
    lines = [
        "| objective | ipc | precision | s / iteration | vs fp32 | GFLOP / iteration | probe GFLOP/s | floor (s) | "
        "x of floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fp32_row(r):
        return next(
            (
                q
                for q in rows
                if q.get("kind") == r.get("kind")
                and q.get("method") == r.get("method")
                and q.get("ipc") == r.get("ipc")
                and q.get("precision") == "fp32"
                and "error" not in q
            ),
            None,
        )

    for r in rows:
        if r.get("kind") != "distill":
            if "error" in r and not r["cell"].startswith("hmc"):
                lines.append(f"| {r['cell']} | | | error: {r['error']} | | | | | |")
            continue
        base = fp32_row(r)
        speed = f"{base['seconds_per_iteration'] / r['seconds_per_iteration']:.2f}x" if base else ""
        lines.append(
            f"| {r['method']} | {r['ipc']} | {r['precision']} | {r['seconds_per_iteration']:.3f} | {speed} | "
            f"{r['flops_per_iteration'] / 1e9:.0f} | {r['probe_flops_per_second'] / 1e9:.0f} | "
            f"{r['floor_seconds']:.3f} | {r['x_of_floor']:.1f} |"
        )
    lines += [
        "",
        "| HMC, precision | leapfrog steps / s (100 images) | s / scored sample (10k test) | "
        "same, 8 samples by vmap | max prob. difference |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("kind") == "hmc":
            lines.append(
                f"| {r['precision']} | {r['leapfrog_steps_per_second']:.2f} | "
                f"{r['seconds_per_scored_sample']:.3f} | {r['seconds_per_scored_sample_vmap8']:.3f} | "
                f"{r['vmap_max_abs_diff']:.1e} |"
            )
        elif "error" in r and r["cell"].startswith("hmc"):
            lines.append(f"| {r['cell']} | error: {r['error']} | | | |")
    lines.append(
        f"\nModel: {args.model} ConvNet; DSA on; {args.iterations} timed iteration(s) after {args.warmup} "
        "warm-up per cell, each cell in a fresh process. Floor: the iteration's counted FLOPs at the rate of "
        "the matrix-product probe of that precision in the same process (convolutions reach less than "
        "that, so the floor is optimistic). bf16 = autocast over fp32 parameters (rkl's sample terms stay "
        "fp32, see objectives/rkl.py).\n"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
