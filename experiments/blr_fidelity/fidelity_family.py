"""Posterior fidelity of every objective on a family of Bayesian linear regression problems (exact posteriors).

The bench of fidelity_blr.py, held against problems the objectives were never tuned to:
``pseudocoresets.fidelity.blr.FAMILY`` (small: N 500, d 4, M 8, isotropic features; medium: 2,000 / 8 / 16,
condition number 10; large: 5,000 / 16 / 32, condition number 100), 3 seeds each (data, coreset start and the
objective's noise), at w = 1 and w = N/M, with the ``blr`` preset's settings (``family_cases()``) and pi_x samples
exact (the reference stage's samples converge on this model). Per run: the share of the exact reduction, the
share of its log reduction, and the objective's end value over exact descent's; per problem the median over seeds.

    python experiments/blr_fidelity/fidelity_family.py                  # everything, 2 worker processes
    python experiments/blr_fidelity/fidelity_family.py --members small --weights 1 --cases fkl_mcmc

Writes experiments/blr_fidelity/results/NAME.{json,md} (NAME: ``--name``, default fidelity_family) after every
finished run; a killed run resumes with the runs it has not written yet.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402
from family_diagnosis import picks  # noqa: E402  (this folder is on the path of a script run from it)

from pseudocoresets.fidelity.blr import FAMILY, family_cases, run_family_check  # noqa: E402

WEIGHTS = ("1", "N/M")


def run_one(job: tuple[str, int, str, str, int]) -> dict:
    member_name, seed, weight, label, steps = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    r = run_family_check(member_name, label, weight, steps=steps, seed=seed)
    return {
        "member": member_name,
        "seed": seed,
        "weight": weight,
        "case": label,
        **r,
        "seconds": time.perf_counter() - t0,
    }


def key(r: dict) -> tuple:
    return (r["member"], r["seed"], r["weight"], r["case"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--members", default=",".join(m.name for m in FAMILY))
    p.add_argument("--weights", default=",".join(WEIGHTS))
    p.add_argument(
        "--cases",
        default="",
        help="only the cases whose label contains this text, or is it exactly with a leading '=' (or one of A|B|...)",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--name", default="fidelity_family")
    args = p.parse_args()
    path = RESULTS / f"{args.name}.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    done = {key(r) for r in rows}
    labels = [lab for lab, *_ in family_cases() if any(picks(part, lab) for part in args.cases.split("|"))]
    jobs = [
        (m, int(s), w, lab, args.steps)
        for m in args.members.split(",")
        for w in args.weights.split(",")
        for lab in labels
        for s in args.seeds.split(",")
        if (m, int(s), w, lab) not in done
    ]
    # the large problems first, so that the two workers finish together
    jobs.sort(key=lambda j: [m.name for m in FAMILY].index(j[0]), reverse=True)
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for r in pool.imap_unordered(run_one, jobs):
            rows.append(r)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
            write_results(
                args.name, {"machine": machine(), "args": vars(args), "rows": rows}, tables(rows, args), RESULTS
            )


def tables(rows: list[dict], args) -> str:
    order = {m.name: i for i, m in enumerate(FAMILY)}
    case_order = {lab: i for i, (lab, *_) in enumerate(family_cases())}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["member"], r["weight"], r["case"]), []).append(r)
    lines = [
        "| problem | w | objective | seeds | share of exact reduction | share of log reduction | "
        "end / exact end | per seed: share / log share / end ratio | the loop warned (seeds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (member, weight, case), rs in sorted(
        groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] != "1", case_order.get(kv[0][2], 99))
    ):
        rs = sorted(rs, key=lambda r: r["seed"])
        med = {k: statistics.median(r[k] for r in rs) for k in ("share", "log_share", "end_ratio")}
        per = "; ".join(f"{100 * r['share']:.0f}% / {100 * r['log_share']:.0f}% / {r['end_ratio']:.2f}" for r in rs)
        known = [r for r in rs if r.get("warned") is not None]  # rows before the loop watched, or nothing watched
        warned = f"{sum(r['warned'] for r in known)} of {len(known)}" if known else "—"
        lines.append(
            f"| {member} | {weight} | {case} | {len(rs)} | {100 * med['share']:.1f}% | {100 * med['log_share']:.1f}% | "
            f"{med['end_ratio']:.2f} | {per} | {warned} |"
        )
    members = "; ".join(f"{m.name}: N {m.n}, d {m.d}, M {m.m}, condition {m.condition:g}" for m in FAMILY)
    return "\n".join(lines) + (
        f"\n\nMedians over seeds. Problems ({members}); targets fixed, inputs learnt; noise 1, prior N(0, 9 I), "
        f"float64. Adam lr 0.05 decayed linearly to 0, {args.steps} steps, from the same random coreset for the "
        "objective and the exact gradient; the blr preset's student and chain settings; pi_x samples exact. The last "
        "column: on how many seeds the outer loop's watch (distill/watch.py) would have said that the run made the "
        "coreset worse (— where the objective watches nothing or the run predates the watch).\n"
    )


if __name__ == "__main__":
    main()
