"""Kill a real `bpc run` with SIGKILL at random times, resume it, and check the artifacts.

    python checks/kill_resume.py [--kills 20] [--seed 0]

A small Fashion-MNIST-shaped synthetic dataset (class-dependent stripes), 2 experts x 8 epochs, fKL for 40
iterations with a checkpoint every 4, HMC evaluation. One uninterrupted run gives the reference artifacts and
its wall time T; then each trial starts a fresh run directory, SIGKILLs the process at a uniform random time
in (0.3 s, 0.9 T) (halved and redone if the run finished first), notes which stage was running, re-runs to completion (possibly after several kills: each trial kills
once), and compares every tensor, the tensor files' metadata and the results' summaries with the reference.
It also checks that no temporary or partial file is left and every JSON file parses.
Writes checks/results/kill_resume.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"

from common import machine, write_results  # noqa: E402

ARGS = [
    "--preset",
    "quick",
    "--model.width",
    "4",
    "--experts.num_experts",
    "2",
    "--experts.epochs",
    "8",
    "--experts.batch_size",
    "64",
    "--distill.iterations",
    "40",
    "--distill.checkpoint_every",
    "4",
    "--distill.max_start_epoch",
    "4",
    "--distill.student_steps",
    "2",
    "--fkl.num_samples",
    "2",
    "--distill.lr_images",
    "10",
    "--ipcs",
    "2",
    "--methods",
    "random,fkl",
    "--hmc.chains",
    "2",
    "--hmc.iterations",
    "4",
    "--hmc.burn_in",
    "2",
    "--hmc.thin",
    "1",
    # the fixed budget these results were measured with (the quick preset now settles)
    "--hmc.settle_rhat",
    "0",
    "--evaluate.repeats",
    "2",
    "--quiet",
    "--threads",
    "1",
]


def write_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 300), ("t10k", 100)):
        y = (np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 * c : 2 * c + 6, 4:24] = 220
        for name, arr in ((f"{prefix}-images-idx3-ubyte.gz", x), (f"{prefix}-labels-idx1-ubyte.gz", y)):
            header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(k).to_bytes(4, "big") for k in arr.shape)
            (root / name).write_bytes(gzip.compress(header + arr.tobytes()))


def command(out: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "pseudocoresets.cli", "run", "--out", str(out), "--data.root", str(data), *ARGS]


def artifacts(out: Path) -> dict:
    from safetensors import safe_open

    files = {}
    for p in sorted(out.rglob("*.safetensors")):
        with safe_open(str(p), framework="pt") as f:
            files[str(p.relative_to(out))] = (f.metadata(), {k: f.get_tensor(k).numpy().tobytes() for k in f.keys()})
    for p in sorted(out.rglob("results.json")):
        files[str(p.relative_to(out))] = json.dumps(json.loads(p.read_text())["summary"], sort_keys=True)
    return files


def stage_at(out: Path) -> str:
    """The stage a killed run was in, from what it had written."""
    if not (out / "experts/manifest.json").exists():
        return "experts"
    if not list(out.glob("coresets/fkl-ipc2/manifest.json")):
        return "distill"
    return "evaluate/report"


def problems(out: Path) -> list[str]:
    found = [f"temporary file {p}" for p in out.rglob("*.tmp")]
    found += [f"partial file {p}" for p in out.rglob("*.partial.*")]
    found += [f"checkpoint left {p}" for p in out.rglob("checkpoint.safetensors")]
    for p in out.rglob("*.json"):
        try:
            json.loads(p.read_text())
        except ValueError:
            found.append(f"unparsable {p}")
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    env = {**os.environ, "BPC_QUIET": "1"}
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    data = work / "data"
    write_data(data)
    t0 = time.perf_counter()
    subprocess.run(command(work / "reference", data), check=True, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    reference = artifacts(work / "reference")
    trials = []
    for k in range(args.kills):
        out = work / f"trial{k:02d}"
        delay = rng.uniform(0.3, 0.9 * wall)
        for attempt in range(3):  # a run that finished before its kill time is redone with an earlier kill
            proc = subprocess.Popen(command(out, data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            if killed:
                break
            subprocess.run(["rm", "-rf", str(out)], check=True)
            delay /= 2
        stage = stage_at(out) if killed else "finished before the kill"
        rerun = subprocess.run(command(out, data), env=env, capture_output=True, text=True)
        same = rerun.returncode == 0 and artifacts(out) == reference
        trial = {
            "trial": k,
            "delay_s": round(delay, 2),
            "killed": killed,
            "stage": stage,
            "rerun_exit": rerun.returncode,
            "identical": same,
            "problems": problems(out),
        }
        trials.append(trial)
        print(json.dumps(trial), flush=True)
    ok = sum(t["identical"] and not t["problems"] for t in trials)
    killed = sum(t["killed"] for t in trials)
    lines = [
        f"{ok}/{len(trials)} resumed runs identical to the uninterrupted run with nothing left behind "
        f"({killed} of the {len(trials)} were killed mid-run; uninterrupted wall time {wall:.1f} s).",
        "",
        "| trial | kill after (s) | stage when killed | re-run exit | identical | problems |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t['trial']} | {t['delay_s']} | {t['stage']} | {t['rerun_exit']} | {t['identical']} | "
        f"{'; '.join(t['problems']) or '-'} |"
        for t in trials
    ]
    write_results(
        "kill_resume",
        {"machine": machine(), "trials": trials, "identical": ok, "wall_s": wall, "args": vars(args)},
        "\n".join(lines) + "\n",
        RESULTS,
    )
    print("\n".join(lines[:1]))


if __name__ == "__main__":
    main()
