"""The pipeline as Python functions (the ``bpc`` subcommands are thin wrappers around these).

Layout of a run directory ``out``::

    out/experts/                      config.json, expert_000.safetensors ..., manifest.json
    out/coresets/<method>-ipc<n>/     config.json, coreset.safetensors, manifest.json
    out/evals/<method>-ipc<n>-<protocol>/  config.json, results.json, manifest.json
    out/report.md, out/report.json

Every stage skips work that is already complete for the same configuration.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from ..config import RunConfig, eval_for
from ..data import ImageData, Normalizer, load_dataset
from ..distill import distill, random_real_subset
from ..errors import UserError
from ..evaluation import evaluate_coreset
from ..experts import sgd_trajectory
from ..models import FlatModel, build_convnet
from ..objectives.base import DistillContext, ExpertPool
from .artifacts import ArtifactDir
from .io import atomic_write_json, atomic_write_text, load_tensors, read_json, save_tensors


def _asdict(x) -> dict:
    return dataclasses.asdict(x)


class Workspace:
    """Data, normalisation and model of one run configuration, loaded once and shared by the stages."""

    def __init__(self, config: RunConfig, out: Path, device: torch.device, quiet: bool = False):
        self.config = config
        self.out = Path(out)
        self.device = device
        self.quiet = quiet
        self._data: ImageData | None = None
        self._norm: Normalizer | None = None
        self._train_x: torch.Tensor | None = None
        self._zca = None

    @property
    def data(self) -> ImageData:
        if self._data is None:
            self._data = load_dataset(self.config.data)
            self._norm = Normalizer.fit(self._data.train_x)
        return self._data

    @property
    def normalizer(self) -> Normalizer:
        _ = self.data
        assert self._norm is not None
        return self._norm

    @property
    def zca(self):
        """ZCA fitted on the normalised train split (when ``data.zca``), else None."""
        if self.config.data.zca and self._zca is None:
            from ..augment import ZCA

            self._zca = ZCA.fit(self.normalizer(self.data.train_x), self.config.data.zca_reg).to(self.device)
        return self._zca

    def prepare(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """Stored uint8 images -> network inputs: train-split normalisation, then the train-split ZCA."""
        x = self.normalizer(x_uint8.to(self.device))
        return self.zca.transform(x) if self.zca is not None else x

    def train_x(self) -> torch.Tensor:
        if self._train_x is None:
            self._train_x = self.prepare(self.data.train_x)
        return self._train_x

    def preprocessing_state(self) -> dict[str, torch.Tensor]:
        """What is needed to turn coreset tensors back into pictures (normalisation and ZCA)."""
        state = self.normalizer.state()
        if self.zca is not None:
            state.update({f"zca_{k}": v for k, v in self.zca.state().items()})
        return state

    def model(self) -> FlatModel:
        d = self.data
        return FlatModel(build_convnet(self.config.model, d.channels, d.image_size, d.num_classes)).to(self.device)

    # artifact identities -------------------------------------------------------------------------
    def experts_dir(self) -> ArtifactDir:
        cfg = {k: _asdict(getattr(self.config, k)) for k in ("data", "model", "experts")}
        return ArtifactDir(self.out / "experts", "experts", cfg)

    def coreset_dir(self, method: str, ipc: int) -> ArtifactDir:
        cfg = {**self.experts_dir().config, "distill": _asdict(self.config.distill_for(method, ipc))}
        return ArtifactDir(self.out / "coresets" / f"{method}-ipc{ipc}", "coreset", cfg)

    def eval_dir(self, method: str, ipc: int, protocol: str) -> ArtifactDir:
        ev = eval_for(self.config, ipc, protocol)
        cfg = {**self.coreset_dir(method, ipc).config, "evaluate": _asdict(ev)}
        return ArtifactDir(self.out / "evals" / f"{method}-ipc{ipc}-{protocol}", "evaluation", cfg)

    def augment(self, enabled: bool):
        """DSA (the paper's strategy) when ``enabled``, else None."""
        if not enabled:
            return None
        from ..augment import DSA

        return DSA()


def run_experts(ws: Workspace) -> Path:
    """Stage 1: ``num_experts`` SGD trajectories, one file each (finished experts are kept on re-runs)."""
    cfg = ws.config.experts
    cfg.validate()
    art = ws.experts_dir()
    if art.is_complete():
        return art.path
    model = ws.model()  # loads the data first: a missing dataset leaves no directory behind
    art.claim()
    x, y = ws.train_x(), ws.data.train_y.to(ws.device)
    timings = {}
    for e in range(cfg.num_experts):
        path = art.path / f"expert_{e:03d}.safetensors"
        if path.exists():
            try:
                if load_tensors(path)["trajectory"].shape[0] == cfg.epochs + 1:
                    continue
            except UserError:
                pass  # a broken file is retrained
        t0 = time.perf_counter()
        seed = cfg.seed + e
        log = []
        traj = sgd_trajectory(model, model.init(seed), x, y, cfg, seed, augment=ws.augment(cfg.augment),
                              on_epoch=lambda ep, loss: log.append(loss))
        save_tensors(path, {"trajectory": traj}, metadata={"seed": str(seed), "train_loss": ",".join(f"{v:.4f}" for v in log)})
        timings[f"expert_{e:03d}"] = time.perf_counter() - t0
        if not ws.quiet:
            print(f"expert {e + 1}/{cfg.num_experts}: final train loss {log[-1]:.4f} ({timings[f'expert_{e:03d}']:.1f}s)")
    art.finish(cfg.seed, timings, {"num_params": model.num_params, "snapshots": cfg.epochs + 1})
    return art.path


def expert_paths(ws: Workspace) -> list[Path]:
    art = ws.experts_dir()
    if not art.is_complete():
        raise UserError(f"no complete experts in {art.path} for this configuration; run 'bpc experts' first")
    return [art.path / f"expert_{e:03d}.safetensors" for e in range(ws.config.experts.num_experts)]


def run_distill(ws: Workspace, method: str, ipc: int) -> Path:
    """Stage 2: learn (or, for ``random``, draw) the coreset of one (method, ipc) cell."""
    cfg = ws.config.distill_for(method, ipc)
    cfg.validate(ws.config.experts.epochs)
    art = ws.coreset_dir(method, ipc)
    if art.is_complete():
        return art.path
    data = ws.data
    art.claim()
    g = torch.Generator()
    g.manual_seed(cfg.seed)
    idx = random_real_subset(data.train_y, data.num_classes, ipc, g)
    init = ws.prepare(data.train_x[idx])
    labels = data.train_y[idx].to(ws.device)
    experts = None if method == "random" else ExpertPool(expert_paths(ws), ws.device)
    context = DistillContext(ws.model(), experts, ws.train_x(), data.train_y.to(ws.device), data.num_classes,
                             ws.augment(cfg.augment), ws.device)
    t0 = time.perf_counter()
    images, summary = distill(cfg, context, init, labels, quiet=ws.quiet)
    elapsed = time.perf_counter() - t0
    save_tensors(art.path / "coreset.safetensors",
                 {"images": images, "labels": labels, "init_images": init, "init_indices": idx,
                  **ws.preprocessing_state()},
                 metadata={"method": method, "ipc": str(ipc)})
    atomic_write_json(art.path / "summary.json", summary)
    art.finish(cfg.seed, {"distill": elapsed}, {"method": method, "ipc": ipc, "classes": data.classes})
    return art.path


def load_coreset(path: Path, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    t = load_tensors(Path(path) / "coreset.safetensors", device)
    if "images" not in t or "labels" not in t or len(t["images"]) != len(t["labels"]):
        raise UserError(f"{path}/coreset.safetensors lacks matching 'images' and 'labels'; re-run 'bpc distill'")
    return t["images"].float(), t["labels"].long()


def run_evaluate(ws: Workspace, method: str, ipc: int, protocol: str) -> Path:
    """Stage 3: Bayesian evaluation of one coreset on the test split with one protocol."""
    ev = eval_for(ws.config, ipc, protocol)
    ev.validate()
    art = ws.eval_dir(method, ipc, protocol)
    if art.is_complete():
        return art.path
    core = ws.coreset_dir(method, ipc)
    if not core.is_complete():
        raise UserError(f"no complete coreset in {core.path}; run 'bpc distill' for {method} at ipc {ipc} first")
    _ = ws.data
    art.claim()
    x, y = load_coreset(core.path, ws.device)
    test_sets = {"test": ws.data.test_x.to(ws.device)}
    test_sets.update(corrupted_sets(ws, ev))
    t0 = time.perf_counter()
    results = evaluate_coreset(ws.model(), x, y, test_sets, ws.data.test_y.to(ws.device), ev, quiet=ws.quiet,
                               prepare=ws.prepare)
    results.update({"method": method, "ipc": ipc, "dataset": ws.config.data.name})
    atomic_write_json(art.path / "results.json", results)
    art.finish(ev.seed, {"evaluate": time.perf_counter() - t0}, {"method": method, "ipc": ipc})
    return art.path


def corruption_names(requested: list[str]) -> list[str]:
    from ..corruptions import CORRUPTIONS, STANDARD

    names: list[str] = []
    for item in requested:
        names += list(CORRUPTIONS if item == "all" else STANDARD if item == "standard" else [item])
    return list(dict.fromkeys(names))


def corrupted_sets(ws: Workspace, ev) -> dict[str, torch.Tensor]:
    """uint8 corrupted copies of the test split, generated once and cached next to the decoded data."""
    if not ev.corruptions:
        return {}
    from ..corruptions import corrupted_test_sets
    from ..data.datasets import default_cache_dir

    cache = Path(ws.config.data.cache_dir or default_cache_dir()) / "corruptions"
    sets = corrupted_test_sets(ws.data.test_x.numpy(), corruption_names(ev.corruptions), ev.severities,
                               seed=ev.seed, cache_dir=cache)
    return {f"{name}/{sev}": torch.from_numpy(arr).to(ws.device) for (name, sev), arr in sets}


def run_all(ws: Workspace) -> dict:
    """``bpc run``: experts (if any method needs them), every (method, ipc) coreset and its evaluation, report."""
    t0 = time.perf_counter()
    if any(m != "random" for m in ws.config.methods):
        run_experts(ws)
    for ipc in ws.config.ipcs:
        for method in ws.config.methods:
            run_distill(ws, method, ipc)
            for protocol in ws.config.protocols:
                run_evaluate(ws, method, ipc, protocol)
    report = write_report(ws.out)
    report["wall_seconds"] = time.perf_counter() - t0
    return report


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
