"""Why do the sampling objectives fall short on the larger problems of the family? One problem, one seed, w = 1.

Each variant changes one thing of fkl_mcmc or rKL (samples chains) and descends 1500 Adam steps as the family
bench does (fidelity_family.py); the exact descent is the same for all. The oracle variants replace the persistent
HMC chains by exact draws of the current coreset posterior pi_u (as many as the chains would give): what the
objective reaches when its pi_u samples are right, so that any remaining gap is the estimator's noise or the
optimiser's, not the chains'.

    python experiments/blr_fidelity/family_diagnosis.py                      # large problem, seed 0
    python experiments/blr_fidelity/family_diagnosis.py --member medium --seed 1

Writes experiments/blr_fidelity/results/family_diagnosis_MEMBER_sSEED.{json,md}; rows already there are kept
(a killed run resumes at the next variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.fidelity.blr import (  # noqa: E402
    EXPERTS,
    FAMILY,
    BLRProblem,
    exact_samples,
    family_cases,
    family_problem,
    reduction_share,
)


def oracle(problem: BLRProblem):
    """A patch that makes the objective's chains return exact draws of the current pi_u (same count)."""

    def patch(objective) -> None:
        chains = objective.chains
        count = chains.num_chains * (chains.steps // chains.thin)

        def advance(images, labels, g, point_weights=None, starts=None):
            n = count if starts is None else len(starts)
            mean, cov = problem.coreset_posterior(images.detach(), point_weights)
            z = torch.randn(n, len(mean), generator=g, dtype=mean.dtype)
            return mean + z @ torch.linalg.cholesky(cov).T

        chains.advance = advance

    return patch


def variants() -> list[tuple[str, str, dict, bool]]:
    """(label, family case, objective options changed, oracle pi_u samples)."""
    return [
        ("fkl_mcmc", "fkl_mcmc", {}, False),
        ("fkl_mcmc, exact pi_u draws", "fkl_mcmc", {}, True),
        ("fkl_mcmc, 10 transitions per step", "fkl_mcmc", {"chain_steps": 10}, False),
        ("fkl_mcmc, 20 leapfrog steps", "fkl_mcmc", {"chain_leapfrog": 20}, False),
        ("fkl_mcmc, 32 chains", "fkl_mcmc", {"chains": 32}, False),
        ("fkl_mcmc, 100 pi_x samples", "fkl_mcmc", {"x_samples": 100}, False),
        ("fkl_mcmc, CD-k", "fkl_mcmc, CD-k", {}, False),
        (
            "fkl_mcmc, 32 chains x 4 transitions, 100 pi_x samples",
            "fkl_mcmc",
            {"chains": 32, "chain_steps": 4, "x_samples": 100},
            False,
        ),
        (
            "fkl_mcmc, exact draws: 128 pi_u, 100 pi_x samples",
            "fkl_mcmc",
            {"chains": 32, "chain_steps": 4, "x_samples": 100},
            True,
        ),
        ("rkl chains", "rkl, samples chains", {}, False),
        ("rkl chains, exact pi_u draws", "rkl, samples chains", {}, True),
        ("rkl chains, all real points", "rkl, samples chains", {"real_batch": 5000}, False),
        ("rkl chains, 32 chains", "rkl, samples chains", {"chains": 32}, False),
        ("rkl chains, 32 chains, exact draws", "rkl, samples chains", {"chains": 32}, True),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--member", default="large", choices=[m.name for m in FAMILY])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--only", default="", help="only the variants whose label contains this text")
    args = p.parse_args()
    torch.set_num_threads(1)
    name = f"family_diagnosis_{args.member}_s{args.seed}"
    done = {}
    if (RESULTS / f"{name}.json").exists():
        done = {r["variant"]: r for r in json.loads((RESULTS / f"{name}.json").read_text())["rows"]}
    member = {m.name: m for m in FAMILY}[args.member]
    cases = {label: (method, d, o) for label, method, d, o in family_cases()}
    problem = family_problem(member, args.seed)
    reference = exact_samples(problem)
    rows = list(done.values())
    for label, case, changes, use_oracle in variants():
        if label in done or args.only not in label:
            continue
        method, distill_cfg, objective_cfg = cases[case]
        t0 = time.perf_counter()
        r = reduction_share(
            problem,
            method,
            distill_cfg,
            dataclasses.replace(objective_cfg, **changes),
            steps=args.steps,
            seed=args.seed,
            experts=EXPERTS,
            reference=reference,
            patch=oracle(problem) if use_oracle else None,
        )
        rows.append({"variant": label, **r, "seconds": time.perf_counter() - t0})
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
        write_results(
            name, {"machine": machine(), "args": vars(args), "rows": rows}, table(rows, member, args), RESULTS
        )


def table(rows: list[dict], member, args) -> str:
    lines = [
        "| variant | divergence | start | objective's descent | exact descent | share | log share | end / exact end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['divergence']} | {r['start']:.3f} | {r['objective']:.3f} | {r['exact']:.3f} | "
            f"{100 * r['share']:.1f}% | {100 * r['log_share']:.1f}% | {r['end_ratio']:.2f} |"
        )
    return "\n".join(lines) + (
        f"\n\nProblem {member.name} (N = {member.n}, d = {member.d}, M = {member.m}, feature covariance condition "
        f"number {member.condition:g}), seed {args.seed}, w = 1; Adam lr 0.05 decayed linearly to 0, {args.steps} "
        "steps; pi_x samples are exact draws of the full-data posterior (x_source reference).\n"
    )


if __name__ == "__main__":
    main()
