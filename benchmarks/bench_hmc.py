"""HMC speed: leapfrog steps per second on an ipc-10 coreset, and test-set prediction time per posterior sample.

    python benchmarks/bench_hmc.py [--models quick,paper] [--threads 1,2]

Each (model, threads) cell runs in a fresh process. Inputs are random tensors of the real shapes (speed does
not depend on pixel values): 100 coreset images (ipc 10, 10 classes), 10,000 test images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import machine, run_cell, write_results  # noqa: E402

MODELS = {"quick": dict(channels=1, size=28, width=32), "paper": dict(channels=3, size=32, width=128)}


def cell(model_name: str, threads: int, steps: int) -> dict:
    import torch

    from pseudocoresets.evaluation.scoring import predictive_probs
    from pseudocoresets.models import FlatModel, ModelConfig, build_convnet
    from pseudocoresets.samplers import CoresetPosterior, hmc

    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = MODELS[model_name]
    model = FlatModel(build_convnet(ModelConfig(width=spec["width"]), spec["channels"], spec["size"], 10)).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(100, spec["channels"], spec["size"], spec["size"], generator=g, device=device)
    y = torch.arange(100, device=device) % 10
    kernel = hmc.build(CoresetPosterior(model, x, y, 1.0, 1.0).potential_and_grad, steps, 1e-3)
    state = kernel.init(0.1 * torch.randn(model.num_params, generator=g, device=device))
    state, _ = kernel.step(state, g)  # warm-up
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        state, _ = kernel.step(state, g)
    leapfrog_per_s = reps * steps / (time.perf_counter() - t0)
    test = torch.randint(
        0,
        256,
        (10_000, spec["channels"], spec["size"], spec["size"]),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(1),
    ).to(device)

    def prepare(u8):
        return u8.float() / 127.5 - 1

    predictive_probs(model, state.position, test[:512], 256, prepare)  # warm-up
    t0 = time.perf_counter()
    predictive_probs(model, state.position, test, 256, prepare)
    per_sample = time.perf_counter() - t0
    return {
        "model": model_name,
        "threads": threads,
        "num_params": model.num_params,
        "leapfrog_steps_per_second": leapfrog_per_s,
        "seconds_per_sample_10k_test": per_sample,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="quick,paper")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--leapfrog", type=int, default=5)
    p.add_argument("--name", default="hmc")
    p.add_argument("--cell", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell:
        m, t = args.cell.split(":")
        print(json.dumps(cell(m, int(t), args.leapfrog)))
        return
    rows = []
    for model in args.models.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            r = run_cell(__file__, ["--cell", f"{model}:{threads}", "--leapfrog", str(args.leapfrog)])
            r.update(model=model, threads=threads)
            rows.append(r)
            print(json.dumps(r), flush=True)
    lines = [
        "| model | params | threads | leapfrog steps / s (100 images) | s / posterior sample (10k test) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | | {r['threads']} | error: {r['error']} | |")
        else:
            lines.append(
                f"| {r['model']} | {r['num_params']} | {r['threads']} | {r['leapfrog_steps_per_second']:.1f} | "
                f"{r['seconds_per_sample_10k_test']:.2f} |"
            )
    write_results(args.name, {"machine": machine(), "rows": rows, "args": vars(args)}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
