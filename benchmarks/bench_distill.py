"""Time per distillation iteration and peak memory, per objective x ipc x model.

    python benchmarks/bench_distill.py [--models quick,paper] [--methods fkl,wasserstein,rkl,dc] [--ipcs 1,10,20]

``wasserstein@ckpt5`` is BPC-W with the unroll checkpointed every 5 steps (same gradient, less memory).
Each cell's address space is capped at 20 GB so that an over-budget cell fails alone (reported as an error).

Each cell runs in its own process: ``warmup`` iterations, then ``iterations`` timed ones (the paper
reports the slowest of three 100-iteration means; on this CPU we time fewer and say so). Memory is the
growth of peak resident memory (CPU) or the peak CUDA allocation during the iterations (warm-up
included), over what the process held after loading data, model and experts and one trivial fKL
iteration (which takes the libraries' one-off buffers out of the count). The data and expert trajectories are random tensors of the real shapes:
the cost of an iteration does not depend on their values. Settings are the official ipc-10 ones (L_u = 30,
S = 30, real batch 1000 for rkl, DC loops (10, 50)), as in the paper's Figure 3 (L_u = 30 fixed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import machine, peak_rss_mb, run_cell, synthetic_context, write_results  # noqa: E402

MEMORY_CAP_GB = 20.0


def cell(model_name: str, method: str, ipc: int, iterations: int, warmup: int, threads: int) -> dict:
    import torch

    import resource

    from pseudocoresets.distill import DistillConfig, distill
    from pseudocoresets.objectives import OBJECTIVES

    # A cell may not take the machine down: cap its address space (an over-budget cell reports an error row).
    cap = int(MEMORY_CAP_GB * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if threads:
        torch.set_num_threads(threads)
    method, _, ckpt = method.partition("@ckpt")
    ctx, device, _ = synthetic_context(model_name)
    model, real_x, real_y = ctx.model, ctx.real_x, ctx.real_y
    cfg = DistillConfig(
        method=method,
        ipc=ipc,
        iterations=warmup,
        max_start_epoch=2,
        expert_epochs=1,
        lr_images=1e-3 if method != "dc" else 0.1,
    )
    own = OBJECTIVES[method].Config(**({"checkpoint_every": int(ckpt)} if ckpt else {}))
    init = real_x[: 10 * ipc].clone()
    labels = real_y[: 10 * ipc].clone()
    # initialise the libraries' one-off buffers with a trivial iteration, so they are not counted
    tiny = DistillConfig(
        method="fkl", ipc=1, iterations=1, student_steps=1, max_start_epoch=2, expert_epochs=1, lr_images=1e-3
    )
    distill(tiny, OBJECTIVES["fkl"].Config(num_samples=1), ctx, real_x[:10].clone(), real_y[:10].clone(), quiet=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = peak_rss_mb()
    distill(cfg, own, ctx, init, labels, quiet=True)  # warm-up iterations (their memory counts, their time not)
    cfg.iterations = iterations
    t0 = time.perf_counter()
    distill(cfg, own, ctx, init, labels, quiet=True)
    seconds = (time.perf_counter() - t0) / iterations
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_mb()
    return {
        "model": model_name,
        "method": method,
        "ipc": ipc,
        "seconds_per_iteration": seconds,
        "memory_mb": max(peak - base, 0.0),
        "memory_kind": "cuda peak allocated" if device.type == "cuda" else "growth of peak RSS over the set-up",
        "iterations_timed": iterations,
        "threads": torch.get_num_threads(),
        "num_params": model.num_params,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="quick,paper")
    p.add_argument("--methods", default="fkl,wasserstein,rkl,dc")
    p.add_argument("--ipcs", default="1,10,20")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (0 = default)")
    p.add_argument("--name", default="distill")
    p.add_argument("--cell", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell:
        m, method, ipc = args.cell.split(":")
        print(json.dumps(cell(m, method, int(ipc), args.iterations, args.warmup, args.threads)))
        return
    rows = []
    for model in args.models.split(","):
        for ipc in [int(i) for i in args.ipcs.split(",")]:
            for method in args.methods.split(","):
                r = run_cell(
                    __file__,
                    [
                        "--cell",
                        f"{model}:{method}:{ipc}",
                        "--iterations",
                        str(args.iterations),
                        "--warmup",
                        str(args.warmup),
                        "--threads",
                        str(args.threads),
                    ],
                )
                r.update(model=model, method=method, ipc=ipc)
                rows.append(r)
                print(json.dumps(r), flush=True)
    lines = [
        "| model | ipc | method | s / iteration | memory (MB) | vs fkl: time | vs fkl: memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['ipc']} | {r['method']} | error: {r['error']} | | | |")
            continue
        ref = next(
            (
                q
                for q in rows
                if q["model"] == r["model"] and q["ipc"] == r["ipc"] and q["method"] == "fkl" and "error" not in q
            ),
            None,
        )
        rt = f"{r['seconds_per_iteration'] / ref['seconds_per_iteration']:.2f}x" if ref else ""
        rm = f"{r['memory_mb'] / max(ref['memory_mb'], 1e-9):.2f}x" if ref and ref["memory_mb"] > 0 else ""
        lines.append(
            f"| {r['model']} | {r['ipc']} | {r['method']} | {r['seconds_per_iteration']:.3f} | "
            f"{r['memory_mb']:.0f} | {rt} | {rm} |"
        )
    note = (
        "\nMemory: growth of the process's peak resident memory during the iterations, warm-up included (CPU), or "
        f"peak CUDA allocation (GPU). {args.iterations} timed iteration(s) after {args.warmup} warm-up per cell, each cell in "
        "a fresh process. Settings: official ipc-10 values (L_u = 30, S = 30, rkl real batch 1000, dc loops 10/50; "
        "dc's time is per image update).\n"
    )
    write_results(args.name, {"machine": machine(), "rows": rows, "args": vars(args)}, "\n".join(lines) + "\n" + note)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
