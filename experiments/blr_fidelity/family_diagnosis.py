"""Why do the sampling objectives fall short on the larger problems of the family? One problem, one seed, w = 1
(``--weight N/M``: the full data's scale).

Each variant changes one thing of fkl_mcmc or rKL (samples chains) and descends 1500 Adam steps as the family
bench does (fidelity_family.py); the exact descent is the same for all. The oracle variants replace the persistent
HMC chains by exact draws of the current coreset posterior pi_u (as many as the chains would give): what the
objective reaches when its pi_u samples are right, so that any remaining gap is the estimator's noise or the
optimiser's, not the chains'.

    python experiments/blr_fidelity/family_diagnosis.py                      # large problem, seed 0
    python experiments/blr_fidelity/family_diagnosis.py --member medium --seed 1
    python experiments/blr_fidelity/family_diagnosis.py --weight N/M --only chains   # files ..._wNM
    python experiments/blr_fidelity/family_diagnosis.py --mixing    # the chains' mixing on pi_u per mass matrix

Writes experiments/blr_fidelity/results/family_diagnosis_MEMBER_sSEED.{json,md}; rows already there are kept
(a killed run resumes at the next variant). ``--mixing`` writes chain_mixing_MEMBER_sSEED.{json,md}: 8 chains of
50 transitions on the starting coreset's pi_u (the family's chain settings) per mass matrix, with the lag-1
autocorrelation and variance ratio along pi_u's widest and narrowest directions.
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
    cached_experts,
    FAMILY,
    BLRProblem,
    exact_samples,
    family_cases,
    family_problem,
    problem_context,
    reduction_share,
)
from pseudocoresets.objectives.chains import PersistentChains  # noqa: E402
from pseudocoresets.samplers import mass as mass_matrix  # noqa: E402
from pseudocoresets.utils import generator  # noqa: E402


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
        ("fkl_mcmc, diagonal mass", "fkl_mcmc", {"chain_mass": "diagonal"}, False),
        ("fkl_mcmc, dense mass", "fkl_mcmc", {"chain_mass": "dense"}, False),
        ("fkl_mcmc, dense mass, CD-k", "fkl_mcmc, CD-k", {"chain_mass": "dense"}, False),
        (
            "fkl_mcmc, dense mass, 32 chains x 4 transitions, 100 pi_x samples",
            "fkl_mcmc",
            {"chain_mass": "dense", "chains": 32, "chain_steps": 4, "x_samples": 100},
            False,
        ),
        ("rkl chains, dense mass", "rkl, samples chains", {"chain_mass": "dense"}, False),
        ("rkl chains, dense mass, 32 chains", "rkl, samples chains", {"chain_mass": "dense", "chains": 32}, False),
        (
            "fkl_mcmc, dense mass, 10 transitions per step",
            "fkl_mcmc",
            {"chain_mass": "dense", "chain_steps": 10},
            False,
        ),
        ("fkl_mcmc, CD-k, 10 transitions", "fkl_mcmc, CD-k", {"chain_steps": 10}, False),
        (
            "fkl_mcmc, dense mass, CD-k, 10 transitions",
            "fkl_mcmc, CD-k",
            {"chain_mass": "dense", "chain_steps": 10},
            False,
        ),
        (
            "fkl_mcmc, dense mass, 128 chains x 1 transition, 100 pi_x samples",
            "fkl_mcmc",
            {"chain_mass": "dense", "chains": 128, "chain_steps": 1, "x_samples": 100},
            False,
        ),
        (
            "fkl_mcmc, dense mass, 128 chains x 1 transition of 10 leapfrog steps, 100 pi_x samples",
            "fkl_mcmc",
            {"chain_mass": "dense", "chains": 128, "chain_steps": 1, "chain_leapfrog": 10, "x_samples": 100},
            False,
        ),
    ]


def picks(pattern: str, label: str) -> bool:
    return label == pattern[1:] if pattern.startswith("=") else pattern in label


def suffix(args) -> str:
    return ("" if args.weight == "1" else "_wNM") + (f"_{args.tag}" if args.tag else "")


def mixing(problem: BLRProblem, reference: torch.Tensor, member, args) -> None:
    """How the chains move on the starting coreset's pi_u with each mass matrix (no descent)."""
    context = problem_context(problem, cached_experts(problem, EXPERTS), reference)
    mean, cov = problem.coreset_posterior(problem.u0)
    eigenvalues, basis = torch.linalg.eigh(cov)
    rows = []
    for mass in mass_matrix.KINDS:
        chains = PersistentChains(context, 8, 50, 1, 20, 0.1, 5, 0.75, mass)
        states = chains.advance(problem.u0, problem.v, generator(args.seed)).reshape(50, 8, -1)
        coords = (states - mean) @ basis  # in pi_u's eigenbasis, widest last
        row = {"mass": mass, "step_size": chains.step_size, "acceptance": chains.acceptance()}
        for name, k in (("widest", -1), ("narrowest", 0)):
            x = coords[..., k] - coords[..., k].mean(0)
            row[f"lag1_{name}"] = float((x[1:] * x[:-1]).sum() / (x * x).sum())
            row[f"var_ratio_{name}"] = float(coords[..., k].reshape(-1).var() / eigenvalues[k])
        rows.append(row)
        print(row, flush=True)
    lines = [
        "| mass matrix | step size | acceptance | lag-1 autocorrelation, widest / narrowest direction | "
        "sample variance / exact, widest / narrowest |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mass']} | {r['step_size']:.3f} | {r['acceptance']:.2f} | {r['lag1_widest']:.2f} / "
            f"{r['lag1_narrowest']:.2f} | {r['var_ratio_widest']:.2f} / {r['var_ratio_narrowest']:.2f} |"
        )
    condition = float(eigenvalues[-1] / eigenvalues[0])
    text = "\n".join(lines) + (
        f"\n\nProblem {member.name}, seed {args.seed}, w = {args.weight}: pi_u of the starting coreset (condition number "
        f"{condition:.0f}); 8 persistent chains (family settings: 5 leapfrog steps, step size adapted to 0.75 "
        "acceptance), 20 burn-in transitions, then 50 transitions each; mass matrices from the pi_x samples "
        "(samplers/mass.py).\n"
    )
    name = f"chain_mixing_{member.name}_s{args.seed}{suffix(args)}"
    write_results(name, {"machine": machine(), "args": vars(args), "condition": condition, "rows": rows}, text, RESULTS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--member", default="large", choices=[m.name for m in FAMILY])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument(
        "--only",
        default="",
        help="only the variants whose label contains this text, or is it exactly with a leading '=' (or one of A|B|...)",
    )
    p.add_argument("--weight", default="1", choices=["1", "N/M"], help="coreset weight w")
    p.add_argument("--mixing", action="store_true", help="measure the chains' mixing per mass matrix instead")
    p.add_argument("--tag", default="", help="suffix of the results files (two processes at once write apart)")
    args = p.parse_args()
    torch.set_num_threads(1)
    name = f"family_diagnosis_{args.member}_s{args.seed}{suffix(args)}"
    done = {}
    if (RESULTS / f"{name}.json").exists():
        done = {r["variant"]: r for r in json.loads((RESULTS / f"{name}.json").read_text())["rows"]}
    member = {m.name: m for m in FAMILY}[args.member]
    cases = {label: (method, d, o) for label, method, d, o in family_cases()}
    problem = family_problem(member, args.seed, args.weight)
    reference = exact_samples(problem)
    if args.mixing:
        return mixing(problem, reference, member, args)
    rows = list(done.values())
    for label, case, changes, use_oracle in variants():
        if label in done or not any(picks(part, label) for part in args.only.split("|")):
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
        f"number {member.condition:g}), seed {args.seed}, w = {args.weight}; Adam lr 0.05 decayed linearly to 0, {args.steps} "
        "steps; pi_x samples are exact draws of the full-data posterior (x_source reference).\n"
    )


if __name__ == "__main__":
    main()
