"""Results of every finished evaluation of a run, as rows and as the run's markdown/JSON report.

Reads only the artifacts (``evals/*/results.json``); the pipeline calls :func:`write_report` at the end of
``bpc run``, and ``bpc report`` calls it on its own.
"""

from __future__ import annotations

import math

from pathlib import Path

from .. import integrity
from ..errors import UserError
from ..io import atomic_write_json, atomic_write_text, read_json, write_root
from .coresets import cell_rows, comparisons, comparisons_markdown

# every metric a results file may hold, in table order, with its column title; a table shows the columns that
# at least one of its rows has (classification: accuracy, NLL, ECE, Brier; regression: RMSE, NLL, coverage;
# Bayesian linear regression adds the exact divergences between the coreset and the full-data posterior)
COLUMNS = {
    "accuracy": "accuracy",
    "rmse": "RMSE",
    "nll": "NLL",
    "ece": "ECE",
    "brier": "Brier",
    "coverage_95": "95% coverage",
    "agreement": "agreement",
    "tv": "TV",
    "predictive_kl": "KL(ref‖pred)",
    "forward_kl": "exact KL(pi_x‖pi_u)",
    "reverse_kl": "exact KL(pi_u‖pi_x)",
    "w2": "exact W2",
    "acceptance_rate": "acceptance",
    "rhat_max": "R-hat (max)",
    "ess_min": "ESS (min)",
}
EXACT = ("forward_kl", "reverse_kl", "w2")
SPREAD = (
    "mean ± std over the learnt coresets of a row (each the mean of its evaluation repeats) where it has several "
    "(--distill.seeds), else over evaluation repeats; a single repeat has no std"
)


def collect_results(out: Path) -> list[dict]:
    """One row per finished evaluation: its identity and every metric as {"mean", "std"} (std None if exact);
    the full-data reference posterior, when the run has one, is a row with method "full data" and ipc 0."""
    rows = []
    ref = Path(out) / "reference"
    if (ref / "manifest.json").exists() and (ref / "results.json").exists():
        integrity.verify(ref, "reference")
        r = read_json(ref / "results.json")
        _check_summary(r, ref / "results.json", "bpc reference")
        rows.append(
            {
                "run": "reference",
                "method": r["method"],
                "ipc": 0,
                "protocol": r["protocol"],
                "dataset": r.get("dataset", ""),
                "repeats": 1,
                **r["summary"],
                "corrupted_mean": None,
            }
        )
    for path in sorted((Path(out) / "evals").glob("*/results.json")):
        if not (path.parent / "manifest.json").exists():
            continue
        integrity.verify(path.parent, "evaluation")
        r = read_json(path)
        _check_summary(r, path, "bpc evaluate")
        try:
            exact = {k: {"mean": r["exact"][k], "std": None} for k in EXACT if k in r.get("exact", {})}
            repeats = len(r["repeats"])
            summary = {m: _one_repeat(v, repeats) for m, v in r["summary"].items() if m in COLUMNS}
            rows.append(
                {
                    "run": str(path.parent.relative_to(out)),
                    "method": r["method"],
                    "ipc": r["ipc"],
                    "protocol": r["protocol"] + posterior_label(r.get("posterior")),
                    "dataset": r.get("dataset", ""),
                    "repeats": repeats,
                    "coreset_seed": r.get("coreset_seed", _identity_seed(path.parent)),
                    **summary,
                    **exact,
                    "corrupted_mean": r.get("corrupted_mean"),
                }
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(
                f"{path} is not a results file bpc wrote (no {exc}); delete {path.parent} and re-run 'bpc evaluate'"
            ) from exc
    return rows


def _identity_seed(directory: Path) -> int | None:
    """The coreset seed in an evaluation's identity (config.json), for results written before they recorded it."""
    try:
        seed = read_json(directory / "config.json")["config"]["distill"]["seed"]
    except (UserError, KeyError, TypeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _one_repeat(value: dict, repeats: int) -> dict:
    """A metric's {"mean", "std"}, with no std for a single repeat (results files record 0 there)."""
    return {**value, "std": None} if repeats == 1 and isinstance(value, dict) else value


def _check_summary(results, path: Path, command: str) -> None:
    """A results file's summary as bpc writes it: metric -> {"mean": number, "std": number or null}."""
    summary = results.get("summary") if isinstance(results, dict) else None
    ok = isinstance(summary, dict) and all(
        isinstance(v, dict)
        and all(
            isinstance(v.get(k), (int, float, type(None))) and not isinstance(v.get(k), bool) for k in ("mean", "std")
        )
        for v in summary.values()
    )
    if not ok:
        raise UserError(
            f"{path} is not a results file bpc wrote (its summary is not metric -> mean, std numbers); delete "
            f"{path.parent} and re-run '{command}'"
        )


def posterior_label(posterior: dict | None) -> str:
    """'' for the paper's unweighted coreset posterior (w = 1, no per-point weights), else what differs: the
    weight sampled and whether the coreset's learnt per-point weights were used, e.g. ' (w=600)',
    ' (learnt point weights)', ' (w=600, learnt point weights)', and ' (learnt targets)' when the sampled
    likelihood was the coreset's learnt targets."""
    posterior = posterior or {}
    parts = []
    if posterior.get("weight", 1) != 1:
        parts.append(f"w={posterior['weight']:g}")
    if posterior.get("point_weights"):
        parts.append("learnt point weights")
    if posterior.get("likelihood") == "learnt targets":
        parts.append("learnt targets")
    return f" ({', '.join(parts)})" if parts else ""


def format_metric(value: dict | None) -> str:
    """mean ± std; "—" where there is none (a sampler without a Metropolis test has no acceptance rate)."""
    if value is None or not math.isfinite(value["mean"]):
        return "—"
    return f"{value['mean']:.4f}" if value["std"] is None else f"{value['mean']:.4f} ± {value['std']:.4f}"


def present_columns(rows: list[dict], candidates=COLUMNS) -> list[str]:
    return [m for m in candidates if any(m in r for r in rows)]


def markdown_table(rows: list[dict]) -> str:
    """One line per cell (report/coresets.py: over coresets where a cell has several)."""
    rows = cell_rows(rows)
    columns = present_columns(rows)
    head = (
        "| dataset | ipc | method | protocol | " + " | ".join(COLUMNS[m] for m in columns) + " | coresets | repeats |"
    )
    lines = [head, "|" + "---|" * (len(columns) + 6)]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["ipc"], r["protocol"], r["method"])):
        cells = [format_metric(r.get(m)) for m in columns]
        lines.append(
            f"| {r['dataset']} | {r['ipc']} | {r['method']} | {r['protocol']} | "
            + " | ".join(cells)
            + f" | {r.get('coresets', 1) if r['ipc'] else '—'} | {r['repeats']} |"
        )
    return "\n".join(lines) + "\n"


def ceiling_markdown(rows: list[dict], ceiling: dict) -> str:
    """The run's reference against its companions (``references/ceiling.json``), then every evaluation's agreement
    as a fraction of each companion's: how much of the agreement two references reach a coreset reaches."""
    against = ceiling.get("against") or []
    if not against:
        return ""
    ref = ceiling["reference"]
    text = (
        f"\nReference against reference (the ceiling of agreement; the run's reference is {ref['sampler']}, "
        f"seed {ref['seed']}):\n\n| against | seed | agreement | TV | predictive KL | its accuracy |\n|---|---|---|---|---|---|\n"
    )
    for c in against:
        text += (
            f"| {c['sampler']} | {c['seed']} | {c['agreement']:.4f} | {c['tv']:.4f} | {c['predictive_kl']:.4f} | "
            f"{c['accuracy']:.4f} |\n"
        )
    agreeing = [r for r in rows if r.get("agreement") and r["method"] != "full data"]
    if agreeing:
        heads = " | ".join(f"÷ {c['sampler']} (seed {c['seed']})" for c in against)
        text += f"\nAgreement as a fraction of each ceiling:\n\n| dataset | ipc | method | protocol | agreement | {heads} |\n"
        text += "|---" * (5 + len(against)) + "|\n"
        for r in sorted(agreeing, key=lambda r: (r["dataset"], r["ipc"], r["protocol"], r["method"])):
            mean = r["agreement"]["mean"]
            fractions = " | ".join(f"{mean / c['agreement']:.3f}" if c["agreement"] > 0 else "—" for c in against)
            text += (
                f"| {r['dataset']} | {r['ipc']} | {r['method']} | {r['protocol']} | {format_metric(r['agreement'])} | "
                f"{fractions} |\n"
            )
    return text


def write_report(out: Path) -> dict:
    """``bpc report``: a markdown and a JSON table over every finished evaluation under ``out``."""
    out = Path(out)
    with write_root(out):
        rows = collect_results(out)
        if not rows:
            raise UserError(f"no finished evaluations under {out}/evals; run 'bpc evaluate' or 'bpc run' first")
        table = markdown_table(rows)
        cells = cell_rows(rows)
        corrupted = [r for r in cells if r.get("corrupted_mean")]
        if corrupted:
            columns = present_columns([r["corrupted_mean"] for r in corrupted])
            table += (
                "\nAverage over the corrupted test sets:\n\n| dataset | ipc | method | protocol | "
                + " | ".join(COLUMNS[m] for m in columns)
                + " |\n"
                + "|---" * (len(columns) + 4)
                + "|\n"
            )
            for r in sorted(corrupted, key=lambda r: (r["dataset"], r["ipc"], r["protocol"], r["method"])):
                c = r["corrupted_mean"]
                table += (
                    f"| {r['dataset']} | {r['ipc']} | {r['method']} | {r['protocol']} | "
                    + " | ".join(format_metric(c.get(m)) for m in columns)
                    + " |\n"
                )
        ceiling = (
            read_json(out / "references" / "ceiling.json") if (out / "references" / "ceiling.json").is_file() else {}
        )
        table += ceiling_markdown(cells, ceiling if isinstance(ceiling, dict) else {})
        compared = comparisons(rows)
        table += comparisons_markdown(compared)
        atomic_write_json(
            out / "report.json",
            {"rows": cells, "evaluations": rows, **compared, **({"ceiling": ceiling} if ceiling else {})},
        )
        atomic_write_text(out / "report.md", "# Results\n\n" + SPREAD + "\n\n" + table)
        return {"rows": cells, "evaluations": rows, "markdown": table, **compared}
