"""Table of the GPU runs of experiments/fkl_mcmc_images/gpu_variants.sh: fkl_mcmc with CD-k chains beside fkl,
persistent fkl_mcmc and Random; fkl_mcmc with learnt point weights; W+aug with DSA per image vs per batch. Each
row's distillation seconds per iteration are its own (summary.json), measured on the card that ran it.

    python experiments/fkl_mcmc_images/gpu_table.py [RUN ...] [--runs-dir runs/gpu-variants] [--name gpu_h100]
                                                    [--log LOG] [--note TEXT]

The runs are the RUN directories given, in that order, else every directory under ``--runs-dir`` that holds the
variant.json gpu_variants.sh writes (dataset, what the run varies), by name. The machine is machine.json in
``--runs-dir`` when the GPU script wrote it, else the card and torch lines of ``--log`` (the GPU script's output).
``--note`` adds a sentence about the runs (e.g. which calls or machines ran them). Writes
experiments/fkl_mcmc_images/results/NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import write_results  # noqa: E402

from pseudocoresets.report import collect_results  # noqa: E402

METRICS = ("accuracy", "nll", "ece", "brier", "agreement", "tv")


def machine_from(runs_dir: Path, log: Path | None) -> dict:
    stored = runs_dir / "machine.json"
    if stored.exists():
        return json.loads(stored.read_text())
    lines = log.read_text().splitlines() if log and log.exists() else []
    gpu = next((ln.split(":", 1)[1].split("(UUID")[0].strip() for ln in lines if ln.startswith("GPU 0:")), "?")
    torch_line = next((ln.split()[1] for ln in lines if ln.startswith("torch ")), "?")
    return {
        "cpu": "not recorded",
        "cores": "not recorded",
        "memory_gb": "not recorded",
        "gpu": gpu,
        "torch": torch_line,
        "cpu_flags": "not recorded",
        "python": "not recorded",
        "date": "not recorded",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", type=Path, help="run directories (default: those under --runs-dir)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs/gpu-variants"))
    p.add_argument("--name", default="gpu_h100")
    p.add_argument("--log", type=Path, default=None, help="the GPU script's output (default RUNS_DIR/log.txt)")
    p.add_argument("--note", default="", help="a sentence about the runs, appended to the notes")
    args = p.parse_args()
    found = (
        sorted(d for d in args.runs_dir.iterdir() if (d / "variant.json").exists()) if args.runs_dir.is_dir() else []
    )
    runs = args.runs or found
    if not runs:
        p.error(f"no run directories given and none with a variant.json under {args.runs_dir}")
    rows = []
    lines = [
        "| dataset | run | method | distill s/iteration | " + " | ".join(METRICS) + " |",
        "|---" * (4 + len(METRICS)) + "|",
    ]
    for run in runs:
        about_path = run / "variant.json"
        about = json.loads(about_path.read_text()) if about_path.exists() else {}
        dataset, label = about.get("dataset", "?"), about.get("varies", run.name)
        for row in sorted(collect_results(run), key=lambda r: r["method"]):
            if row["method"] == "full data":
                continue
            summary_path = run / "coresets" / f"{row['method']}-ipc10" / "summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
            spi = summary.get("seconds_per_iteration")
            rows.append(
                {
                    **row,
                    "run": run.name,
                    "label": label,
                    "dataset": dataset,
                    "seconds_per_iteration": spi,
                    "point_weights_range": summary.get("point_weights_range"),
                }
            )
            cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" if row.get(m) else "-" for m in METRICS]
            lines.append(
                f"| {dataset} | {label} | {row['method']} | {f'{spi:.3f}' if spi else '-'} | "
                + " | ".join(cells)
                + " |"
            )
    note = (
        "\n\nQuick preset (ConvNet width 32, 3 experts x 4 epochs, 150 iterations), ipc 10; HMC 4 chains x 40 "
        "iterations (20 burn-in, every 10th kept), 3 seeds; agreement / TV with each dataset's full-data reference "
        "posterior (cyclical SGHMC). Experts and references copied from the CPU agreement runs "
        "(experiments/agreement/agreement_images.sh). Command on the GPU: bash "
        "experiments/fkl_mcmc_images/gpu_variants.sh, then python experiments/fkl_mcmc_images/gpu_table.py. "
        "fkl_mcmc options beyond those named: chains 4 (persistent) or one per pi_x sample (x_samples 10, CD-k; "
        "chains and burn-in then unused), chain_steps 2, 5 leapfrog steps, pi_x = expert snapshots of the last "
        "epoch + noise 0.01." + (f" {args.note}" if args.note else "") + "\n"
    )
    ranges = [
        f"{r['label']}: {r['point_weights_range']['min']:.2f} to {r['point_weights_range']['max']:.2f} "
        f"(mean {r['point_weights_range']['mean']:.2f})"
        for r in rows
        if r.get("point_weights_range")
    ]
    if ranges:
        note += "\nLearnt point weights v after the last iteration: " + "; ".join(ranges) + ".\n"
    log = args.log or args.runs_dir / "log.txt"
    write_results(
        args.name, {"machine": machine_from(args.runs_dir, log), "rows": rows}, "\n".join(lines) + note, RESULTS
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
