"""A first look at A-SGHMC with its defaults on a finished run's ipc-10 coresets (random, fkl).

    python experiments/asghmc_check/asghmc_check.py runs/quick [--steps 600 --burn-in 300 --test 2000]

One chain, one seed, the first ``--test`` test images; friction 0.1, temperature 0.01, step 1e-4, one kept
sample per 5 steps (the protocol's defaults). Writes experiments/asghmc_check/results/asghmc_check.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.config import eval_for, from_dict  # noqa: E402
from pseudocoresets.evaluation.metrics import classification_metrics  # noqa: E402
from pseudocoresets.evaluation.protocols import posterior_predictive  # noqa: E402
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
    ev = eval_for(cfg, 10, "asghmc")
    ev.chains, ev.iterations, ev.burn_in = 1, args.steps, args.burn_in
    test, labels = ws.data.test_x[: args.test], ws.data.test_y[: args.test]
    rows = []
    for method in ("random", "fkl"):
        core = load_coreset(args.run / "coresets" / f"{method}-ipc10", torch.device("cpu"))
        x, y = core.images, core.labels
        probs, stats = posterior_predictive(ws.model(), x, y, {"test": test}, ev, 0, prepare=ws.prepare)
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
        f"\nA-SGHMC, 1 chain of {args.steps} steps ({args.burn_in} burn-in), friction {ev.friction}, temperature "
        f"{ev.temperature}, step {ev.sghmc_step_size}, every {ev.thin}th step kept; first {args.test} test "
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
