"""Results files of the medium-scale evaluation from whatever of its run has finished.

    python experiments/medium_evaluation/summarise.py OUT STEP_LOG SETTINGS

Reads the run's report.json (``bpc report``), its artifacts' manifests and per-repeat timings, and the script's
step log; writes ``results/medium_evaluation.{md,json}`` beside this file and copies Figure 4's radar plots. The
markdown holds Table 1 in the paper's layout (HMC and A-SGHMC columns, and VBPC's protocol), the share of the
Random-to-reference accuracy gap that each method closes under each protocol, Figure 4 as a table (accuracy and
NLL per corruption, averaged over the five severities), and each stage's time. Cells not yet run are listed as
missing.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import machine, write_results  # noqa: E402

RESULTS = Path(__file__).parent / "results"
METHODS = ("random", "rkl", "wasserstein", "fkl", "vbpc")
PROTOCOLS = ("hmc", "asghmc", "vbpc")
PLANNED = {(ipc, m, p) for ipc in (1, 10) for m in METHODS for p in ("hmc", "asghmc")} | {
    (ipc, m, "vbpc") for ipc in (1, 10) for m in ("random", "vbpc")
}


def cell(row: dict, key: str) -> str:
    value = row.get(key)
    if not value or value.get("mean") is None:
        return "—"
    mean, std = value["mean"], value.get("std")
    return f"{mean:.4f}" if not std or row.get("repeats", 1) < 2 else f"{mean:.4f} ± {std:.4f}"


def stage_seconds(out: Path) -> dict[str, dict]:
    stages = {}
    for manifest in sorted(out.glob("**/manifest.json")):
        name = str(manifest.parent.relative_to(out))
        timings = json.loads(manifest.read_text()).get("timings_seconds", {})
        # a stage that records its "total" also lists parts of it (the reference: sampling within total)
        entry: dict = {"seconds": round(timings.get("total", sum(timings.values())), 1)}
        if len(timings) > 1:  # e.g. one time per expert
            entry["parts"] = {k: round(v, 1) for k, v in timings.items()}
        results = manifest.parent / "results.json"
        if results.exists():
            repeats = json.loads(results.read_text()).get("repeats", [])
            entry["sampling_scoring"] = [
                [round(r["sampling_seconds"]), round(r.get("prediction_seconds") or 0)]
                for r in repeats
                if r.get("sampling_seconds") is not None
            ]
        stages[name] = entry
    return stages


def per_corruption(out: Path, ipc: int) -> dict[str, dict[str, dict[str, float]]]:
    """{run: {corruption: {accuracy, nll}}}, each averaged over its severities (the repeats' means)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for results in sorted(out.glob(f"evals/*-ipc{ipc}-*/results.json")):
        sets = json.loads(results.read_text()).get("sets") or {}
        by_corruption: dict[str, list[dict]] = {}
        for name, metrics in sets.items():
            corruption, _, _ = name.partition("/")
            by_corruption.setdefault(corruption, []).append(metrics)
        if by_corruption:
            table[results.parent.name] = {
                c: {k: sum(m[k]["mean"] for m in ms) / len(ms) for k in ("accuracy", "nll")}
                for c, ms in by_corruption.items()
            }
    return table


def main() -> None:
    out, log, settings = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    rows = json.loads((out / "report.json").read_text())["rows"]
    reference = next((r for r in rows if r["method"] == "full data"), None)
    by_cell = {(r["ipc"], r["method"], r["protocol"]): r for r in rows if r["method"] != "full data"}
    steps: dict[str, int] = {}  # a step's seconds summed over the invocations that ran it (a resumed step adds little)
    for line in log.read_text().splitlines() if log.exists() else []:
        name, seconds = line.split()
        steps[name] = steps.get(name, 0) + int(seconds)
    m = machine()
    lines = [
        "The paper's evaluation at the medium scale: CIFAR-10 JPEG copy, ipc 1 and 10, HMC and A-SGHMC.",
        f"Command: `{settings} bash experiments/medium_evaluation/medium_evaluation.sh`.",
        "",
    ]
    missing = sorted(PLANNED - set(by_cell))
    if missing:
        lines += [
            "Not yet run (the script resumes where it stopped): "
            + ", ".join(f"{method} ipc {i} {p}" for i, method, p in missing)
            + ".",
            "",
        ]
    ref_acc = reference["accuracy"]["mean"] if reference else None
    if reference:
        lines += [
            f"Full-data reference posterior ({reference['protocol']}): accuracy {ref_acc:.4f}, NLL "
            f"{reference['nll']['mean']:.4f}, ECE {reference['ece']['mean']:.4f}.",
            "",
        ]
    lines += ["## Table 1 (clean test split, 10,000 images)", ""]
    head = "| ipc | method |"
    for p in PROTOCOLS:
        head += f" {p} accuracy | {p} NLL | {p} ECE | {p} agreement |"
    lines += [head, "|---|---|" + "---|" * (4 * len(PROTOCOLS))]
    for ipc in (1, 10):
        for method in METHODS:
            if not any((ipc, method, p) in by_cell for p in PROTOCOLS):
                continue
            line = f"| {ipc} | {method} |"
            for p in PROTOCOLS:
                r = by_cell.get((ipc, method, p), {})
                line += "".join(f" {cell(r, k)} |" for k in ("accuracy", "nll", "ece", "agreement"))
            lines.append(line)
    lines += [""]
    shares = {}
    if ref_acc is not None:
        lines += [
            "Share of the gap from Random to the reference closed in accuracy, (method - Random) / (reference - "
            "Random), Random under the same protocol:",
            "",
            "| ipc | protocol | " + " | ".join(METHODS[1:]) + " |",
            "|---|---|" + "---|" * (len(METHODS) - 1),
        ]
        for ipc in (1, 10):
            for p in PROTOCOLS:
                base = by_cell.get((ipc, "random", p))
                if not base:
                    continue
                b = base["accuracy"]["mean"]
                values = {}
                for method in METHODS[1:]:
                    r = by_cell.get((ipc, method, p))
                    if r:
                        values[method] = (r["accuracy"]["mean"] - b) / (ref_acc - b)
                shares[f"ipc{ipc}-{p}"] = values
                lines.append(
                    f"| {ipc} | {p} | "
                    + " | ".join(f"{values[k]:.2f}" if k in values else "—" for k in METHODS[1:])
                    + " |"
                )
        lines += [""]
    figure = per_corruption(out, 10)
    if figure:
        corruptions = sorted({c for runs in figure.values() for c in runs})
        lines += [
            "## Figure 4 as a table (ipc 10; each corruption's accuracy / NLL averaged over severities 1-5)",
            "",
            "| run | " + " | ".join(corruptions) + " |",
            "|---|" + "---|" * len(corruptions),
        ]
        for run, values in figure.items():
            lines.append(
                f"| {run} | "
                + " | ".join(f"{values[c]['accuracy']:.3f} / {values[c]['nll']:.2f}" for c in corruptions)
                + " |"
            )
        lines += [""]
    stages = stage_seconds(out)
    lines += ["## Time", "", "Wall seconds per step of the script, summed over the invocations that ran it:", ""]
    lines += [f"- {name}: {seconds} s" for name, seconds in steps.items()] + ["", "Each stage's own seconds:", ""]
    for name, entry in stages.items():
        extra = entry.get("sampling_scoring")
        detail = (
            " (per repeat, sampling / scoring: " + ", ".join(f"{a} / {b} s" for a, b in extra) + ")" if extra else ""
        )
        if "parts" in entry:
            detail += " (" + ", ".join(f"{k} {v} s" for k, v in entry["parts"].items()) + ")"
        lines.append(f"- {name}: {entry['seconds']} s{detail}")
    lines += ["", "## Every row of the run (`bpc report`)", ""]
    lines += (out / "report.md").read_text().splitlines()[4:]
    payload = {
        "machine": m,
        "settings": settings,
        "steps": steps,
        "stages": stages,
        "gap_shares": shares,
        "figure4": figure,
        "missing": [list(x) for x in missing],
        "report": rows,
    }
    write_results("medium_evaluation", payload, "\n".join(lines) + "\n", RESULTS)
    for svg in (out / "figures").glob("fig4_radar_*.svg"):
        shutil.copy(svg, RESULTS / svg.name)
    print("\n".join(lines[:40]))


if __name__ == "__main__":
    main()
