"""The yardstick study: Random, BPC-W, BPC-fKL and VBPC at ipc 10 on the quick preset, three learnt coresets per
method, HMC and A-SGHMC run until their predictive has settled, agreement with the full-data reference, and the
reference checked against a second one of each kind.

    python experiments/yardstick/yardstick.py [--data fashion-mnist|cifar10|all] [--out runs/yardstick]
    python experiments/yardstick/yardstick.py --summarise    # the results files from whatever has finished

Work runs in the order the results need it: the experts and the run's reference, coreset seed 0 of every method
with both protocols, the companion references (the ceiling), then seeds 1 and 2. Every stage resumes after a kill (finished stages are reused, an
interrupted one continues), so the study can run in chunks; after every evaluation the results files are
rewritten from what has finished, marked ``partial`` with the cells still missing until the grid is complete.
Each step's wall time is logged to ``<out>/<data>.steps.jsonl``.

Settings (on top of the quick preset): ``--distill.seeds 3``, ``--evaluate.repeats 1`` (the spread comes from the
coreset seeds; each evaluation is 4 chains), ``--evaluate.agreement``, ``--reference.compare csghmc,ensemble``,
the stopping rule on both protocols (``settle_rhat`` below) with caps of 640 HMC iterations and 4,000 A-SGHMC
steps per chain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine, write_results  # noqa: E402

import pseudocoresets as bpc  # noqa: E402

METHODS = ["random", "wasserstein", "fkl", "vbpc"]
PROTOCOLS = ["hmc", "asghmc"]
SEEDS = 3
IPC = 10
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SETTLE = {
    "hmc.settle_rhat": 1.1,
    "hmc.max_iterations": 640,
    "asghmc.settle_rhat": 1.1,
    "asghmc.max_iterations": 4000,
    "asghmc.thin": 50,  # 10 kept states per chain per 500 post-burn-in steps: scoring stays affordable
}


def config(data: str) -> bpc.RunConfig:
    overrides = {
        "methods": ",".join(METHODS),
        "ipcs": str(IPC),
        "protocols": ",".join(PROTOCOLS),
        "distill.seeds": SEEDS,
        "evaluate.repeats": 1,
        "evaluate.agreement": True,
        "reference.compare": "csghmc,ensemble",
        **SETTLE,
    }
    if data == "cifar10":
        overrides.update({"data.name": "cifar10", "data.root": str(CIFAR)})
    return bpc.make_config("quick", overrides=overrides)


def step(log: Path, name: str, fn) -> None:
    t0 = time.perf_counter()
    fn()
    with log.open("a") as f:
        f.write(json.dumps({"step": name, "seconds": round(time.perf_counter() - t0, 1)}) + "\n")


def run(data: str, out: Path) -> None:
    cfg = config(data)
    run = bpc.Run(cfg, out / data, quiet=True)
    log = out / f"{data}.steps.jsonl"
    step(log, "experts", run.experts)
    compare, cfg.reference.compare = cfg.reference.compare, []
    step(log, "reference", run.reference)  # the run's own reference first: the evaluations' agreement needs it
    for k in range(SEEDS):
        if k == 1:  # the ceiling (companion references) once the first coreset of every method is evaluated
            cfg.reference.compare = compare
            step(log, "reference ceiling", run.reference)
        for method in METHODS:
            step(log, f"distill {method} seed {k}", lambda: run.distill(method, IPC, k))
            for protocol in PROTOCOLS:
                step(log, f"evaluate {method} seed {k} {protocol}", lambda: run.evaluate(method, IPC, protocol, k))
                summarise(data, out)


def summarise(data: str, out: Path) -> None:
    directory = out / data
    if not (directory / "evals").is_dir():
        return
    report = bpc.Run(config(data), directory, quiet=True).report()
    ceiling_file = directory / "references" / "ceiling.json"
    ceiling = json.loads(ceiling_file.read_text()) if ceiling_file.is_file() else {}
    done = {(e["method"], e["protocol"], e["coreset_seed"]) for e in report["evaluations"] if e["ipc"] == IPC}
    missing = [f"{m} seed {k} {p}" for k in range(SEEDS) for m in METHODS for p in PROTOCOLS if (m, p, k) not in done]
    log = out / f"{data}.steps.jsonl"
    steps = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    evaluations = []
    for e in report["evaluations"]:
        results = json.loads((directory / e["run"] / "results.json").read_text()) if e["ipc"] else {}
        repeat = (results.get("repeats") or [{}])[0]
        evaluations.append(
            {
                **{k: e[k] for k in ("method", "protocol", "coreset_seed") if k in e},
                **{k: e[k]["mean"] for k in ("accuracy", "nll", "agreement", "tv") if isinstance(e.get(k), dict)},
                **{k: repeat.get(k) for k in ("iterations", "stopped", "settle_rhat", "halves_tv", "rhat_max")},
            }
        )
    payload = {
        "machine": machine(),
        "data": data,
        "partial": bool(missing),
        "missing": missing,
        "settings": SETTLE,
        "rows": report["rows"],
        "evaluations": evaluations,
        "differences": report["differences"],
        "gap_shares": report["gap_shares"],
        "ceiling": ceiling,
        "steps": steps,
    }
    status = (
        f"**Partial**: {len(missing)} of {SEEDS * len(METHODS) * len(PROTOCOLS)} evaluations still missing "
        f"({', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''}); re-run the study to continue.\n\n"
        if missing
        else "Complete.\n\n"
    )
    per_eval = [
        "| method | coreset seed | protocol | accuracy | NLL | agreement | iterations per chain | stopped | R-hat |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in sorted(
        evaluations, key=lambda e: (str(e.get("protocol")), str(e.get("method")), e.get("coreset_seed") or 0)
    ):
        if e.get("coreset_seed") is None:
            continue
        rhat = e.get("settle_rhat")
        per_eval.append(
            f"| {e['method']} | {e['coreset_seed']} | {e['protocol']} | {e.get('accuracy', float('nan')):.4f} | "
            f"{e.get('nll', float('nan')):.4f} | {e.get('agreement', float('nan')):.4f} | {e.get('iterations')} | "
            f"{e.get('stopped')} | {'—' if rhat is None else f'{rhat:.3f}'} |"
        )
    seconds = sum(s["seconds"] for s in steps)
    text = (
        f"{status}Quick preset, ipc {IPC}, {data}{' (JPEG copy)' if data == 'cifar10' else ''}; "
        f"`python experiments/yardstick/yardstick.py --data {data}`. Stopping rule: {SETTLE}. "
        f"Wall time of the steps so far: {seconds / 3600:.2f} h.\n\n"
        + report["markdown"]
        + "\nEvery evaluation (one repeat of 4 chains each):\n\n"
        + "\n".join(per_eval)
        + "\n"
    )
    write_results(f"yardstick_{data}", payload, text, HERE / "results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="all", choices=["fashion-mnist", "cifar10", "all"])
    parser.add_argument("--out", default="runs/yardstick")
    parser.add_argument("--summarise", action="store_true", help="only write the results files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for data in ["fashion-mnist", "cifar10"] if args.data == "all" else [args.data]:
        if args.summarise:
            summarise(data, out)
        else:
            run(data, out)
            summarise(data, out)


if __name__ == "__main__":
    main()
