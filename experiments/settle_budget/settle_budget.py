"""How many HMC iterations the stopping rule spends before the predictive settles, on the quick preset's problem.

Random's ipc-10 Fashion-MNIST coreset (quick preset: ConvNet width 32, HMC 4 chains, 40 iterations of which 20
burn-in, one kept state per 10), evaluated with the quick preset's fixed budget and with the stopping rule at
several thresholds (``--hmc.settle_tv``; the post-burn-in length doubles up to 16 x 40 = 640 iterations per
chain), one repeat each, each variant in its own run directory (they resume after a kill). Writes
``results/settle_budget.{json,md}``.

    python experiments/settle_budget/settle_budget.py [--out runs/settle_budget] [--thresholds 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))

from common import machine, write_results  # noqa: E402

import pseudocoresets as bpc  # noqa: E402


def evaluate(out: Path, settle_tv: float) -> dict:
    overrides = {"methods": "random", "ipcs": "10", "protocols": "hmc", "evaluate.repeats": 1}
    if settle_tv:
        overrides["hmc.settle_tv"] = settle_tv
    run = bpc.Run(bpc.make_config("quick", overrides=overrides), out, quiet=True)
    run.distill("random", 10)
    result = run.evaluate("random", 10, "hmc")
    repeat = result.results["repeats"][0]
    manifest = json.loads((result.path / "manifest.json").read_text())  # the evaluation's own time, resumed or not
    return {
        "settle_tv": settle_tv,
        "iterations": repeat.get("iterations", 40),
        "stopped": repeat.get("stopped", "fixed budget"),
        "halves_tv": repeat.get("halves_tv"),
        "accuracy": result.summary["accuracy"]["mean"],
        "nll": result.summary["nll"]["mean"],
        "rhat_median": repeat.get("rhat_median"),
        "seconds": manifest["timings_seconds"]["evaluate"],
        "sampling_seconds": repeat.get("sampling_seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/settle_budget")
    parser.add_argument("--thresholds", default="0.05")
    args = parser.parse_args()
    rows = []
    for tv in [0.0] + [float(t) for t in args.thresholds.split(",") if t]:
        rows.append(evaluate(Path(args.out) / f"tv{tv:g}", tv))
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        "| stopping rule | iterations per chain | stopped | TV of the halves | accuracy | NLL | R-hat (median) | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rule = f"settle_tv {r['settle_tv']:g}" if r["settle_tv"] else "fixed (quick preset)"
        tv = "—" if r["halves_tv"] is None else f"{r['halves_tv']:.4f}"
        rhat = "—" if r["rhat_median"] is None else f"{r['rhat_median']:.2f}"
        lines.append(
            f"| {rule} | {r['iterations']} | {r['stopped']} | {tv} | {r['accuracy']:.4f} | {r['nll']:.4f} | "
            f"{rhat} | {r['seconds']:.0f} |"
        )
    text = (
        "Random's ipc-10 Fashion-MNIST coreset, quick preset, HMC 4 chains, one repeat per row "
        "(`python experiments/settle_budget/settle_budget.py`).\n\n" + "\n".join(lines) + "\n"
    )
    write_results("settle_budget", {"machine": machine(), "rows": rows}, text, HERE / "results")


if __name__ == "__main__":
    main()
