"""Where one distillation iteration spends its time: torch.profiler's operator table (self time), per precision.

    python benchmarks/profile_iteration.py [--model paper] [--method fkl] [--ipc 10] [--precision bf16]
                                           [--name profile_fkl_bf16]

Same set-up as bench_precision.py (random tensors of the real shapes, DSA on, official ipc-10 values), one
warm-up iteration, then one profiled iteration. Writes the top operators by self time (JSON + markdown).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import machine, synthetic_context as setup, write_results  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="paper")
    p.add_argument("--method", default="fkl")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--name", default="")
    args = p.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from pseudocoresets.distill import DistillConfig, distill
    from pseudocoresets.objectives import OBJECTIVES

    ctx, device, _ = setup(args.model, args.precision, augment=True)
    cfg = DistillConfig(
        method=args.method,
        ipc=args.ipc,
        iterations=1,
        max_start_epoch=2,
        expert_epochs=1,
        lr_images=1e-3 if args.method != "dc" else 0.1,
        augment=True,
    )
    own = OBJECTIVES[args.method].Config()
    init, labels = ctx.real_x[: 10 * args.ipc].clone(), ctx.real_y[: 10 * args.ipc].clone()
    distill(cfg, own, ctx, init, labels, quiet=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        distill(cfg, own, ctx, init, labels, quiet=True)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events)
    rows = [
        {"op": e.key, "self_ms": getattr(e, key) / 1e3, "share": getattr(e, key) / total, "calls": e.count}
        for e in events[: args.top]
    ]
    lines = [
        f"One {args.method} iteration, ipc {args.ipc}, {args.model} model, {args.precision}, DSA on, "
        f"{torch.get_num_threads()} threads; total self time {total / 1e6:.2f} s.",
        "",
        "| operator | self time (ms) | share | calls |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['op']} | {r['self_ms']:.0f} | {100 * r['share']:.1f}% | {r['calls']} |" for r in rows]
    name = args.name or f"profile_{args.method}_{args.precision}"
    write_results(
        name,
        {"machine": machine(), "rows": rows, "total_self_seconds": total / 1e6, "args": vars(args)},
        "\n".join(lines) + "\n",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
