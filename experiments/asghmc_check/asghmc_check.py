"""A first look at A-SGHMC with its defaults on a finished run's ipc-10 coresets (random, fkl).

    python experiments/asghmc_check/asghmc_check.py runs/quick [--steps 600 --burn-in 300 --test 2000]

One chain, one seed, the first ``--test`` test images; friction 0.1, temperature 0.01, step 1e-4, one kept
sample per 5 steps (the protocol's defaults), on each coreset's recorded posterior. Writes
experiments/asghmc_check/results/asghmc_check.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.config import from_dict  # noqa: E402
from pseudocoresets.evaluation import ProtocolContext  # noqa: E402
from pseudocoresets.evaluation.metrics import classification_metrics  # noqa: E402
from pseudocoresets.evaluation.protocols import asghmc  # noqa: E402
from pseudocoresets.io import read_json  # noqa: E402
from pseudocoresets.pipeline import Workspace, load_coreset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--burn-in", type=int, default=300)
    p.add_argument("--test", type=int, default=2000)
    args = p.parse_args()
    saved = read_json(args.run / "evals" / "fkl-ipc10-hmc" / "config.json")["config"]
    cfg = from_dict({**{k: v for k, v in saved.items() if k != "objective"}, "preset": "none"})
    ws = Workspace(cfg, args.run, torch.device("cpu"), quiet=True)
    # the protocol's own defaults (friction, step size, thinning) with the chain asked for: a run saved by an earlier
    # version carries HMC's chain options under their earlier shared names, which would reach A-SGHMC's section too
    own = asghmc.Config(chains=1, iterations=args.steps, burn_in=args.burn_in)
    own.validate()
    test, labels = ws.data.test_x[: args.test], ws.data.test_y[: args.test]
    rows = []
    for method in ("random", "fkl"):
        core = load_coreset(args.run / "coresets" / f"{method}-ipc10", torch.device("cpu"))
        # the shared evaluation options of the cell, resolved (A-SGHMC's own temperature 0.01 unless the run set one),
        # without convergence diagnostics (this check does not report them)
        common = dataclasses.replace(cfg.resolve(method, 10, asghmc.NAME).evaluation.common, diagnostic_points=0)
        ctx = ProtocolContext(
            ws.model(),
            core.images,
            core.labels,
            {"test": test},
            labels,
            common.posterior(core.posterior),
            common,
            prepare=ws.prepare,
        )
        probs, stats = asghmc.predict(ctx, own, 0)
        rows.append(
            {
                "method": method,
                **classification_metrics(probs["test"], labels),
                "samples": stats["samples"],
                "sampling_seconds": stats["sampling_seconds"],
            }
        )
        print(rows[-1], flush=True)
    lines = ["| method | accuracy | NLL | ECE | Brier | kept samples |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['method']} | {r['accuracy']:.4f} | {r['nll']:.4f} | {r['ece']:.4f} | {r['brier']:.4f} | {r['samples']} |"
        for r in rows
    ]
    note = (
        f"\nA-SGHMC, 1 chain of {args.steps} steps ({args.burn_in} burn-in), friction {own.friction}, temperature "
        f"{common.temperature}, step {own.step_size}, every {own.thin}th step kept; first {args.test} test "
        f"images of {args.run}; 1 seed.\n"
    )
    write_results(
        "asghmc_check",
        {"machine": machine(), "rows": rows, "args": {k: str(v) for k, v in vars(args).items()}},
        "\n".join(lines) + "\n" + note,
        RESULTS,
    )


if __name__ == "__main__":
    main()
