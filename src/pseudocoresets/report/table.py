"""The paper's Table 1 layout: rows ipc x method, columns protocol x (accuracy, NLL), mean ± std over seeds.

Regression data sets show RMSE instead of accuracy."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..io import atomic_write_text, write_root
from ..evaluation import PROTOCOLS
from ..objectives import method_names
from .coresets import cell_rows
from .results import SPREAD, collect_results, format_metric, present_columns

HIGHER_IS_BETTER = {"accuracy", "agreement", "coverage_95"}


def table1_markdown(rows: list[dict]) -> str:
    """The coreset rows, and above them the full-data reference posterior (ipc 0) when the run has one."""
    references = [r for r in rows if r["ipc"] == 0]
    rows = [r for r in rows if r["ipc"] != 0]
    registered = list(PROTOCOLS)  # the registry's order (hmc first), then any other protocol by name
    protocols = sorted(
        {r["protocol"] for r in rows}, key=lambda p: (registered.index(p) if p in registered else len(registered), p)
    )
    datasets = sorted({r["dataset"] for r in rows})
    out = []
    for dataset in datasets:
        sub = [r for r in rows if r["dataset"] == dataset]
        first = "accuracy" if any("accuracy" in r for r in sub) else "rmse"
        pair = (first, "nll")
        title = "Acc (↑)" if first == "accuracy" else "RMSE (↓)"
        head = "| ipc | method | " + " | ".join(f"{p} {title} | {p} NLL (↓)" for p in protocols) + " |"
        out += [f"**{dataset}**", "", head, "|" + "---|" * (2 + 2 * len(protocols))]
        for ref in (r for r in references if r["dataset"] == dataset):
            values = [format_metric(ref[m]) if m in ref else "" for m in pair]
            out.append(f"| — | full data ({ref['protocol']}) | " + " | ".join(values * len(protocols)) + " |")
        best = {}
        for ipc in sorted({r["ipc"] for r in sub}):
            for p in protocols:
                cell = [r for r in sub if r["ipc"] == ipc and r["protocol"] == p]
                for m in pair:
                    values = [r[m]["mean"] for r in cell if m in r]
                    if values:
                        best[(ipc, p, m)] = max(values) if m in HIGHER_IS_BETTER else min(values)
        for ipc in sorted({r["ipc"] for r in sub}):
            for method in sorted({r["method"] for r in sub if r["ipc"] == ipc}, key=_method_order):
                cells = []
                for p in protocols:
                    r = next((r for r in sub if r["ipc"] == ipc and r["method"] == method and r["protocol"] == p), None)
                    for m in pair:
                        if r is None or m not in r:
                            cells.append("")
                            continue
                        text = format_metric(r[m])
                        cells.append(f"**{text}**" if r[m]["mean"] == best[(ipc, p, m)] else text)
                out.append(f"| {ipc} | {method} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _method_order(m: str) -> tuple:
    """The random baseline first, then the objectives in registry order (the paper's Table 1 order)."""
    order = list(method_names())
    base = m.split("+")[0]
    return (order.index(base) if base in order else len(order), m)


def table_csv(rows: list[dict]) -> str:
    """Every metric present in any row, mean and std (empty where a row lacks it or the value is exact)."""
    metrics = present_columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["dataset", "ipc", "method", "protocol", "coresets", "repeats"]
        + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    )

    def cell(r: dict, m: str, s: str) -> str:
        value = r.get(m, {}).get(s)
        return "" if value is None else f"{value:.6f}"

    for r in sorted(rows, key=lambda r: (r["dataset"], r["ipc"], _method_order(r["method"]), r["protocol"])):
        w.writerow(
            [r["dataset"], r["ipc"], r["method"], r["protocol"], r.get("coresets", 1), r["repeats"]]
            + [cell(r, m, s) for m in metrics for s in ("mean", "std")]
        )
    return buf.getvalue()


def write_table(out: Path) -> str:
    """table.md and table.csv over every finished evaluation under ``out``; returns the markdown."""
    with write_root(out):
        rows = cell_rows(collect_results(Path(out)))
        md = f"# Table 1\n\n{SPREAD}; best per ipc and protocol in bold\n\n" + table1_markdown(rows)
        atomic_write_text(Path(out) / "table.md", md)
        atomic_write_text(Path(out) / "table.csv", table_csv(rows))
        return md
