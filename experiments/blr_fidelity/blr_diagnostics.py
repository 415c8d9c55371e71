"""Why fkl_mcmc needs posterior samples for pi_x, on the blr preset's data (run experiments/blr_fidelity/blr_pipeline.sh first).

1. Exact-gradient descent of each divergence from the random coreset (Adam, the preset's schedule: lr 0.05 decayed
   linearly over 300 steps) -- what an objective could reach -- next to what the pipeline's coresets reached.
2. Expert snapshots (last 5 epochs of the 8 experts) and reference samples against the exact full-data posterior:
   mean offset and spread in units of the posterior's standard deviation.

    python experiments/blr_fidelity/blr_diagnostics.py     -> experiments/blr_fidelity/results/blr_diagnostics.md|json
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from pseudocoresets.config import preset  # noqa: E402
from pseudocoresets.evaluation.gaussian import linear_gaussian_posterior  # noqa: E402
from pseudocoresets.experts import ExpertPool, expert_files  # noqa: E402
from pseudocoresets.fidelity.blr import BLRProblem, descend_exact  # noqa: E402
from pseudocoresets.io import load_tensors  # noqa: E402
from pseudocoresets.pipeline import Workspace, load_coreset  # noqa: E402
from pseudocoresets.samplers import PosteriorSpec  # noqa: E402


def spread(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> dict:
    sd = cov.diagonal().sqrt()
    return {
        "max_mean_offset_sd": float(((samples.mean(0) - mean) / sd).abs().max()),
        "mean_spread_ratio": float((samples.std(0) / sd).mean()),
    }


def main() -> None:
    run = ROOT / "runs/blr"
    cfg = preset("blr")
    ws = Workspace(cfg, run, torch.device("cpu"), quiet=True)
    x, y = ws.train_x().double(), ws.data.train_y.double()
    core = load_coreset(run / "coresets/random-ipc20", torch.device("cpu"))
    u0, v = core.images, core.labels
    spec = PosteriorSpec(1.0, 1.0, cfg.posterior.prior_std)
    problem = BLRProblem(x, y, u0.double(), v.double(), cfg.model.noise_std, cfg.posterior.prior_std, spec)
    rows = []
    for kind, method in (("forward_kl", "fkl_mcmc"), ("reverse_kl", "rkl"), ("w2", "wasserstein")):
        exact = descend_exact(problem, kind, cfg.distill.iterations, cfg.distill.lr_images)
        start, best = float(problem.divergence(kind, problem.u0)), float(problem.divergence(kind, exact))
        res = json.loads((run / f"evals/{method}-ipc20-hmc/results.json").read_text())["exact"]
        reached = res[kind] if kind != "w2" else res["w2"] ** 2
        rows.append({"divergence": kind, "method": method, "start": start, "exact_descent": best, "pipeline": reached})
    mean, cov = linear_gaussian_posterior(x, y, cfg.model.noise_std, spec)
    pool = ExpertPool(expert_files(run / "experts", cfg.experts.num_experts), torch.device("cpu"))
    last = pool.num_snapshots - 1
    snaps = torch.stack([pool.snapshot(e, t) for e in range(len(pool.paths)) for t in range(last - 4, last + 1)])
    ref = load_tensors(run / "reference/samples.safetensors")["samples"]
    sources = {
        "expert snapshots (last 5 epochs)": spread(snaps.double(), mean, cov),
        "reference (full-batch HMC)": spread(ref.double(), mean, cov),
    }
    machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    out = Path(__file__).resolve().parent / "results"
    (out / "blr_diagnostics.json").write_text(
        json.dumps({"machine": machine, "descent": rows, "pi_x_sources": sources}, indent=2) + "\n"
    )
    lines = [
        "# BLR diagnostics (python experiments/blr_fidelity/blr_diagnostics.py, on runs/blr)",
        "",
        f"Machine: {machine}",
        "",
        "| divergence (w = 1) | objective | random start | exact-gradient descent | objective's coreset |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['divergence']} | {r['method']} | {r['start']:.2f} | {r['exact_descent']:.2f} | {r['pipeline']:.2f} |"
        for r in rows
    ]
    lines += ["", "| pi_x samples | max mean offset (posterior sd) | mean spread / posterior sd |", "|---|---|---|"]
    lines += [f"| {k} | {v['max_mean_offset_sd']:.2f} | {v['mean_spread_ratio']:.2f} |" for k, v in sources.items()]
    (out / "blr_diagnostics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
