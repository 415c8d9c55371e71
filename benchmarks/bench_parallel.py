"""Experts and distillation with 1 vs 2 processes (torchrun, gloo, 1 thread each) on this machine.

    python benchmarks/bench_parallel.py [--data-root /usr/share/datasets/fashion-mnist]

Fashion-MNIST, the quick preset's ConvNet: (a) ``bpc experts`` with 2 experts x 1 epoch (the experts are split
between the ranks), (b) ``bpc distill`` of fKL at ipc 10 with S = 10 sample terms for 10 iterations (the terms
are split and the pixel gradients all-reduced). Wall time of the whole command (start-up, data loading and
writing included) and, for distillation, the stage's own time and the time rank 0 spent in the all-reduces
(waiting for the other rank included) = the communication share. Each variant runs in a fresh directory.
Writes benchmarks/results/parallel.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import machine, write_results  # noqa: E402

COMMON = ["--preset", "quick", "--quiet", "--threads", "1", "--distill.max_start_epoch", "0"]
STAGES = {
    "experts": ["experts", "--experts.num_experts", "2", "--experts.epochs", "1"],
    "distill": [
        "distill",
        "--methods",
        "fkl",
        "--ipcs",
        "10",
        "--fkl.num_samples",
        "10",
        "--distill.iterations",
        "10",
        "--experts.num_experts",
        "2",
        "--experts.epochs",
        "1",
    ],
}


def run(nproc: int, stage: list[str], out: Path, data_root: str) -> float:
    cli = ["-m", "pseudocoresets.cli", *stage, "--out", str(out), "--data.root", data_root, *COMMON]
    cmd = (
        [sys.executable, *cli]
        if nproc == 1
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *cli]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BPC_QUIET": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    rows = []
    for nproc in (1, 2):
        out = work / f"p{nproc}"
        wall_e = run(nproc, STAGES["experts"], out, args.data_root)
        rows.append({"stage": "experts (2 x 1 epoch)", "processes": nproc, "wall_seconds": wall_e})
        wall_d = run(nproc, STAGES["distill"], out, args.data_root)
        manifest = json.loads((out / "coresets/fkl-ipc10/manifest.json").read_text())
        rows.append(
            {
                "stage": "distill fKL ipc 10, S 10, 10 iterations",
                "processes": nproc,
                "wall_seconds": wall_d,
                "stage_seconds": manifest["timings_seconds"]["distill"],
                "communication_seconds": manifest.get("communication_seconds", 0.0),
            }
        )
        print(json.dumps(rows[-2:]), flush=True)
    lines = [
        "| stage | processes | wall (s) | speed-up | distill loop (s) | in all-reduce (s) | communication share |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = next(q for q in rows if q["stage"] == r["stage"] and q["processes"] == 1)
        loop = f"{r['stage_seconds']:.1f}" if "stage_seconds" in r else ""
        comm = f"{r['communication_seconds']:.2f}" if "stage_seconds" in r else ""
        share = f"{100 * r['communication_seconds'] / r['stage_seconds']:.1f}%" if "stage_seconds" in r else ""
        lines.append(
            f"| {r['stage']} | {r['processes']} | {r['wall_seconds']:.1f} | "
            f"{base['wall_seconds'] / r['wall_seconds']:.2f}x | {loop} | {comm} | {share} |"
        )
    note = (
        "\nEach process uses 1 torch thread (OMP_NUM_THREADS=1); the machine has 2 cores. Wall time includes "
        "start-up and data loading, which are not split. The all-reduce time includes waiting for the slower "
        "rank.\n"
    )
    write_results("parallel", {"machine": machine(), "rows": rows}, "\n".join(lines) + "\n" + note)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
