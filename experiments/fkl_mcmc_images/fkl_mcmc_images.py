"""fkl_mcmc beside the paper's fkl (and Random) on real images, at equal distillation wall time.

The quick preset (ConvNet width 32, 3 experts x 4 epochs, ipc 10, HMC 4 chains x 40 iterations, 3 seeds) learns
fkl for its 150 iterations; fkl_mcmc then gets as many iterations as fit in the same measured wall time
(its seconds per iteration measured in the same process, with nothing else running), from the same experts.
Every coreset is evaluated with the same HMC protocol on the full test split.

    python experiments/fkl_mcmc_images/fkl_mcmc_images.py fmnist
    python experiments/fkl_mcmc_images/fkl_mcmc_images.py cifar     # the CIFAR-10 JPEG copy in ../shared/data

A variant of fkl_mcmc's settings (``--set KEY=VALUE``, applied to the fkl_mcmc runs only) is named by ``--tag``:
its runs and results (fkl_mcmc_DATASET-TAG) sit beside the default's and share its Random and fkl coresets.

    python experiments/fkl_mcmc_images/fkl_mcmc_images.py fmnist --tag cd-lr10 \\
        --set fkl_mcmc.chain_start=x --set distill.lr_images=10

Writes experiments/fkl_mcmc_images/results/fkl_mcmc_DATASET[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.config import apply_overrides, preset  # noqa: E402
from pseudocoresets.pipeline import Workspace, run_distill, run_evaluate, run_experts  # noqa: E402
from pseudocoresets.report import collect_results  # noqa: E402

DATA = {"fmnist": {}, "cifar": {"data.name": "cifar10", "data.root": "../shared/data/cifar10-jpeg.tar.gz"}}
CHAINS = {
    "fkl_mcmc.chains": 4,
    "fkl_mcmc.chain_steps": 2,
    "fkl_mcmc.chain_leapfrog": 5,
    "fkl_mcmc.chain_burn_in": 20,
    "fkl_mcmc.x_samples": 10,
    "fkl_mcmc.x_epochs": 2,
}


def workspace(dataset: str, out: Path, **extra) -> Workspace:
    # the fixed budget these results were measured with (the quick preset now settles)
    cfg = apply_overrides(preset("quick"), {**DATA[dataset], **CHAINS, "ipcs": [10], "hmc.settle_rhat": 0, **extra})
    return Workspace(cfg, out, torch.device("cpu"), quiet=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(DATA))
    p.add_argument("--probe", type=int, default=5, help="fkl_mcmc iterations timed to set its budget")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an fkl_mcmc-only override")
    p.add_argument("--tag", default="", help="names the variant's runs and results (required with --set)")
    p.add_argument("--no-weight-nm", action="store_true", help="skip the evaluation at w = N/M")
    p.add_argument("--base", default="", help="runs directory (default runs/fkl-mcmc-DATASET)")
    args = p.parse_args()
    if args.set and not args.tag:
        p.error("--set needs --tag (a variant must not reuse the default's fkl_mcmc runs)")
    if any("=" not in item for item in args.set):
        p.error("--set takes KEY=VALUE, e.g. --set fkl_mcmc.chain_start=x")
    sets = dict(item.split("=", 1) for item in args.set)
    if "distill.iterations" in sets:
        p.error("--set distill.iterations: fkl_mcmc's iterations are what fills fkl's wall time; they are not set")
    suffix = f"-{args.tag}" if args.tag else ""
    torch.set_num_threads(2)
    base = Path(args.base or f"runs/fkl-mcmc-{args.dataset}")
    ws = workspace(args.dataset, base / "main", methods=["random", "fkl"])
    run_experts(ws)
    for method in ("random", "fkl"):
        run_distill(ws, method, 10)
    fkl_summary = json.loads((base / "main/coresets/fkl-ipc10/summary.json").read_text())
    fkl_seconds = fkl_summary["seconds_per_iteration"] * fkl_summary["iterations"]
    # time fkl_mcmc on the same experts (a 1-iteration run holds its one-off chain burn-in, a longer one adds
    # `probe` iterations), then give it the same wall time as fkl, burn-in included
    probe_seconds = []
    for n in (1, 1 + args.probe):
        probe_dir = base / f"probe{n}{suffix}"
        probe = workspace(args.dataset, probe_dir, methods=["fkl_mcmc"], **sets, **{"distill.iterations": n})
        if not (probe_dir / "experts").exists():
            shutil.copytree(base / "main/experts", probe_dir / "experts")
        run_distill(probe, "fkl_mcmc", 10)
        summary = json.loads((probe_dir / "coresets/fkl_mcmc-ipc10/summary.json").read_text())
        probe_seconds.append(summary["seconds_per_iteration"] * n)
    per_iteration = (probe_seconds[1] - probe_seconds[0]) / args.probe
    iterations = max(1, 1 + int((fkl_seconds - probe_seconds[0]) / per_iteration))
    mcmc = workspace(args.dataset, base / "main", methods=["random", "fkl", "fkl_mcmc"], **sets)
    apply_overrides(mcmc.config, {"distill.iterations": iterations})
    mcmc_dir = base / f"mcmc{suffix}"
    mcmc = Workspace(mcmc.config, mcmc_dir, torch.device("cpu"), quiet=True)
    if not (mcmc_dir / "experts").exists():
        shutil.copytree(base / "main/experts", mcmc_dir / "experts")
    t0 = time.perf_counter()
    run_distill(mcmc, "fkl_mcmc", 10)
    mcmc_seconds = time.perf_counter() - t0
    for method in ("random", "fkl"):
        run_evaluate(ws, method, 10, "hmc")
    run_evaluate(mcmc, "fkl_mcmc", 10, "hmc")
    # the same coresets evaluated on the coreset posterior at the full data's scale, w = N/M
    weight = len(ws.data.train_y) / 100
    nm_dir = base / f"weight-nm{suffix}"
    for src in (base / "main", mcmc_dir):
        for path in (src / "coresets").iterdir():
            if not args.no_weight_nm and not (nm_dir / "coresets" / path.name).exists():
                shutil.copytree(path, nm_dir / "coresets" / path.name)
    for method, source in (("random", ws), ("fkl", ws), ("fkl_mcmc", mcmc)):
        if args.no_weight_nm:
            break
        nm = Workspace(
            apply_overrides(copy.deepcopy(source.config), {"evaluate.coreset_weight": weight}),
            nm_dir,
            torch.device("cpu"),
            quiet=True,
        )
        run_evaluate(nm, method, 10, "hmc")
    rows = collect_results(base / "main") + collect_results(mcmc_dir)
    nm_rows = [] if args.no_weight_nm else collect_results(nm_dir)
    metrics = ("accuracy", "nll", "ece", "brier")
    lines = [
        "| method | iterations | distill seconds | evaluated posterior | accuracy | NLL | ECE | Brier |",
        "|---|---|---|---|---|---|---|---|",
    ]
    seconds = {"random": 0.0, "fkl": fkl_seconds, "fkl_mcmc": mcmc_seconds}
    iters = {"random": 0, "fkl": fkl_summary["iterations"], "fkl_mcmc": iterations}
    for tag, group in (("w = 1", rows), (f"w = N/M = {weight:.0f}", nm_rows)):
        for r in sorted(group, key=lambda r: ["random", "fkl", "fkl_mcmc"].index(r["method"])):
            lines.append(
                f"| {r['method']} | {iters[r['method']]} | {seconds[r['method']]:.0f} | {tag} | "
                + " | ".join(f"{r[m]['mean']:.4f} ± {r[m]['std']:.4f}" for m in metrics)
                + " |"
            )
    label = "Fashion-MNIST" if args.dataset == "fmnist" else "CIFAR-10 (JPEG copy)"
    note = (
        f"\n{label}, ipc 10, quick preset (ConvNet width 32, 3 experts x 4 epochs), HMC 4 chains x 40 iterations "
        "(20 burn-in, every 10th kept), 3 evaluation seeds, full test split; coresets learnt for w = 1 (T = 1) and "
        + (
            "evaluated on the coreset posterior with w = 1. "
            if args.no_weight_nm
            else "evaluated on the coreset posterior with w = 1 and with w = N/M. "
        )
        + f"fkl_mcmc: {CHAINS}{', with ' + str(sets) if sets else ''}; its iterations fill fkl's measured "
        "distillation time. Command: python experiments/fkl_mcmc_images/fkl_mcmc_images.py "
        f"{' '.join(sys.argv[1:])}.\n"
    )
    write_results(
        f"fkl_mcmc_{args.dataset}{suffix}",
        {
            "settings": sets,
            "machine": machine(),
            "rows": rows,
            "rows_weight_nm": nm_rows,
            "iterations": iters,
            "distill_seconds": seconds,
        },
        "\n".join(lines) + "\n" + note,
        RESULTS,
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
