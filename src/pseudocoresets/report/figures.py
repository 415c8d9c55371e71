"""The paper's figures from artifacts (matplotlib; each figure saved as PNG and SVG).

- Figure 1, :func:`coreset_grid`: the images of a coreset, de-normalised (and ZCA inverted).
- Figure 2, :func:`fourier_amplitude`: log-amplitude of the 2-D Fourier transform per method, along the
  diagonal frequencies (k, k), averaged over images and channels.
- Figure 3, :func:`cost_plot`: memory and time per iteration against ipc per method (benchmark JSON).
- Figure 4, :func:`radar_plot`: per-corruption accuracy and NLL per method (evaluations with corruptions).
- Table 1 as a picture, :func:`table1_plot`: accuracy per ipc, one line per method and one panel per column, with
  95% Student-t intervals over the learnt coresets.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "pseudocoresets"  # SVG element ids from a fixed salt: reproducible files
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from scipy import stats  # noqa: E402

from ..data.preprocess import Preprocessor  # noqa: E402
from ..io import atomic_write_bytes, load_tensors  # noqa: E402
from .coresets import LEVEL  # noqa: E402


def _save(fig, path: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """``fig`` as ``path`` with each suffix of ``formats``, each written atomically (:mod:`pseudocoresets.io`)."""
    out = []
    for ext in formats:
        target = path.with_suffix(f".{ext}")
        buf = io.BytesIO()
        metadata = {"Date": None} if ext in ("svg", "pdf") else None  # the same figure, the same bytes
        fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight", metadata=metadata)
        atomic_write_bytes(target, buf.getvalue())
        out.append(target)
    plt.close(fig)
    return out


def is_image_coreset(path: Path) -> bool:
    with safe_open(str(Path(path) / "coreset.safetensors"), framework="pt") as f:
        return len(f.get_slice("images").get_shape()) == 4


def coreset_pixels(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Coreset images in [0, 1] (ZCA inverted, normalisation undone) and their labels."""
    t = load_tensors(Path(path) / "coreset.safetensors")
    return Preprocessor.from_state(t).to_pixels(t["images"]).float(), t["labels"]


def coreset_grid(
    path: Path, out: Path, title: str = "", classes: list[str] | None = None, formats: tuple[str, ...] = ("png", "svg")
) -> list[Path]:
    x, y = coreset_pixels(path)
    k = int(y.max()) + 1
    ipc = len(y) // k
    cols = min(ipc, 10)
    fig, axes = plt.subplots(k, cols, figsize=(cols * 0.9, k * 0.9), squeeze=False)
    for c in range(k):
        idx = torch.nonzero(y == c).flatten()[:cols]
        for j in range(cols):
            ax = axes[c][j]
            ax.axis("off")
            if j < len(idx):
                img = x[idx[j]].permute(1, 2, 0).numpy()
                ax.imshow(
                    img.squeeze(-1) if img.shape[-1] == 1 else img,
                    cmap="gray" if img.shape[-1] == 1 else None,
                    vmin=0,
                    vmax=1,
                    interpolation="nearest",  # the pixels as learnt, no smoothing
                )
        if classes:
            axes[c][0].set_title(classes[c], fontsize=6, loc="left")
    fig.suptitle(title, fontsize=9)
    return _save(fig, out, formats)


def diagonal_log_amplitude(x: torch.Tensor) -> torch.Tensor:
    """mean over images and channels of log|FFT2(x)| at frequencies (k, k), k = 0..H/2 (centred, DC removed)."""
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    amp = torch.fft.fftshift(torch.fft.fft2(x.double()), dim=(-2, -1)).abs().clamp_min(1e-12).log()
    amp = amp.mean(dim=(0, 1))
    h = amp.shape[0]
    c = h // 2
    return torch.stack([amp[c + i, c + i] for i in range(h - c)])


def fourier_amplitude(coresets: dict[str, Path], out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, path in coresets.items():
        x, _ = coreset_pixels(path)
        amp = diagonal_log_amplitude(x).numpy()
        ax.plot(range(1, len(amp)), amp[1:], label=name)  # k = 0 is the removed image mean
    ax.set_xlabel("diagonal frequency k (cycles per image)")
    ax.set_ylabel("mean log amplitude")
    ax.legend(fontsize=7)
    ax.set_title("Log amplitude of the 2-D Fourier transform")
    return _save(fig, out)


def cost_plot(rows: list[dict], out: Path, model: str) -> list[Path]:
    rows = [r for r in rows if r.get("model") == model and "error" not in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    for method in sorted({r["method"] for r in rows}):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["ipc"])
        a.plot([r["ipc"] for r in rs], [r["memory_mb"] for r in rs], marker="o", label=method)
        b.plot([r["ipc"] for r in rs], [r["seconds_per_iteration"] for r in rs], marker="o", label=method)
    a.set(xlabel="images per class", ylabel="memory (MB)", title=f"(a) memory, {model} ConvNet")
    b.set(xlabel="images per class", ylabel="seconds / iteration", title=f"(b) time, {model} ConvNet")
    a.legend(fontsize=7)
    return _save(fig, out)


def radar_plot(results: dict[str, dict], out: Path, title: str = "") -> list[Path]:
    """``results[method]`` is an evaluation's results.json with ``sets``; averages over severities per corruption."""
    names = sorted({k.rsplit("/", 1)[0] for r in results.values() for k in r.get("sets", {})})
    if not names:
        raise ValueError("no corrupted test sets in these evaluations; run with --evaluate.corruptions")
    angles = [2 * math.pi * i / len(names) for i in range(len(names))] + [0.0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), subplot_kw={"projection": "polar"})
    for metric, ax in zip(("accuracy", "nll"), axes):
        for method, r in results.items():
            vals = []
            for n in names:
                cells = [v[metric]["mean"] for k, v in r["sets"].items() if k.rsplit("/", 1)[0] == n]
                vals.append(sum(cells) / len(cells))
            ax.plot(angles, vals + vals[:1], label=method)
            ax.fill(angles, vals + vals[:1], alpha=0.1)
        ax.set_xticks(angles[:-1])
        ax.set_xticklabels([n.replace("_", "\n") for n in names], fontsize=6)
        ax.set_title("Acc (higher is better)" if metric == "accuracy" else "NLL (lower is better)", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(-0.3, -0.15))
    fig.suptitle(title, fontsize=10)
    return _save(fig, out)


CURVE_METRICS = ("surrogate", "matching_loss", "covariance", "matching_distance")


def curves_plot(expert_rows: list[dict], distill_rows: dict[str, list[dict]], out: Path) -> list[Path]:
    """Training curves from the runs' progress.jsonl: expert train loss per epoch (one line per expert), and per
    coreset its objective's own metric per iteration (a running mean over 10 iterations over the raw values)."""
    panels = (1 if expert_rows else 0) + len(distill_rows)
    cols = min(3, max(panels, 1))
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    flat = list(axes.flat)
    i = 0
    if expert_rows:
        ax = flat[i]
        for e in sorted({r["expert"] for r in expert_rows}):
            rs = sorted((r for r in expert_rows if r["expert"] == e), key=lambda r: r["epoch"])
            ax.plot([r["epoch"] for r in rs], [r["train_loss"] for r in rs], lw=1)
        ax.set(xlabel="epoch", ylabel="train NLL", title="experts")
        i += 1
    for name, rs in distill_rows.items():
        ax = flat[i]
        i += 1
        metric = next((m for m in CURVE_METRICS if any(m in r for r in rs)), None)
        if metric is None:
            continue
        pts = [(r["iteration"], r[metric]) for r in rs if isinstance(r.get(metric), (int, float))]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, lw=0.6, alpha=0.4)
        if len(ys) >= 10:
            smooth = [sum(ys[max(0, k - 9) : k + 1]) / len(ys[max(0, k - 9) : k + 1]) for k in range(len(ys))]
            ax.plot(xs, smooth, lw=1.2)
        ax.set(xlabel="iteration", ylabel=metric, title=name)
    for ax in flat[i:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out)


def agreement_plot(rows: list[dict], out: Path, title: str = "") -> list[Path]:
    """Agreement with and total variation to the full-data posterior's predictive, per coreset (mean ± std)."""
    rows = [r for r in rows if r.get("agreement")]
    labels = [f"{r['method']} ipc{r['ipc']}\n{r['protocol']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.1 * len(rows) + 2), 3.4))
    for ax, metric, better in zip(axes, ("agreement", "tv"), ("higher", "lower")):
        means = [r[metric]["mean"] for r in rows]
        stds = [r[metric]["std"] or 0.0 for r in rows]
        ax.bar(range(len(rows)), means, yerr=stds, capsize=3)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=6)
        ax.set_title(f"{'agreement' if metric == 'agreement' else 'total variation'} ({better} is better)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def half_interval(std: float | None, n: int) -> float:
    """Half the width of the 95% Student-t interval of a mean of n values with standard deviation ``std``:
    t_{0.975, n-1} std / sqrt(n), as the report's intervals (report/coresets.py); 0 for fewer than 2 values."""
    if n < 2 or not std:
        return 0.0
    return float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n)


def table1_plot(rows: list[dict], out: Path, title: str = "", metric: str = "accuracy") -> list[Path]:
    """``rows``: dicts with ``column`` (a panel), ``method`` (a line), ``ipc``, ``coresets`` (n) and ``metric`` as
    ``{"mean", "std"}`` over the coresets; a point's bar is the 95% Student-t interval of the mean over its n
    coresets (mean +- t_{n-1} std / sqrt(n)), none when n = 1. Rows without the metric are left out."""
    rows = [r for r in rows if isinstance(r.get(metric), dict) and r[metric].get("mean") is not None]
    columns = list(dict.fromkeys(r["column"] for r in rows))
    if not columns:
        raise ValueError(f"no row has {metric}")
    ipcs = sorted({r["ipc"] for r in rows})
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.2), squeeze=False, sharey=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for ax, column in zip(axes[0], columns):
        for j, method in enumerate(methods):
            rs = sorted((r for r in rows if r["column"] == column and r["method"] == method), key=lambda r: r["ipc"])
            if not rs:
                continue
            xs = [ipcs.index(r["ipc"]) + 0.06 * (j - (len(methods) - 1) / 2) for r in rs]
            means = [r[metric]["mean"] for r in rs]
            half = [half_interval(r[metric].get("std"), r.get("coresets", 1)) for r in rs]
            ax.errorbar(xs, means, yerr=half, marker="o", ms=4, capsize=3, lw=1, label=method)
        ax.set_xticks(range(len(ipcs)))
        ax.set_xticklabels([str(i) for i in ipcs])
        ax.set_xlim(-0.5, len(ipcs) - 0.5)
        ax.set(xlabel="images per class", title=column)
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)
