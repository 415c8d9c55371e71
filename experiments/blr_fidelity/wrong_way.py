"""Why rKL goes the wrong way with fewer pseudo-points than features at the full data's scale (w = N/M).

On the family's ``wide`` problem (N 2,000, d 12, M 8, feature condition number 300) the coreset posterior keeps
the prior's width (sigma^2 = 9) in the d - M directions its M points leave open, where the full-data posterior is
hundreds of times narrower. Each variant descends 1500 Adam steps as the family bench does and records along the
run, every step: the cosine of the objective's gradient estimate with the exact gradient of KL(pi_u || pi_x), the
cosine of two consecutive estimates (near 0 for independent noise, near 1 for a persistent direction), the
chains' step size, and the outer loop's watch (distill/watch.py). Variants: rKL with its default chains (4,
identity mass, step 0.01 adapted), the same with the family's chains (8, step 0.1), with a dense mass matrix,
with the chains replaced by exact pi_u draws (as many, then 16 times as many), and the paper's q_u.

    python experiments/blr_fidelity/wrong_way.py            # seed 0; --seed 1, --member correlated, --weight 1

Writes experiments/blr_fidelity/results/wrong_way_MEMBER_sSEED[_wNM].{json,md}; variants already there are kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402
from family_diagnosis import oracle  # noqa: E402

from pseudocoresets.distill import DistillConfig, prepare_objective  # noqa: E402
from pseudocoresets.distill import watch as watching  # noqa: E402
from pseudocoresets.fidelity.blr import (  # noqa: E402
    EXPERTS,
    FAMILY,
    cached_experts,
    exact_samples,
    family_problem,
    problem_context,
)
from pseudocoresets.objectives import objective_module  # noqa: E402
from pseudocoresets.utils import generator  # noqa: E402

FAMILY_CHAINS = {"chains": 8, "chain_steps": 2, "chain_burn_in": 20, "chain_step_size": 0.1}


def variants() -> list[tuple[str, dict, int]]:
    """(label, rkl options, exact pi_u draws per chain sample: 0 = the chains themselves)."""
    return [
        ("chains, defaults (4, identity mass)", {"samples": "chains"}, 0),
        ("chains, the family's (8, step 0.1)", {"samples": "chains", **FAMILY_CHAINS}, 0),
        ("chains, dense mass", {"samples": "chains", "chain_mass": "dense"}, 0),
        ("exact pi_u draws, as many (8)", {"samples": "chains"}, 1),
        ("exact pi_u draws, 16 times as many (128)", {"samples": "chains", "chains": 64}, 1),
        ("the paper's q_u (30 samples)", {}, 0),
    ]


def run(problem, label: str, options: dict, exact: int, steps: int, seed: int) -> dict:
    distill_cfg = DistillConfig(lr_student=0.01, student_steps=30, expert_epochs=1, max_start_epoch=10)
    distill_cfg.method = "rkl"
    context = problem_context(problem, cached_experts(problem, EXPERTS), exact_samples(problem))
    objective = prepare_objective(distill_cfg, objective_module("rkl").Config(**options), context)
    if exact:
        oracle(problem)(objective)
    g = generator(seed)
    u = problem.u0.clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=0.05)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / steps)
    cos_exact, cos_next, watched, step_sizes, previous = [], [], [], [], None
    for _ in range(steps):
        u.grad = None
        metrics = objective.step(u, problem.v, g)
        estimate = u.grad.detach().reshape(-1).clone()
        leaf = u.detach().clone().requires_grad_(True)
        (true,) = torch.autograd.grad(problem.divergence("reverse_kl", leaf), leaf)
        cos_exact.append(float(estimate @ true.reshape(-1) / (estimate.norm() * true.norm())))
        if previous is not None:
            cos_next.append(float(estimate @ previous / (estimate.norm() * previous.norm())))
        previous = estimate
        watched.append(metrics["data_log_lik"])
        if objective.chains is not None and not exact:
            step_sizes.append(objective.chains.step_size)
        opt.step()
        decay.step()
    start = float(problem.divergence("reverse_kl", problem.u0))
    end = float(problem.divergence("reverse_kl", u.detach()))
    quarter = steps // 4
    verdict = watching.compare(watched, "higher")
    return {
        "variant": label,
        "start": start,
        "end": end,
        "cos_exact_mean": statistics.fmean(cos_exact),
        "cos_exact_first_quarter": statistics.fmean(cos_exact[:quarter]),
        "cos_exact_last_quarter": statistics.fmean(cos_exact[-quarter:]),
        "cos_next_mean": statistics.fmean(cos_next),
        "step_size_first": step_sizes[0] if step_sizes else None,
        "step_size_last": step_sizes[-1] if step_sizes else None,
        "watch": verdict,
    }


def table(rows: list[dict], member, args) -> str:
    lines = [
        "| variant | reverse KL start -> end | cosine with the exact gradient: mean (first / last quarter) | "
        "cosine of consecutive estimates | chains' step size first -> last | the loop's watch: E[real log-lik] "
        "first -> last window, said worse |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        steps = "—" if r["step_size_first"] is None else f"{r['step_size_first']:.3g} -> {r['step_size_last']:.3g}"
        w = r["watch"]
        lines.append(
            f"| {r['variant']} | {r['start']:.1f} -> {r['end']:.1f} | {r['cos_exact_mean']:.3f} "
            f"({r['cos_exact_first_quarter']:.3f} / {r['cos_exact_last_quarter']:.3f}) | {r['cos_next_mean']:.3f} | "
            f"{steps} | {w['first']:.3f} -> {w['last']:.3f}, {'yes' if w['worse'] else 'no'} |"
        )
    return "\n".join(lines) + (
        f"\n\nProblem {member.name} (N {member.n}, d {member.d}, M {member.m}, feature condition number "
        f"{member.condition:g}), seed {args.seed}, w = {args.weight}; Adam lr 0.05 decayed linearly to 0, "
        f"{args.steps} steps from the same random coreset; exact draws replace the chains' samples one for one "
        "(family_diagnosis.oracle). The watch is read for every variant, also for the paper's q_u, which the outer "
        "loop does not watch (its samples never see pi_u).\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--member", default="wide", choices=[m.name for m in FAMILY])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight", default="N/M", choices=["1", "N/M"])
    p.add_argument("--steps", type=int, default=1500)
    args = p.parse_args()
    torch.set_num_threads(1)
    member = {m.name: m for m in FAMILY}[args.member]
    name = f"wrong_way_{member.name}_s{args.seed}" + ("_wNM" if args.weight == "N/M" else "")
    path = RESULTS / f"{name}.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    problem = family_problem(member, args.seed, args.weight)
    for label, options, exact in variants():
        if any(r["variant"] == label for r in rows):
            continue
        t0 = time.perf_counter()
        rows.append({**run(problem, label, options, exact, args.steps, args.seed), "seconds": time.perf_counter() - t0})
        print({k: v for k, v in rows[-1].items() if k != "watch"}, flush=True)
        write_results(
            name, {"machine": machine(), "args": vars(args), "rows": rows}, table(rows, member, args), RESULTS
        )


if __name__ == "__main__":
    main()
