"""Table of the GPU runs of benchmarks/gpu_issue8.sh (runs/g8-*): fkl_mcmc with CD-k chains beside fkl, persistent
fkl_mcmc and Random; W+aug with DSA per image vs per batch. Each row's distillation seconds per iteration are its
own (summary.json), all on the one card of that session.

    python benchmarks/gpu_issue8_table.py [--name gpu_issue8_h100] [--log LOG]

The machine is runs/g8-machine.json when the GPU script wrote it, else the card and torch lines of its log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_results  # noqa: E402

from pseudocoresets.report import collect_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = {  # run directory: (dataset, what it varies)
    "g8-base-fmnist": ("fashion-mnist", "preset settings (fkl_mcmc: persistent chains, lr_images 100)"),
    "g8-cd10-fmnist": ("fashion-mnist", "fkl_mcmc chain_start x (CD-k), lr_images 10"),
    "g8-cd100-fmnist": ("fashion-mnist", "fkl_mcmc chain_start x (CD-k), lr_images 100"),
    "g8-cd10-cifar": ("cifar10 (JPEG)", "fkl_mcmc chain_start x (CD-k), lr_images 10"),
    "g8-lw10-fmnist": ("fashion-mnist", "fkl_mcmc persistent chains, learnt point weights, lr_images 10"),
    "g8-cdlw10-fmnist": ("fashion-mnist", "fkl_mcmc chain_start x (CD-k), learnt point weights, lr_images 10"),
    "g8-cdk5-fmnist": ("fashion-mnist", "fkl_mcmc chain_start x (CD-k), k = 5 transitions, lr_images 10"),
    "g8-dsa-image-fmnist": ("fashion-mnist", "DSA drawn per image (default)"),
    "g8-dsa-batch-fmnist": ("fashion-mnist", "DSA drawn once per batch"),
}
METRICS = ("accuracy", "nll", "ece", "brier", "agreement", "tv")


def machine_from(log: Path) -> dict:
    stored = ROOT / "runs/g8-machine.json"
    if stored.exists():
        return json.loads(stored.read_text())
    lines = log.read_text().splitlines()
    gpu = next((ln.split(":", 1)[1].split("(UUID")[0].strip() for ln in lines if ln.startswith("GPU 0:")), "?")
    torch_line = next((ln.split()[1] for ln in lines if ln.startswith("torch ")), "?")
    return {"cpu": "not recorded", "cores": "not recorded", "memory_gb": "not recorded", "gpu": gpu,
            "torch": torch_line, "cpu_flags": "not recorded", "python": "not recorded", "date": "not recorded"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="gpu_issue8_h100")
    p.add_argument("--log", default=str(ROOT / "runs/g8-log.txt"), help="the GPU script's output")
    args = p.parse_args()
    rows = []
    lines = ["| dataset | run | method | distill s/iteration | " + " | ".join(METRICS) + " |", "|---" * (4 + len(METRICS)) + "|"]
    for name, (dataset, label) in RUNS.items():
        run = ROOT / "runs" / name
        if not run.exists():
            continue
        for row in sorted(collect_results(run), key=lambda r: r["method"]):
            if row["method"] == "full data":
                continue
            summary_path = run / "coresets" / f"{row['method']}-ipc10" / "summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
            spi = summary.get("seconds_per_iteration")
            rows.append({**row, "run": name, "label": label, "dataset": dataset, "seconds_per_iteration": spi,
                         "point_weights_range": summary.get("point_weights_range")})
            cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" if row.get(m) else "-" for m in METRICS]
            lines.append(f"| {dataset} | {label} | {row['method']} | {f'{spi:.3f}' if spi else '-'} | "
                         + " | ".join(cells) + " |")
    note = ("\n\nQuick preset (ConvNet width 32, 3 experts x 4 epochs, 150 iterations), ipc 10; HMC 4 chains x 40 "
            "iterations (20 burn-in, every 10th kept), 3 seeds; agreement / TV with each dataset's full-data reference "
            "posterior (cyclical SGHMC). Experts and references copied from the CPU agreement runs "
            "(benchmarks/agreement_images.sh). Command on the GPU: bash benchmarks/gpu_issue8.sh, then here "
            "python benchmarks/gpu_issue8_table.py. fkl_mcmc options beyond those named: chains 4 (persistent) or "
            "one per pi_x sample (x_samples 10, CD-k; chains and burn-in then unused), chain_steps 2, 5 leapfrog steps, pi_x = expert snapshots of "
            "the last epoch + noise 0.01. Two calls on two H100 machines of one kind (the second, learnt point "
            "weights, started fresh; its description is the machine line, the first machine's CPU was not recorded; "
            "seconds per iteration compare within one call only); a third variant of that call (CD-k with "
            "k = 5 transitions) outran its 95-second limit and is not reported.\n")
    ranges = [f"{r['label']}: {r['point_weights_range']['min']:.2f} to {r['point_weights_range']['max']:.2f} "
              f"(mean {r['point_weights_range']['mean']:.2f})" for r in rows if r.get("point_weights_range")]
    if ranges:
        note += "\nLearnt point weights v after the last iteration: " + "; ".join(ranges) + ".\n"
    write_results(args.name, {"machine": machine_from(Path(args.log)), "rows": rows}, "\n".join(lines) + note)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
