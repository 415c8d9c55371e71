"""Learnt per-point coreset weights (``--fkl_mcmc.learn_weights``) on Bayesian linear regression, where the
coreset posterior and KL(pi_x || pi_u) are exact (pseudocoresets.fidelity.blr).

    python experiments/blr_fidelity/learnt_weights_blr.py [--iterations 300]

1. The log-weight gradient fkl_mcmc writes, averaged over 30 steps at the random start u_0, against the exact
   d KL / d log v: cosine and scale (1 = the stated constant T / (w M)), at v = 1 and at unequal v.
2. The outer loop (Adam on the pixels, SGD on the log-weights) from u_0, without and with learnt weights at three
   weight learning rates, and, as the baseline a global rescaling gives, pixels alone at w = N/M: the exact
   forward KL (each against the same pi_x) of the posterior each run ends with.
3. Mutants, each through the same checks: the weights' gradient sign flipped (the value of v kept, its gradient
   negated), the weights detached from the surrogate (never learnt), and the pi_u chains sampling without the
   weights. Each must fail one of the checks of tests/objectives/test_learnt_weights.py (cosine >= 0.97 and scale in
   [0.8, 1.25] at both v; learnt KL <= 0.3 x the start).

Writes experiments/blr_fidelity/results/learnt_weights_blr.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"

from common import machine, write_results  # noqa: E402


def main() -> None:
    import torch

    from pseudocoresets.fidelity.blr import (
        UNEQUAL_LOG_WEIGHTS,
        BLRProblem,
        learnt_weights_run,
        weight_gradient_check,
        weights_context,
    )
    from pseudocoresets.objectives import chains as chains_module
    from pseudocoresets.objectives import fkl_mcmc

    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(1)
    problem = BLRProblem.synthetic()
    start_kl = float(problem.divergence("forward_kl", problem.u0))
    rows, mutants = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = weights_context(problem, Path(tmp))
        t0 = time.perf_counter()
        check = weight_gradient_check(problem, ctx)
        unequal = weight_gradient_check(problem, ctx, log_weights=UNEQUAL_LOG_WEIGHTS)
        print("gradient", check, unequal, flush=True)
        for learn, lr in ((False, 0.1), (True, 0.03), (True, 0.1), (True, 0.3)):
            r = learnt_weights_run(problem, ctx, learn, args.iterations, lr)
            rows.append({"weight": "1", "learn_weights": learn, "lr_weights": lr if learn else None, **r})
            print(rows[-1], flush=True)
        scaled = BLRProblem.synthetic(weight=len(problem.x) / len(problem.u0))  # w = N/M, same data and start
        scaled_ctx = weights_context(scaled, Path(tmp) / "nm")
        for learn, lr in ((False, 0.1), (True, 0.1)):
            r = learnt_weights_run(scaled, scaled_ctx, learn, args.iterations, lr)
            rows.append({"weight": "N/M", "learn_weights": learn, "lr_weights": lr if learn else None, **r})
            print(rows[-1], flush=True)

        original_pw, original_advance = fkl_mcmc.ForwardKLMCMC.point_weights, chains_module.PersistentChains.advance

        def flipped(self):  # value exp(a), gradient -exp(a)
            return None if self.log_weights is None else 2 * self.log_weights.exp().detach() - self.log_weights.exp()

        def detached(self):
            return None if self.log_weights is None else self.log_weights.exp().detach()

        def blind_chains(self, images, labels, g, point_weights=None):
            return original_advance(self, images, labels, g, None)

        for name, patch in (
            ("weight gradient sign flipped", ("pw", flipped)),
            ("weights detached from the surrogate", ("pw", detached)),
            ("chains sample pi_u without the weights", ("chains", blind_chains)),
        ):
            target, fn = patch
            if target == "pw":
                fkl_mcmc.ForwardKLMCMC.point_weights = fn
            else:
                chains_module.PersistentChains.advance = fn
            try:
                m_check = weight_gradient_check(problem, ctx, log_weights=UNEQUAL_LOG_WEIGHTS)
                try:
                    m_run = learnt_weights_run(problem, ctx, True, args.iterations, 0.1)
                except Exception as exc:  # a mutant may break the run: that fails the check too
                    print(name, "raised", repr(exc), flush=True)
                    m_run = {"forward_kl": float("nan"), "error": str(exc)[:160]}
            finally:
                fkl_mcmc.ForwardKLMCMC.point_weights = original_pw
                chains_module.PersistentChains.advance = original_advance
            fails = not (
                m_check["cosine"] >= 0.97 and 0.8 <= m_check["scale"] <= 1.25 and m_run["forward_kl"] <= 0.3 * start_kl
            )
            mutants.append(
                {
                    "mutant": name,
                    **m_check,
                    "forward_kl": m_run["forward_kl"],
                    "fails_a_check": fails,
                    "run_error": m_run.get("error"),
                }
            )
            print(mutants[-1], flush=True)
        seconds = time.perf_counter() - t0
    lines = [
        f"Exact KL(pi_x || pi_u) at the random start u_0 (w = 1): {start_kl:.4f}. Weight gradient at u_0 "
        f"(30 steps averaged), against the exact one: at v = 1 cosine {check['cosine']:.4f}, scale "
        f"{check['scale']:.3f}; at unequal v (log v = {UNEQUAL_LOG_WEIGHTS}) cosine {unequal['cosine']:.4f}, "
        f"scale {unequal['scale']:.3f} (scale 1 = the stated T / (w M)).",
        "",
        f"| run ({args.iterations} outer iterations) | exact KL(pi_x ‖ pi_u) at u_0 | at the end | share of the "
        "start removed | learnt weights v (min / mean / max) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        label = (
            "pixels only (learn_weights false)"
            if not r["learn_weights"]
            else f"pixels + weights, lr_weights {r['lr_weights']}"
        ) + f", w = {r['weight']}"
        v = r["point_weights"]
        vs = "—" if v is None else f"{min(v):.2f} / {sum(v) / len(v):.2f} / {max(v):.2f}"
        lines.append(
            f"| {label} | {r['start']:.4f} | {r['forward_kl']:.4f} | {1 - r['forward_kl'] / r['start']:.1%} | {vs} |"
        )
    lines += [
        "",
        "Mutants (each must fail a check: cosine >= 0.97 and scale in [0.8, 1.25] at unequal v, or learnt "
        "KL <= 0.3 x start at w = 1, lr_weights 0.1):",
        "",
        "| mutant | cosine | scale | KL at the end | fails a check |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {m['mutant']} | {m['cosine']:.4f} | {m['scale']:.3f} | "
        f"{'run raised: ' + m['run_error'] if m['run_error'] else format(m['forward_kl'], '.4f')} | "
        f"{'yes' if m['fails_a_check'] else 'NO'} |"
        for m in mutants
    ]
    lines += [
        "",
        f"Bayesian linear regression, N = 400, d = 3, M = 6, w = 1, T = 1, prior sigma 3, noise 1; pi_x from "
        f"4000 exact posterior samples; fkl_mcmc with 8 chains x 2 HMC transitions per iteration. 1 thread, "
        f"{seconds:.0f} s. Command: `python experiments/blr_fidelity/learnt_weights_blr.py --iterations {args.iterations}`.",
        "",
    ]
    write_results(
        "learnt_weights_blr",
        {
            "machine": machine(),
            "start_forward_kl": start_kl,
            "gradient": check,
            "gradient_unequal_v": unequal,
            "runs": rows,
            "mutants": mutants,
            "iterations": args.iterations,
        },
        "\n".join(lines),
        RESULTS,
    )


if __name__ == "__main__":
    main()
