"""One self-contained HTML page per run directory: table, figures (inlined SVG) and the configs.

Every file the page reads (the run's manifests, results, logs and configs, the figures it just drew, the benchmark
JSON of ``--bench``) goes through :func:`pseudocoresets.io.read_bytes`, and every coreset's tensor file is checked
by :func:`pseudocoresets.io.check_file` before a figure opens it: a FIFO, a device or an oversized file is refused
in one line, never a hang. A benchmark JSON must be an object whose ``rows`` are objects with the keys
the cost plot draws (``model``, ``method``, ``ipc``, ``memory_mb``, ``seconds_per_iteration``; a row with an
``error`` needs only ``model``); anything else is refused in one line."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from ..errors import UserError
from ..io import LOG_LIMIT, TENSOR_LIMIT, atomic_write_text, check_file, read_bytes, read_json, write_root
from .coresets import cell_rows
from .results import collect_results
from . import figures
from .table import table1_markdown, write_table


def make_figures(out: Path, bench_json: Path | None = None) -> list[Path]:
    """Every figure the artifacts of ``out`` allow, under ``out/figures``."""
    out = Path(out)
    bench_rows = read_bench(Path(bench_json)) if bench_json else []  # refused before any figure is drawn
    made: list[Path] = []
    fig_dir = out / "figures"
    coresets = sorted(p for p in (out / "coresets").glob("*") if (p / "manifest.json").exists())
    by_ipc: dict[int, dict[str, Path]] = {}
    for path in coresets:
        _check_tensors(path / "coreset.safetensors")
        if not figures.is_image_coreset(path):
            continue  # tabular coresets have no pictures
        manifest = read_json(path / "manifest.json")
        name = path.name.rsplit("-ipc", 1)[0]
        made += figures.coreset_grid(
            path, fig_dir / f"fig1_{path.name}", f"{name}, ipc {manifest.get('ipc')}", manifest.get("classes")
        )
        by_ipc.setdefault(int(manifest.get("ipc", 0)), {})[name] = path
    for ipc, group in by_ipc.items():
        made += figures.fourier_amplitude(group, fig_dir / f"fig2_fourier_ipc{ipc}")
    for model in sorted({r["model"] for r in bench_rows}):
        made += figures.cost_plot(bench_rows, fig_dir / f"fig3_cost_{model}", model)
    evals: dict[tuple[int, str], dict[str, dict]] = {}
    for path in sorted((out / "evals").glob("*/results.json")):
        r = read_json(path)
        if "sets" in r and not r.get("replicate"):  # a cell's first coreset (--distill.seeds)
            evals.setdefault((r["ipc"], r["protocol"]), {})[r["method"]] = r
    for (ipc, protocol), group in evals.items():
        made += figures.radar_plot(
            group, fig_dir / f"fig4_radar_ipc{ipc}_{protocol}", f"corrupted test sets, ipc {ipc}, {protocol}"
        )
    rows = [r for r in cell_rows(collect_results(out)) if r.get("agreement")]
    if rows:
        made += figures.agreement_plot(rows, fig_dir / "agreement", "predictive agreement with the full-data posterior")
    expert_rows = [row for log in sorted((out / "experts").glob("progress*.jsonl")) for row in read_jsonl(log)]
    distill_rows = {p.parent.name: read_jsonl(p) for p in sorted((out / "coresets").glob("*/progress.jsonl"))}
    distill_rows = {k: v for k, v in distill_rows.items() if v}
    if expert_rows or distill_rows:
        made += figures.curves_plot(expert_rows, distill_rows, fig_dir / "curves")
    return made


def _check_tensors(path: Path) -> None:
    """Refuse a tensor file that is not a regular file before the safetensors library opens it by name."""
    try:
        check_file(path, limit=TENSOR_LIMIT)
    except FileNotFoundError:
        raise UserError(f"{path} is missing; delete {path.parent} and re-run the stage that writes it") from None


BENCH_FIX = "give the JSON a benchmark wrote, e.g. benchmarks/results/distill_quick.json"
_NUMBERS = ("ipc", "memory_mb", "seconds_per_iteration")


def read_bench(path: Path) -> list[dict]:
    """The rows of a benchmark JSON (``--bench``) for the cost plot, refused in one line unless each is an object
    with a text ``model`` and ``method`` and numbers ``ipc``, ``memory_mb`` and ``seconds_per_iteration`` (a row
    with an ``error`` needs only ``model``)."""
    if not os.path.lexists(path):
        raise UserError(f"--bench {path} does not exist; {BENCH_FIX}")
    data = read_json(path, "--bench", fix=BENCH_FIX)
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise UserError(f"--bench {path} is not a benchmark JSON (an object with a list 'rows'); {BENCH_FIX}")
    for i, row in enumerate(rows):
        problem = _bench_row_problem(row)
        if problem:
            raise UserError(f"--bench {path}: row {i + 1} {problem}; {BENCH_FIX}")
    return rows


def _bench_row_problem(row) -> str | None:
    """What keeps one benchmark row out of the cost plot, or None."""
    if not isinstance(row, dict):
        return "is not an object"
    needed = ("model",) if "error" in row else ("model", "method")
    for key in needed:
        if not isinstance(row.get(key), str):
            return f"has no text '{key}'"
    if "error" in row:
        return None
    for key in _NUMBERS:
        if not isinstance(row.get(key), (int, float)) or isinstance(row.get(key), bool):
            return f"has no number '{key}'"
    return None


def read_jsonl(path: Path) -> list[dict]:
    """The readable lines of a progress log (a line cut by a kill ends it); [] when there is none."""
    rows = []
    if Path(path).exists():
        for line in read_bytes(path, "progress log", LOG_LIMIT).decode(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _md_table_to_html(md: str) -> str:
    lines, out, in_table = md.splitlines(), [], False
    for line in lines:
        if line.startswith("|") and set(line.replace("|", "").strip()) <= {"-"}:
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{_bold(html.escape(c))}</{tag}>" for c in cells) + "</tr>")
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.strip():
                out.append(f"<p>{_bold(html.escape(line))}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def _bold(text: str) -> str:
    parts = text.split("**")
    return "".join(p if i % 2 == 0 else f"<b>{p}</b>" for i, p in enumerate(parts))


def write_page(out: Path, bench_json: Path | None = None) -> Path:
    out = Path(out)
    with write_root(out):
        rows = cell_rows(collect_results(out))
        write_table(out)
        figs = [p for p in make_figures(out, bench_json) if p.suffix == ".svg"]
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>pseudocoresets report</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}figure{display:inline-block;margin:8px}"
            "pre{background:#f6f6f6;padding:6px;font-size:11px;overflow:auto}</style></head><body>",
            f"<h1>Report: {html.escape(str(out))}</h1>",
            "<h2>Table 1</h2>",
            _md_table_to_html(table1_markdown(rows)),
            "<h2>Figures</h2>",
        ]
        for f in figs:
            svg = read_bytes(f, "figure").decode(errors="replace")
            svg = svg[svg.find("<svg") :]
            parts.append(f"<figure>{svg}<figcaption>{html.escape(f.stem)}</figcaption></figure>")
        parts.append("<h2>Configurations</h2>")
        for cfg in sorted((out / "evals").glob("*/config.json")):
            parts.append(
                f"<details><summary>{html.escape(cfg.parent.name)}</summary><pre>"
                f"{html.escape(read_bytes(cfg, 'evaluation config').decode(errors='replace'))}</pre></details>"
            )
        parts.append("</body></html>")
        target = out / "report.html"
        atomic_write_text(target, "\n".join(parts))
        return target
