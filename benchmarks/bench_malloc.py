"""Does keeping freed memory in the process (glibc mallopt) speed up the CPU hot paths?

glibc returns large freed blocks to the kernel (blocks above the mmap threshold are unmapped; the heap top is
trimmed), so every training step touches fresh pages again, and on a virtual machine each page fault is
expensive (in a torch.profiler run of the quick ConvNet's training step, not committed, zero-filling fresh
gradient buffers showed up among the top ops). ``pseudocoresets.utils.keep_freed_memory`` raises the mmap threshold to its maximum (32 MiB on 64-bit) and
stops trimming. Each variant runs in its own process (mallopt acts on the process), alternating, with the same
work: expert SGD steps (batch 256), HMC gradients on a 100-image coreset, scoring 10,000 test images.

    python benchmarks/bench_malloc.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_results  # noqa: E402

CHILD = r"""
import json, sys, time, torch
if sys.argv[1] == "keep":
    from pseudocoresets.utils import keep_freed_memory
    assert keep_freed_memory(), "mallopt refused the settings"
from pseudocoresets.models.build import ModelConfig, build_model
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
m = build_model(ModelConfig(width=int(sys.argv[3]), depth=3), (1, 28, 28), 10)
theta = m.init(0)
x, y = torch.randn(256, 1, 28, 28), torch.randint(10, (256,))
def grad(xb, yb):
    t = theta.clone().requires_grad_(True)
    torch.autograd.grad(m.nll(t, xb, yb), t)
def timed(f, n):
    for _ in range(3): f()
    t0 = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t0) / n
xt = torch.randn(10000, 1, 28, 28)
def score():
    with torch.no_grad():
        for s in range(0, 10000, 256): m(theta, xt[s:s + 256])
print(json.dumps({"expert step (batch 256) ms": 1000 * timed(lambda: grad(x, y), 30),
                  "coreset gradient (100 images) ms": 1000 * timed(lambda: grad(x[:100], y[:100]), 50),
                  "scoring 10k images s": timed(score, 3)}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=32, help="ConvNet width (32: the quick preset's)")
    args = p.parse_args()
    runs: dict[str, list[dict]] = {"default": [], "keep": []}
    for _ in range(args.rounds):
        for variant in runs:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, variant, str(args.threads), str(args.width)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    keys = list(runs["default"][0])
    med = {v: {k: statistics.median(r[k] for r in rs) for k in keys} for v, rs in runs.items()}
    lines = ["| measurement | glibc default | keep_freed_memory | speed-up |", "|---|---|---|---|"]
    for k in keys:
        lines.append(
            f"| {k} | {med['default'][k]:.3f} | {med['keep'][k]:.3f} | {med['default'][k] / med['keep'][k]:.2f}x |"
        )
    note = (
        f"\n\nMedians of {args.rounds} alternating rounds, one process per variant and round, "
        f"{args.threads} threads, ConvNet width {args.width} on 28x28 images. Command: python "
        f"benchmarks/bench_malloc.py --rounds {args.rounds} --threads {args.threads} --width {args.width}\n"
    )
    write_results(f"malloc_w{args.width}", {"machine": machine(), "runs": runs, "median": med}, "\n".join(lines) + note)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
