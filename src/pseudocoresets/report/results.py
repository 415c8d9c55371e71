"""Results of every finished evaluation of a run, as rows and as the run's markdown/JSON report.

Reads only the artifacts (``evals/*/results.json``); the pipeline calls :func:`write_report` at the end of
``bpc run``, and ``bpc report`` calls it on its own.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..io import atomic_write_json, atomic_write_text, read_json

METRICS = ("accuracy", "nll", "ece", "brier", "acceptance_rate")


def collect_results(out: Path) -> list[dict]:
    rows = []
    for path in sorted((Path(out) / "evals").glob("*/results.json")):
        if not (path.parent / "manifest.json").exists():
            continue
        r = read_json(path)
        rows.append({"run": str(path.parent.relative_to(out)), "method": r["method"], "ipc": r["ipc"],
                     "protocol": r["protocol"], "dataset": r.get("dataset", ""), "repeats": len(r["repeats"]),
                     **{m: r["summary"][m] for m in METRICS}, "corrupted_mean": r.get("corrupted_mean")})
    return rows


def markdown_table(rows: list[dict]) -> str:
    head = "| dataset | ipc | method | protocol | accuracy | NLL | ECE | Brier | acceptance | repeats |"
    lines = [head, "|" + "---|" * 10]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["ipc"], r["protocol"], r["method"])):
        cells = [f"{r[m]['mean']:.4f} ± {r[m]['std']:.4f}" for m in METRICS]
        lines.append(f"| {r['dataset']} | {r['ipc']} | {r['method']} | {r['protocol']} | " + " | ".join(cells)
                     + f" | {r['repeats']} |")
    return "\n".join(lines) + "\n"


def write_report(out: Path) -> dict:
    """``bpc report``: a markdown and a JSON table over every finished evaluation under ``out``."""
    out = Path(out)
    rows = collect_results(out)
    if not rows:
        raise UserError(f"no finished evaluations under {out}/evals; run 'bpc evaluate' or 'bpc run' first")
    table = markdown_table(rows)
    corrupted = [r for r in rows if r.get("corrupted_mean")]
    if corrupted:
        table += "\nAverage over the corrupted test sets:\n\n| dataset | ipc | method | protocol | accuracy | NLL | ECE | Brier |\n"
        table += "|---|---|---|---|---|---|---|---|\n"
        for r in sorted(corrupted, key=lambda r: (r["dataset"], r["ipc"], r["protocol"], r["method"])):
            c = r["corrupted_mean"]
            table += (f"| {r['dataset']} | {r['ipc']} | {r['method']} | {r['protocol']} | "
                      + " | ".join(f"{c[m]['mean']:.4f} ± {c[m]['std']:.4f}" for m in ("accuracy", "nll", "ece", "brier"))
                      + " |\n")
    atomic_write_json(out / "report.json", {"rows": rows})
    atomic_write_text(out / "report.md", "# Results\n\nmean ± std over repeats\n\n" + table)
    return {"rows": rows, "markdown": table}
