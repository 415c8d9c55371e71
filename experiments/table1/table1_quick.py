"""The paper's Table 1 at the quick preset with the yardstick's evaluation: ipc 1, 10 and 20 on the CIFAR-10 JPEG
copy (ipc 10 on Fashion-MNIST), rows Random, BPC-rKL, BPC-W, BPC-fKL and VBPC, columns HMC (coresets learnt
without augmentation), HMC (+Aug) and A-SGHMC (+Aug) (coresets learnt with DSA), three learnt coresets per cell,
evaluations run until their predictive has settled, gap shares against Random under the same protocol, and the
paper's claims checked with intervals over coreset seeds.

    python experiments/table1/table1_quick.py [--data cifar10|fashion-mnist] [--out runs/yardstick]
    python experiments/table1/table1_quick.py --summarise      # the results files from whatever has finished

The run directory is the yardstick's (experiments/yardstick) by default: artifacts are defined by their resolved
settings alone, so the yardstick's experts, reference and ipc-10 cells (Random, BPC-W, BPC-fKL and VBPC under
HMC) are reused, not recomputed. Work runs ipc 10 first, then 1, then 20; within an ipc, coreset seed 0 of every
row and column, then seeds 1 and 2, so a stopped grid has whole columns of its first seeds. Every stage resumes
after a kill; after every evaluation the results files are rewritten from what has finished, marked ``partial``
with the cells still missing. Each step's wall time and the process's peak resident memory so far are logged to
``<out>/<data>.table1.steps.jsonl``.

Random has nothing to learn, so its +Aug columns are Random under that protocol. The quick preset's experts are
trained without augmentation (the paper's MTT buffers use DSA); the +Aug coresets apply DSA to the coreset
inside the objective only.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "experiments" / "yardstick"))

from common import machine, write_results  # noqa: E402
from yardstick import SETTLE, config  # noqa: E402  (the yardstick's settings: its cells are this grid's)

import pseudocoresets as bpc  # noqa: E402
from pseudocoresets.report import figures  # noqa: E402

LEARNT = ["wasserstein", "fkl", "rkl", "vbpc"]
ROWS = ["random", *LEARNT]
IPCS = {"cifar10": [10, 1, 20], "fashion-mnist": [10]}
SEEDS = 3
# (column, protocol, whether the coreset is learnt with DSA)
COLUMNS = [("HMC", "hmc", False), ("HMC (+Aug)", "hmc", True), ("A-SGHMC (+Aug)", "asghmc", True)]
# "at ipc 1 W and fKL are comparable": the 95% interval of their accuracy difference inside +-MARGIN
MARGIN = 0.02


def method_name(row: str, augmented: bool) -> str:
    """The pipeline's method of a row in a column: ``+aug`` learns with DSA; Random has nothing to learn."""
    return f"{row}+aug" if augmented and row != "random" else row


def cells(data: str) -> list[tuple[int, int, str, str]]:
    """(ipc, seed, method, protocol) in the order the grid runs them."""
    out = []
    for ipc in IPCS[data]:
        for k in range(SEEDS):
            for _, protocol, augmented in COLUMNS:
                for row in ROWS:
                    cell = (ipc, k, method_name(row, augmented), protocol)
                    if cell not in out:
                        out.append(cell)
    return out


def grid_config(data: str) -> bpc.RunConfig:
    cfg = config(data)
    methods = []
    for _, _, augmented in COLUMNS:
        methods += [m for m in (method_name(r, augmented) for r in ROWS) if m not in methods]
    cfg.methods, cfg.ipcs, cfg.protocols = methods, IPCS[data], ["hmc", "asghmc"]
    cfg.reference.compare = []  # the ceiling is the yardstick's (references/ceiling.json)
    return cfg


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(data: str, out: Path) -> None:
    run = bpc.Run(grid_config(data), out / data, quiet=True)
    log = out / f"{data}.table1.steps.jsonl"

    def step(name: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        with log.open("a") as f:
            f.write(
                json.dumps({"step": name, "seconds": round(time.perf_counter() - t0, 1), "peak_mib": round(peak_mib())})
                + "\n"
            )

    step("experts", run.experts)
    step("reference", run.reference)
    for ipc, k, method, protocol in cells(data):
        step(f"distill {method} ipc {ipc} seed {k}", lambda: run.distill(method, ipc, k))
        step(f"evaluate {method} ipc {ipc} seed {k} {protocol}", lambda: run.evaluate(method, ipc, protocol, k))
        summarise(data, out)


def verdict(intervals: list[dict]) -> str:
    """holds: every difference's 95% interval above 0; does not hold: one below 0; else cannot tell."""
    if any(i.get("low") is None for i in intervals):
        return "cannot tell (too few coresets)"
    if any(i["high"] < 0 for i in intervals):
        return "does not hold"
    if all(i["low"] > 0 for i in intervals):
        return "holds"
    return "cannot tell"


def difference(report: dict, ipc: int, protocol: str, a: str, b: str, metric: str = "accuracy") -> dict | None:
    """The paired difference a - b of ``metric`` over coreset seeds (mean, 95% interval), from the report."""
    for d in report["differences"]:
        if d["ipc"] == ipc and d["protocol"] == protocol and {d["a"], d["b"]} == {a, b}:
            value = d.get(metric)
            if not isinstance(value, dict):
                return None
            where = {"ipc": ipc, "protocol": protocol, "a": a, "b": b, "metric": metric}
            if d["a"] == a:
                return {**value, **where}
            low, high = value.get("low"), value.get("high")
            return {
                "mean": -value["mean"],
                "low": None if high is None else -high,
                "high": None if low is None else -low,
                "n": value.get("n"),
                **where,
            }
    return None


def claims(report: dict, data: str) -> list[dict]:
    """The paper's Table 1 claims, each with its verdict and the paired differences it rests on (a - b, accuracy
    unless named: an NLL pair is written the other way round, so that above 0 is always "a is better")."""
    out = []

    def collect(pairs):
        found = [difference(report, *p) for p in pairs]  # (ipc, protocol, a, b[, metric]): a better than b
        return [d for d in found if d is not None], len(pairs) - sum(d is not None for d in found)

    def add(claim, pairs, rule):
        found, missing = collect(pairs)
        text = rule(found) if found else "cannot tell (not measured yet)"
        if found and missing:
            text = f"so far {text} ({missing} of {len(pairs)} comparisons not measured yet)"
        out.append({"claim": claim, "verdict": text, "differences": found})

    ipcs = IPCS[data]

    def beats_random(rows):  # higher accuracy and lower NLL than Random (the NLL pair as Random - method)
        return [
            pair
            for ipc in ipcs
            for _, protocol, aug in COLUMNS
            for row in rows
            for pair in (
                (ipc, protocol, method_name(row, aug), "random", "accuracy"),
                (ipc, protocol, "random", method_name(row, aug), "nll"),
            )
        ]

    paper_rows = [r for r in LEARNT if r != "vbpc"]  # the paper's Table 1 has no VBPC
    add(
        "all pseudocoresets (rKL, W, fKL) have higher accuracy and lower NLL than Random (every ipc and column)",
        beats_random(paper_rows),
        verdict,
    )
    add("VBPC (not in the paper) has higher accuracy and lower NLL than Random", beats_random(["vbpc"]), verdict)
    rkl = [
        (ipc, protocol, method_name(other, aug), method_name("rkl", aug))
        for ipc in ipcs
        for _, protocol, aug in COLUMNS
        for other in ("wasserstein", "fkl")
    ]
    add("BPC-rKL is slightly worse than BPC-W and BPC-fKL", rkl, verdict)
    if 1 in ipcs:
        same = [(1, protocol, method_name("wasserstein", aug), method_name("fkl", aug)) for _, protocol, aug in COLUMNS]

        def comparable(found):
            if any(d.get("low") is None for d in found):
                return "cannot tell (too few coresets)"
            if all(-MARGIN <= d["low"] and d["high"] <= MARGIN for d in found):
                return f"holds (every interval within ±{MARGIN})"
            if any(d["low"] > MARGIN or d["high"] < -MARGIN for d in found):
                return f"does not hold (an interval lies beyond ±{MARGIN})"
            return f"cannot tell (an interval reaches beyond ±{MARGIN})"

        add(f"at ipc 1 BPC-W and BPC-fKL are comparable (accuracy within ±{MARGIN})", same, comparable)
    grown = [i for i in ipcs if i > 1]
    no_aug = [
        (ipc, protocol, method_name("fkl", aug), method_name("wasserstein", aug))
        for ipc in grown
        for _, protocol, aug in COLUMNS
        if protocol == "hmc"
    ]
    add(
        "as ipc grows BPC-fKL is better than BPC-W without test-time augmentation (HMC columns, ipc > 1)",
        no_aug,
        verdict,
    )
    with_aug = [(ipc, "asghmc", "wasserstein+aug", "fkl+aug") for ipc in grown]
    add(
        "as ipc grows BPC-W is better than BPC-fKL with test-time augmentation (A-SGHMC (+Aug), ipc > 1)",
        with_aug,
        verdict,
    )
    return out


def fmt(x: dict | None, digits: int = 4) -> str:
    if not isinstance(x, dict) or x.get("mean") is None or not math.isfinite(x["mean"]):
        return "—"
    std = x.get("std")
    return f"{x['mean']:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def draw_coresets(directory: Path, data: str, ipc: int = 10) -> None:
    """Figures 1 and 2 from each row's first learnt coreset at ``ipc``: its images (a grid per method, without and
    with DSA) and the log amplitude of the diagonal of their 2-D Fourier transform, per method."""
    folder = HERE / "results" / "figures"
    for augmented in (False, True):
        found = {}
        for row in ROWS:
            path = directory / "coresets" / f"{method_name(row, augmented)}-ipc{ipc}"
            if (path / "manifest.json").is_file() and (path / "coreset.safetensors").is_file():
                found[method_name(row, augmented)] = path
        for method, path in found.items():
            classes = json.loads((path / "manifest.json").read_text()).get("classes")
            figures.coreset_grid(
                path, folder / f"fig1_{data}_{method}_ipc{ipc}", f"{method}, ipc {ipc}, {data}", classes
            )
        if len(found) > 1:
            figures.fourier_amplitude(found, folder / f"fig2_fourier_{data}_ipc{ipc}{'_aug' if augmented else ''}")


def summarise(data: str, out: Path) -> None:
    directory = out / data
    if not (directory / "evals").is_dir():
        return
    report = bpc.Run(grid_config(data), directory, quiet=True).report()
    done = {(e["ipc"], e.get("coreset_seed"), e["method"], e["protocol"]) for e in report["evaluations"]}
    missing = [f"{m} ipc {i} seed {k} {p}" for i, k, m, p in cells(data) if (i, k, m, p) not in done]
    log = out / f"{data}.table1.steps.jsonl"
    steps = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    rows_by = {(r["ipc"], r["method"], r["protocol"]): r for r in report["rows"]}
    shares = {(g["ipc"], g["method"], g["protocol"]): g["share"] for g in report["gap_shares"]}
    grid = []
    paper = ["| ipc | method | " + " | ".join(f"{c} Acc (↑) | {c} NLL (↓)" for c, _, _ in COLUMNS) + " |"]
    paper.append("|---|---|" + "---|" * (2 * len(COLUMNS)))
    more = [
        "| ipc | method | " + " | ".join(f"{c} ECE | {c} agreement | {c} gap share [95%]" for c, _, _ in COLUMNS) + " |"
    ]
    more.append("|---|---|" + "---|" * (3 * len(COLUMNS)))
    for ipc in sorted(IPCS[data]):
        for row in ROWS:
            first, second = [], []
            for column, protocol, aug in COLUMNS:
                r = rows_by.get((ipc, method_name(row, aug), protocol)) or {}
                s = shares.get((ipc, method_name(row, aug), protocol))
                coresets = r.get("coresets") or 0
                share = "—" if s is None else f"{s['mean']:.3f}"
                if s is not None and s.get("low") is not None:
                    share += f" [{s['low']:.3f}, {s['high']:.3f}]"
                first += [
                    fmt(r.get("accuracy")) + (f" ({coresets})" if r and coresets < SEEDS else ""),
                    fmt(r.get("nll")),
                ]
                second += [fmt(r.get("ece")), fmt(r.get("agreement")), share]
                grid.append(
                    {
                        "ipc": ipc,
                        "row": row,
                        "column": column,
                        "method": method_name(row, aug),
                        "protocol": protocol,
                        "coresets": coresets,
                        **{k: r.get(k) for k in ("accuracy", "nll", "ece", "agreement")},
                        "gap_share": s,
                    }
                )
            paper.append(f"| {ipc} | {row} | " + " | ".join(first) + " |")
            more.append(f"| {ipc} | {row} | " + " | ".join(second) + " |")
    checked = claims(report, data)
    claim_lines = [
        "| claim (paper, Section 5) | verdict | paired differences a - b, above 0 when a is better [95% over coreset seeds] |",
        "|---|---|---|",
    ]
    for c in checked:
        diffs = "; ".join(
            f"ipc {d['ipc']} {d['protocol']} {d['metric']}: {d['a']} - {d['b']}: {d['mean']:+.3f}"
            + ("" if d.get("low") is None else f" [{d['low']:+.3f}, {d['high']:+.3f}]")
            for d in c["differences"]
        )
        claim_lines.append(f"| {c['claim']} | {c['verdict']} | {diffs or '—'} |")
    seconds = sum(s["seconds"] for s in steps)
    peak = max((s.get("peak_mib", 0) for s in steps), default=0)
    peak_text = f"peak resident memory {peak:.0f} MiB" if peak else "no step of this grid logged yet"
    total = len(cells(data))
    status = (
        f"**Partial**: {len(missing)} of {total} evaluations still missing ({', '.join(missing[:6])}"
        f"{', ...' if len(missing) > 6 else ''}); re-run the grid to continue.\n\n"
        if missing
        else "Complete.\n\n"
    )
    text = (
        f"{status}Quick preset, {data}{' (JPEG copy)' if data == 'cifar10' else ''}, ipc {', '.join(map(str, sorted(IPCS[data])))}; "
        f"`python experiments/table1/table1_quick.py --data {data}`. Stopping rule: {SETTLE}. Each cell: mean ± std "
        f"over {SEEDS} learnt coresets (one evaluation repeat of 4 chains each; a count in brackets: coresets so far). "
        f"Gap share: share of the Random-to-reference accuracy gap closed, against Random under the same protocol. "
        f"Wall time of this grid's steps so far: {seconds / 3600:.2f} h (steps the yardstick already ran cost 0 here); "
        f"{peak_text}.\n\n"
        + "\n".join(paper)
        + "\n\nCalibration, agreement with the full-data reference and gap share:\n\n"
        + "\n".join(more)
        + "\n\nThe paper's claims:\n\n"
        + "\n".join(claim_lines)
        + "\n"
    )
    payload = {
        "machine": machine(),
        "data": data,
        "partial": bool(missing),
        "missing": missing,
        "settings": SETTLE,
        "grid": grid,
        "claims": checked,
        "differences": report["differences"],
        "gap_shares": report["gap_shares"],
        "steps": steps,
    }
    write_results(f"table1_quick_{data}", payload, text, HERE / "results")
    draw_coresets(directory, data)
    lines = [{**g, "method": g["row"]} for g in grid]
    for metric in ("accuracy", "nll"):
        if any(isinstance(g.get(metric), dict) for g in lines):
            figures.table1_plot(
                lines,
                HERE / "results" / "figures" / f"table1_quick_{data}_{metric}",
                f"Table 1, quick preset, {data}: {metric} over {SEEDS} coresets (95% intervals)",
                metric,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="cifar10", choices=["cifar10", "fashion-mnist"])
    parser.add_argument("--out", default="runs/yardstick")
    parser.add_argument("--summarise", action="store_true", help="only write the results files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.summarise:
        run(args.data, out)
    summarise(args.data, out)


if __name__ == "__main__":
    main()
