"""Rows over several learnt coresets per cell (``--distill.seeds K``), and comparisons paired by coreset seed.

One evaluation scores one learnt coreset; its ``mean ± std`` is over evaluation repeats (chains re-run with new
seeds on the same coreset), which says nothing of how much the coreset itself would change if it were learnt
again. With K coresets per (dataset, ipc, method, protocol) cell, learnt with seeds s, s+1, ..., s+K-1:

- the cell's row: for every metric, the mean and the standard deviation (n - 1) over the K coresets of each
  coreset's mean over its evaluation repeats; with one coreset, the repeats' mean ± std as before, and no std at
  all for a single repeat (a spread of one value is not a spread);
- paired differences: for two methods of the same (dataset, ipc, protocol), d_k = m_A(s_k) - m_B(s_k) over the
  coreset seeds both have; the mean and its 95% interval mean ± t_{0.975, K-1} sd(d) / sqrt(K) (Student's t;
  pairing by seed removes what the two coresets share: the same initial real images, the same evaluation seeds);
- the share of the gap from Random to the full-data reference closed in accuracy, against Random under the same
  protocol only (a coreset evaluated by VBPC's last layer is never compared with Random under HMC):
  g_k = (acc_A(s_k) - acc_Random(s_k)) / (acc_ref - acc_Random(s_k)), its mean and 95% interval over seeds.
"""

from __future__ import annotations

import math
from itertools import combinations

from scipy import stats

COMPARED = ("accuracy", "nll")  # the metrics paired differences are reported for
LEVEL = 0.95


def _key(row: dict) -> tuple:
    return (row["dataset"], row["ipc"], row["method"], row["protocol"])


def _seed(row: dict) -> int:
    return row.get("coreset_seed") if row.get("coreset_seed") is not None else 0


def interval(values: list[float]) -> dict:
    """Mean and the 95% Student-t interval of the mean of ``values`` (no interval for fewer than 2)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def cell_rows(rows: list[dict]) -> list[dict]:
    """One row per (dataset, ipc, method, protocol) from the per-evaluation ``rows`` (results.collect_results):
    over coresets where the cell has several (module docstring), else the evaluation's own row. Every row gets
    ``coresets`` (how many) and ``coreset_seeds``."""
    if all("coresets" in row for row in rows):  # already one row per cell
        return list(rows)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(_key(row), []).append(row)
    out = []
    for group in groups.values():
        group = sorted(group, key=_seed)
        first = group[0]
        if len({_seed(r) for r in group}) < len(group):  # not coresets of one cell (e.g. another evaluation-time T)
            out += [{**r, "coresets": 1, "coreset_seeds": [_seed(r)]} for r in group]
            continue
        if len(group) == 1:
            out.append({**first, "coresets": 1, "coreset_seeds": [_seed(first)]})
            continue
        merged = {k: v for k, v in first.items() if not isinstance(v, dict) or k in ("corrupted_mean",)}
        merged.update(
            {"run": [r["run"] for r in group], "coresets": len(group), "coreset_seeds": [_seed(r) for r in group]}
        )
        merged["repeats"] = min(r["repeats"] for r in group)  # evaluation repeats per coreset (the fewest)
        metrics = {k for r in group for k, v in r.items() if isinstance(v, dict) and "mean" in v}
        for m in metrics:
            values = [r[m]["mean"] for r in group if isinstance(r.get(m), dict) and r[m].get("mean") is not None]
            if len(values) != len(group) or not all(math.isfinite(v) for v in values):
                continue
            mean = sum(values) / len(values)
            merged[m] = {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))}
        merged["corrupted_mean"] = _corrupted_over(group)
        out.append(merged)
    return out


def _corrupted_over(group: list[dict]) -> dict | None:
    """The corrupted sets' average over the coresets of a cell (mean ± std over coresets), when all have it."""
    if not all(r.get("corrupted_mean") for r in group):
        return None
    names = set.intersection(*(set(r["corrupted_mean"]) for r in group))
    out = {}
    for m in names:
        values = [r["corrupted_mean"][m]["mean"] for r in group]
        mean = sum(values) / len(values)
        out[m] = {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))}
    return out


def comparisons(rows: list[dict]) -> dict:
    """Paired differences between methods and gap shares against same-protocol Random, from the per-evaluation
    ``rows`` (module docstring): ``{"differences": [...], "gap_shares": [...]}``."""
    per_cell: dict[tuple, dict[str, dict[int, dict]]] = {}
    references = {r["dataset"]: r for r in rows if r["ipc"] == 0 and r["method"] == "full data"}
    ambiguous = set()
    for r in rows:
        if r["ipc"] == 0:
            continue
        cell = per_cell.setdefault((r["dataset"], r["ipc"], r["protocol"]), {})
        if _seed(r) in cell.setdefault(r["method"], {}):  # two evaluations of one coreset under one label
            ambiguous.add((r["dataset"], r["ipc"], r["protocol"]))
        cell[r["method"]][_seed(r)] = r
    for key in ambiguous:  # which of them to pair is not known: no comparison rather than a wrong one
        del per_cell[key]
    differences, shares = [], []
    for (dataset, ipc, protocol), methods in sorted(per_cell.items(), key=lambda kv: tuple(map(str, kv[0]))):
        for a, b in combinations(sorted(methods, key=lambda m: (m != "random", m)), 2):
            seeds = sorted(set(methods[a]) & set(methods[b]))
            if not seeds:
                continue
            entry = {"dataset": dataset, "ipc": ipc, "protocol": protocol, "a": b, "b": a, "seeds": seeds}
            for m in COMPARED:
                pairs = [(methods[b][s].get(m), methods[a][s].get(m)) for s in seeds]
                if all(x and y for x, y in pairs):
                    entry[m] = interval([x["mean"] - y["mean"] for x, y in pairs])
            differences.append(entry)
        ref = references.get(dataset)
        if "random" not in methods or ref is None or "accuracy" not in ref:
            continue
        target = ref["accuracy"]["mean"]
        for method, by_seed in sorted(methods.items()):
            if method == "random":
                continue
            seeds = sorted(set(by_seed) & set(methods["random"]))
            values, used = [], []
            for s in seeds:
                base, acc = methods["random"][s].get("accuracy"), by_seed[s].get("accuracy")
                if base and acc and target - base["mean"] > 0:  # a Random above the reference has no gap to close
                    values.append((acc["mean"] - base["mean"]) / (target - base["mean"]))
                    used.append(s)
            if values:
                shares.append(
                    {
                        "dataset": dataset,
                        "ipc": ipc,
                        "protocol": protocol,
                        "method": method,
                        "reference": ref["protocol"],
                        "seeds": used,
                        "share": interval(values),
                    }
                )
    return {"differences": differences, "gap_shares": shares}


def _interval_text(v: dict | None) -> str:
    if v is None:
        return "—"
    if v["low"] is None:
        return f"{v['mean']:+.4f} (one coreset: no interval)"
    return f"{v['mean']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}]"


def comparisons_markdown(found: dict) -> str:
    """The paired differences and the gap shares as markdown tables ("" when there is nothing to compare)."""
    text = ""
    if found["differences"]:
        text += (
            "\nPaired differences between methods, A − B, over the coreset seeds both have (mean [95% t-interval]; "
            "same protocol):\n\n| dataset | ipc | protocol | A − B | coresets | Δ accuracy | Δ NLL |\n"
            "|---|---|---|---|---|---|---|\n"
        )
        for d in found["differences"]:
            text += (
                f"| {d['dataset']} | {d['ipc']} | {d['protocol']} | {d['a']} − {d['b']} | {len(d['seeds'])} | "
                f"{_interval_text(d.get('accuracy'))} | {_interval_text(d.get('nll'))} |\n"
            )
    if found["gap_shares"]:
        text += (
            "\nShare of the accuracy gap from Random to the full-data reference closed, (method − Random) / "
            "(reference − Random), Random under the same protocol, per coreset seed (mean [95% t-interval]):\n\n"
            "| dataset | ipc | protocol | method | coresets | gap share | reference |\n|---|---|---|---|---|---|---|\n"
        )
        for g in found["gap_shares"]:
            share = g["share"]
            value = (
                f"{share['mean']:.3f}"
                if share["low"] is None
                else f"{share['mean']:.3f} [{share['low']:.3f}, {share['high']:.3f}]"
            )
            text += (
                f"| {g['dataset']} | {g['ipc']} | {g['protocol']} | {g['method']} | {len(g['seeds'])} | {value} | "
                f"{g['reference']} |\n"
            )
    return text
