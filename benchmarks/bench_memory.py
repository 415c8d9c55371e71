"""Peak memory of each stage of the medium preset, eager against compiled (``--model.compile``).

Every stage runs as its own ``bpc`` process (the peak resident set size is that process's, read from the kernel
with ``os.wait4``; inductor's compile workers are children of it and their peaks count if larger), first with
``--no-model.compile --no-evaluate.compile``, then compiled. The stages are shortened (one expert of one epoch, 3
distillation iterations per method, 4 HMC iterations) so that the probe takes minutes; the thresholds that make
a short stage run eagerly (``COMPILE_MIN_CALLS``, ``COMPILE_MIN_FORWARDS``) are set to 0 in every process (the eager
runs are eager by their switches), so both modes execute the same stages with the same shapes as the full preset
and import the same modules. Distillation and evaluation use the
experts of an existing medium run (``--experts-from``), copied into each mode's run directory.

    python benchmarks/bench_memory.py --experts-from runs/medium-evaluation-cifar10jpeg/experts
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_results  # noqa: E402

PRELUDE = """
import sys
import pseudocoresets.evaluation.scoring as scoring
import pseudocoresets.models.compiling as compiling
compiling.COMPILE_MIN_CALLS = 0
scoring.COMPILE_MIN_FORWARDS = 0
from pseudocoresets.entry import main
sys.exit(main())
"""


def run_stage(args: list[str], compiled: bool) -> dict:
    """One ``bpc`` process; its wall seconds and peak resident set size (MiB)."""
    switches = [] if compiled else ["--no-model.compile", "--no-evaluate.compile"]
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PRELUDE, *args, *switches, "--quiet"], stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own resource usage, reaped here
        seconds = time.perf_counter() - start
        proc.returncode = status = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if status != 0:
            tail = err.read().decode(errors="replace").strip()[-400:]
            raise SystemExit(f"bench_memory: {' '.join(args[:1])} failed (exit {status}): {tail}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/cifar10-jpeg.tar.gz")
    p.add_argument("--experts-from", required=True, help="the experts folder of a finished medium-preset run")
    p.add_argument("--name", default="memory_medium_cpu")
    a = p.parse_args()
    experts = Path(a.experts_from)
    if not (experts / "manifest.json").is_file() or not (experts.parent / ".bpc.lock").is_file():
        p.error(f"{experts} is not the experts folder of a finished bpc run; give RUN/experts of a medium run")
    common = ["--preset", "medium", "--data.name", "cifar10", "--data.root", a.data]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("eager", "compiled"):
            out = Path(tmp) / mode
            run = ["--out", str(out / "run"), "--ipcs", "10", "--distill.iterations", "3"]
            probe = ["--out", str(out / "experts-probe"), "--experts.num_experts", "1", "--experts.epochs", "1"]
            probe += ["--distill.max_start_epoch", "0"]  # the config check wants experts longer than a start
            hmc = "--methods fkl --protocols hmc --hmc.iterations 4 --hmc.burn_in 2 --hmc.thin 1"
            stages = [("experts (1 expert x 1 epoch)", ["experts", *common, *probe])]
            for method in ("fkl", "wasserstein", "rkl"):
                stages.append((f"distill {method} (3 iterations)", ["distill", *common, *run, "--methods", method]))
            stages.append(
                (
                    "evaluate fkl, HMC (4 iterations, 1 seed)",
                    ["evaluate", *common, *run, *hmc.split(), "--evaluate.repeats", "1"],
                )
            )
            (out / "run").mkdir(parents=True)
            shutil.copytree(experts, out / "run" / "experts")
            shutil.copy(experts.parent / ".bpc.lock", out / "run")  # marks a directory bpc made (it writes only there)
            for stage, args in stages:
                result = run_stage(args, mode == "compiled")
                rows.append({"stage": stage, "mode": mode, **result})
                print(f"{stage:45s} {mode:9s} {result['seconds']:8.1f} s {result['peak_rss_mb']:9.1f} MiB", flush=True)
    by = {(r["stage"], r["mode"]): r for r in rows}
    lines = [
        "Peak resident set size of each stage's process (MiB) and its wall seconds (compilation included), "
        "medium preset, CIFAR-10 JPEG copy. Command: `python benchmarks/bench_memory.py --experts-from "
        f"{a.experts_from}`.",
        "",
        "| stage | eager MiB | compiled MiB | compiled / eager | eager s | compiled s |",
        "|---|---|---|---|---|---|",
    ]
    for stage in dict.fromkeys(r["stage"] for r in rows):
        e, c = by[(stage, "eager")], by[(stage, "compiled")]
        lines.append(
            f"| {stage} | {e['peak_rss_mb']:.0f} | {c['peak_rss_mb']:.0f} | "
            f"{c['peak_rss_mb'] / e['peak_rss_mb']:.2f} | {e['seconds']:.0f} | {c['seconds']:.0f} |"
        )
    write_results(a.name, {"machine": machine(), "args": vars(a), "rows": rows}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
