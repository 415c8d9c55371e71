"""The paper's Table 1 layout: rows ipc x method, columns protocol x (accuracy, NLL), mean ± std over seeds."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..io import atomic_write_text
from ..objectives import OBJECTIVES
from .results import collect_results

METRICS = ("accuracy", "nll", "ece", "brier")


def table1_markdown(rows: list[dict]) -> str:
    protocols = sorted({r["protocol"] for r in rows}, key=lambda p: (p != "hmc", p))
    datasets = sorted({r["dataset"] for r in rows})
    out = []
    for dataset in datasets:
        sub = [r for r in rows if r["dataset"] == dataset]
        head = "| ipc | method | " + " | ".join(f"{p} Acc (↑) | {p} NLL (↓)" for p in protocols) + " |"
        out += [f"**{dataset}**", "", head, "|" + "---|" * (2 + 2 * len(protocols))]
        best = {}
        for ipc in sorted({r["ipc"] for r in sub}):
            for p in protocols:
                cell = [r for r in sub if r["ipc"] == ipc and r["protocol"] == p]
                if cell:
                    best[(ipc, p, "accuracy")] = max(r["accuracy"]["mean"] for r in cell)
                    best[(ipc, p, "nll")] = min(r["nll"]["mean"] for r in cell)
        for ipc in sorted({r["ipc"] for r in sub}):
            for method in sorted({r["method"] for r in sub if r["ipc"] == ipc}, key=_method_order):
                cells = []
                for p in protocols:
                    r = next((r for r in sub if r["ipc"] == ipc and r["method"] == method and r["protocol"] == p), None)
                    for m in ("accuracy", "nll"):
                        if r is None:
                            cells.append("")
                            continue
                        text = f"{r[m]['mean']:.4f} ± {r[m]['std']:.4f}"
                        cells.append(f"**{text}**" if r[m]["mean"] == best[(ipc, p, m)] else text)
                out.append(f"| {ipc} | {method} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _method_order(m: str) -> tuple:
    """The random baseline first, then the objectives in registry order (the paper's Table 1 order)."""
    order = ["random", *OBJECTIVES]
    base = m.split("+")[0]
    return (order.index(base) if base in order else len(order), m)


def table_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["dataset", "ipc", "method", "protocol", "repeats"]
               + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")])
    for r in sorted(rows, key=lambda r: (r["dataset"], r["ipc"], _method_order(r["method"]), r["protocol"])):
        w.writerow([r["dataset"], r["ipc"], r["method"], r["protocol"], r["repeats"]]
                   + [f"{r[m][s]:.6f}" for m in METRICS for s in ("mean", "std")])
    return buf.getvalue()


def write_table(out: Path) -> str:
    """table.md and table.csv over every finished evaluation under ``out``; returns the markdown."""
    rows = collect_results(Path(out))
    md = "# Table 1\n\nmean ± std over evaluation seeds; best per ipc and protocol in bold\n\n" + table1_markdown(rows)
    atomic_write_text(Path(out) / "table.md", md)
    atomic_write_text(Path(out) / "table.csv", table_csv(rows))
    return md
