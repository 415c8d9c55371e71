"""Posterior fidelity of every objective on Bayesian linear regression (exact posteriors and divergences).

For each objective of ``pseudocoresets.fidelity.cases()`` and each coreset weight (w = 1, the paper's
evaluation posterior, and w = N/M, the full data's scale): the exact divergence the objective stands for at a
random coreset, after Adam on the objective's own gradient estimate, and after Adam on the exact gradient, from
the same start with the same steps; and the share of the exact reduction that the objective achieves.

    python experiments/blr_fidelity/fidelity_blr.py                 # 1500 steps (about 15 minutes on 2 cores)
    python experiments/blr_fidelity/fidelity_blr.py --steps 300     # the test suite's setting
    python experiments/blr_fidelity/fidelity_blr.py --cases CD-k --name fidelity_blr_cd   # one case

Writes experiments/blr_fidelity/results/NAME.{json,md} (NAME: ``--name``, default fidelity_blr).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.fidelity import BLRProblem, cases, reduction_share  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--name", default="fidelity_blr")
    p.add_argument("--cases", default="", help="only the cases whose label contains this text")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for weight_name in ("1", "N/M"):
        for label, method, distill_cfg, objective_cfg in cases():
            if args.cases not in label:
                continue
            problem = BLRProblem.synthetic()
            if weight_name == "N/M":
                problem = BLRProblem.synthetic(weight=len(problem.x) / len(problem.u0))
            t0 = time.perf_counter()
            r = reduction_share(problem, method, distill_cfg, objective_cfg, steps=args.steps, lr=args.lr)
            rows.append({"case": label, "weight": weight_name, **r, "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    lines = [
        "| weight w | objective | divergence | start | objective's descent | exact descent | "
        "objective reduction | exact reduction | share of exact |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['weight']} | {r['case']} | {r['divergence']} | {r['start']:.3f} | {r['objective']:.3f} | "
            f"{r['exact']:.3f} | {100 * r['objective_reduction']:.1f}% | {100 * r['exact_reduction']:.1f}% | "
            f"{100 * r['share']:.1f}% |"
        )
    note = (
        f"\nBayesian linear regression, N = 400, d = 3, M = 6 coreset points (targets fixed, inputs learnt), noise "
        f"1, prior N(0, 9 I), float64. Adam, lr {args.lr} decayed linearly to 0, {args.steps} steps, from the "
        "same random coreset for the objective and the exact gradient. The objective runs as in distillation "
        "(build(...).step with its student SGD, expert pool of 8 SGD experts x 50 epochs, noise, chains).\n"
    )
    write_results(
        args.name, {"machine": machine(), "args": vars(args), "rows": rows}, "\n".join(lines) + "\n" + note, RESULTS
    )


if __name__ == "__main__":
    main()
