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


def evaluate(out: Path, settle_tv: float, dataset: str = "fashion-mnist") -> dict:
    # every row is a TV rule or the fixed budget, never the R-hat rule the quick preset now runs with
    overrides = {"methods": "random", "ipcs": "10", "protocols": "hmc", "evaluate.repeats": 1, "hmc.settle_rhat": 0}
    if dataset != "fashion-mnist":
        overrides["data.name"] = dataset
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
        "trace": repeat.get("settle_trace"),
    }


TRACE_TV = 1e-6  # a threshold no predictive meets: the chains run to their cap and every check is recorded
RULES = [("settle_tv", 0.1), ("settle_tv", 0.05), ("settle_rhat", 1.1), ("settle_rhat", 1.05)]


def stops_at(trace: list[dict], key: str, threshold: float) -> dict | None:
    """The first check of the trace at which the rule ``key <= threshold`` would have stopped (None: never)."""
    return next((t for t in trace if t.get(key, float("inf")) <= threshold), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/settle_budget")
    parser.add_argument("--thresholds", default="0.05")
    parser.add_argument("--trace", action="store_true", help="also run to the cap, recording every check")
    args = parser.parse_args()
    rows = []
    for tv in [0.0] + [float(t) for t in args.thresholds.split(",") if t] + ([TRACE_TV] if args.trace else []):
        rows.append(evaluate(Path(args.out) / ("trace" if tv == TRACE_TV else f"tv{tv:g}"), tv))
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        "| stopping rule | iterations per chain | stopped | TV of the halves | accuracy | NLL | R-hat (median) | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rule = (
            "trace to the cap"
            if r["settle_tv"] == TRACE_TV
            else (f"settle_tv {r['settle_tv']:g}" if r["settle_tv"] else "fixed (quick preset)")
        )
        tv = "—" if r["halves_tv"] is None else f"{r['halves_tv']:.4f}"
        rhat = "—" if r["rhat_median"] is None else f"{r['rhat_median']:.2f}"
        lines.append(
            f"| {rule} | {r['iterations']} | {r['stopped']} | {tv} | {r['accuracy']:.4f} | {r['nll']:.4f} | "
            f"{rhat} | {r['seconds']:.0f} |"
        )
    traced = next((r for r in rows if r["settle_tv"] == TRACE_TV and r["trace"]), None)
    if traced:
        lines += [
            "",
            "Every check of the run to the cap (accuracy and NLL on the 1,000 settle points):",
            "",
            "| iterations per chain | TV of the halves | TV even/odd | R-hat (median) | accuracy | NLL |",
            "|---|---|---|---|---|---|",
        ]
        for t in traced["trace"]:
            rhat = f"{t['settle_rhat']:.3f}" if "settle_rhat" in t else "—"
            lines.append(
                f"| {t['iterations']} | {t['halves_tv']:.4f} | {t['interleaved_tv']:.4f} | {rhat} | "
                f"{t['accuracy']:.4f} | {t['nll']:.4f} |"
            )
        lines += [
            "",
            "Where each rule would have stopped on these chains:",
            "",
            "| rule | iterations | accuracy | NLL |",
        ]
        lines += ["|---|---|---|---|"]
        for key, threshold in RULES:
            t = stops_at(traced["trace"], key, threshold)
            where = "not by the cap" if t is None else f"{t['iterations']} | {t['accuracy']:.4f} | {t['nll']:.4f}"
            lines.append(f"| {key} {threshold:g} | {where}{' | — | —' if t is None else ''} |")
    text = (
        "Random's ipc-10 Fashion-MNIST coreset, quick preset, HMC 4 chains, one repeat per row "
        "(`python experiments/settle_budget/settle_budget.py --trace`).\n\n" + "\n".join(lines) + "\n"
    )
    write_results("settle_budget", {"machine": machine(), "rows": rows}, text, HERE / "results")


if __name__ == "__main__":
    main()
