"""Why the default prior is N(0, 1): HMC test accuracy/NLL against the prior scale sigma, on a finished run.

    python experiments/prior_scale/prior_scale.py runs/quick [--sigmas 0.1,0.3,1.0]

Evaluates the run's random and fkl coresets at ipc 10 with the run's HMC settings (each cell resolved as the run
resolves it) on each coreset's recorded posterior, but 2 chains, 1 seed and the first 2,000 test images, for each
prior scale. Writes experiments/prior_scale/results/prior_scale.{json,md}.
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
from pseudocoresets.evaluation.protocols import hmc  # noqa: E402
from pseudocoresets.io import read_json  # noqa: E402
from pseudocoresets.pipeline import Workspace, load_coreset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--sigmas", default="0.1,0.3,1.0")
    args = p.parse_args()
    saved = read_json(args.run / "evals" / "fkl-ipc10-hmc" / "config.json")["config"]
    cfg = from_dict({**{k: v for k, v in saved.items() if k != "objective"}, "preset": "none"})
    ws = Workspace(cfg, args.run, torch.device("cpu"), quiet=True)
    test = ws.data.test_x[:2000]
    labels = ws.data.test_y[:2000]
    rows = []
    for method in ("random", "fkl"):
        core = load_coreset(args.run / "coresets" / f"{method}-ipc10", torch.device("cpu"))
        settings = cfg.resolve(method, 10, hmc.NAME).evaluation  # the run's HMC settings of this cell
        # the fixed budget these results were measured with (a quick run now settles: its settle_rhat is 1.1)
        own = dataclasses.replace(settings.own, chains=2, settle_rhat=0)
        for sigma in [float(s) for s in args.sigmas.split(",")]:
            # without convergence diagnostics (this study does not report them)
            common = dataclasses.replace(settings.common, prior_std=sigma, diagnostic_points=0)
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
            probs, stats = hmc.predict(ctx, own, 0)
            m = classification_metrics(probs["test"], labels)
            rows.append({"method": method, "prior_std": sigma, **m, "acceptance_rate": stats["acceptance_rate"]})
            print(rows[-1], flush=True)
    lines = ["| method | prior std | accuracy | NLL | acceptance |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['method']} | {r['prior_std']} | {r['accuracy']:.4f} | {r['nll']:.4f} | {r['acceptance_rate']:.2f} |"
        for r in rows
    ]
    write_results(
        "prior_scale",
        {"machine": machine(), "rows": rows, "run": str(args.run)},
        "\n".join(lines) + "\n\n2 chains, 1 seed, first 2,000 test images of " + str(args.run) + ".\n",
        RESULTS,
    )


if __name__ == "__main__":
    main()
