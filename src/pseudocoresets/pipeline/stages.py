"""The pipeline as Python functions (the ``bpc`` subcommands are thin wrappers around these).

Stages talk through artifact directories (layout in :mod:`.artifacts`); every stage skips work that is
already complete for the same configuration.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
from safetensors import safe_open

from ..augment import build_dsa
from ..config import RunConfig, eval_for
from ..data import FeatureScaler, ImageData, Preprocessor, TabularData, fit_preprocessor, load_dataset
from ..distill import distill, random_real_subset
from ..errors import UserError
from ..evaluation import evaluate_coreset
from ..evaluation.gaussian import exact_comparison
from ..experts import ExpertPool, expert_file, expert_files, save_trajectory, sgd_trajectory, trajectory_shape
from ..io import atomic_write_json, load_tensors, save_tensors
from ..models import FlatModel, build_likelihood, build_model
from ..objectives import DistillContext, objective_module
from ..report import write_report
from ..samplers import PosteriorSpec
from ..utils import generator
from .artifacts import ArtifactDir, coreset_path, evaluation_path, experts_path


def _asdict(x) -> dict:
    return dataclasses.asdict(x)


class Workspace:
    """Data, preprocessing and model of one run configuration, loaded once and shared by the stages."""

    def __init__(self, config: RunConfig, out: Path, device: torch.device, quiet: bool = False):
        self.config = config
        self.out = Path(out)
        self.device = device
        self.quiet = quiet
        self._data: ImageData | TabularData | None = None
        self._preprocessor: Preprocessor | FeatureScaler | None = None
        self._train_x: torch.Tensor | None = None

    @property
    def data(self) -> ImageData | TabularData:
        if self._data is None:
            likelihood = self.config.model.likelihood
            data = load_dataset(self.config.data)
            if data.is_image and likelihood != "categorical":
                raise UserError(f"{data.name} holds images with class labels; use --model.likelihood categorical")
            self._data = data if data.is_image else data.for_likelihood(likelihood)
        return self._data

    @property
    def is_regression(self) -> bool:
        return build_likelihood(self.config.model.likelihood).task == "regression"

    @property
    def preprocessor(self) -> Preprocessor | FeatureScaler:
        """Images: train-split normalisation and (``data.zca``) ZCA; tables: standardisation (+ intercept)."""
        if self._preprocessor is None:
            self._preprocessor = fit_preprocessor(self.data, self.config.data, self.device)
        return self._preprocessor

    def prepare(self, x_stored: torch.Tensor) -> torch.Tensor:
        """Stored inputs (uint8 images, raw table rows) -> network inputs."""
        return self.preprocessor(x_stored.to(self.device))

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Labels (int64) or real targets (in the model's float32) on the device."""
        return y.to(self.device, torch.float32 if y.is_floating_point() else torch.int64)

    def train_x(self) -> torch.Tensor:
        if self._train_x is None:
            self._train_x = self.prepare(self.data.train_x)
        return self._train_x

    def model(self) -> FlatModel:
        d = self.data
        outputs = build_likelihood(self.config.model.likelihood).num_outputs(d.num_classes)
        input_shape = tuple(self.prepare(d.train_x[:1]).shape[1:])  # after preprocessing (e.g. an intercept column)
        return build_model(self.config.model, input_shape, outputs).to(self.device)

    def check_image_options(self, augment: bool = False, corruptions: bool = False, protocol: str = "") -> None:
        """Augmentation, corrupted test sets and A-SGHMC exist for images only; one line before any work."""
        if self.config.data.is_image:
            return
        if augment:
            raise UserError("DSA augmentation (+aug, --experts.augment) works on images only; drop it for tabular data")
        if corruptions:
            raise UserError("corrupted test sets exist for images only; drop --evaluate.corruptions for tabular data")
        if protocol == "asghmc":
            raise UserError("asghmc augments images at every step; use --protocols hmc for tabular data")

    # artifact identities -------------------------------------------------------------------------
    def experts_dir(self) -> ArtifactDir:
        cfg = {k: _asdict(getattr(self.config, k)) for k in ("data", "model", "experts")}
        return ArtifactDir(experts_path(self.out), "experts", cfg)

    def coreset_dir(self, method: str, ipc: int) -> ArtifactDir:
        distill_cfg, objective_cfg = self.config.cell(method, ipc)
        cfg = {**self.experts_dir().config, "posterior": _asdict(self.config.posterior), "distill": _asdict(distill_cfg)}
        if objective_cfg is not None:
            cfg["objective"] = _asdict(objective_cfg)
        return ArtifactDir(coreset_path(self.out, method, ipc), "coreset", cfg)

    def eval_dir(self, method: str, ipc: int, protocol: str) -> ArtifactDir:
        ev = eval_for(self.config, ipc, protocol)
        cfg = {**self.coreset_dir(method, ipc).config, "evaluate": _asdict(ev)}
        return ArtifactDir(evaluation_path(self.out, method, ipc, protocol), "evaluation", cfg)


def needs_experts(method: str) -> bool:
    base = method.partition("+")[0]
    return base != "random" and objective_module(base).NEEDS_EXPERTS


def run_experts(ws: Workspace) -> Path:
    """Stage 1: ``num_experts`` SGD trajectories, one file each (finished experts are kept on re-runs)."""
    cfg = ws.config.experts
    cfg.validate()
    ws.check_image_options(augment=cfg.augment)
    art = ws.experts_dir()
    if art.is_complete():
        return art.path
    model = ws.model()  # loads the data first: a missing dataset leaves no directory behind
    art.claim()
    x, y = ws.train_x(), ws.targets(ws.data.train_y)
    timings = {}
    for e in range(cfg.num_experts):
        path = expert_file(art.path, e)
        shape = trajectory_shape(path)
        if shape is not None and shape[0] == cfg.epochs + 1:
            continue  # finished earlier; a missing or broken file is retrained
        t0 = time.perf_counter()
        seed = cfg.seed + e
        log = []
        augment = build_dsa(cfg.augment, per_image=cfg.augment_per_image)
        traj = sgd_trajectory(model, model.init(seed), x, y, cfg, seed, augment=augment,
                              on_epoch=lambda ep, loss: log.append(loss))
        save_trajectory(path, traj, seed, log)
        timings[f"expert_{e:03d}"] = time.perf_counter() - t0
        if not ws.quiet:
            print(f"expert {e + 1}/{cfg.num_experts}: final train loss {log[-1]:.4f} ({timings[f'expert_{e:03d}']:.1f}s)")
    art.finish(cfg.seed, timings, {"num_params": model.num_params, "snapshots": cfg.epochs + 1})
    return art.path


def expert_paths(ws: Workspace) -> list[Path]:
    art = ws.experts_dir()
    if not art.is_complete():
        raise UserError(f"no complete experts in {art.path} for this configuration; run 'bpc experts' first")
    return expert_files(art.path, ws.config.experts.num_experts)


def run_distill(ws: Workspace, method: str, ipc: int) -> Path:
    """Stage 2: learn (or, for ``random``, draw) the coreset of one (method, ipc) cell."""
    cfg, objective_cfg = ws.config.cell(method, ipc)
    uses_experts = needs_experts(method)
    cfg.validate(ws.config.experts.epochs if uses_experts else None)
    if objective_cfg is not None:
        objective_cfg.validate()
    ws.check_image_options(augment=cfg.augment)
    art = ws.coreset_dir(method, ipc)
    if art.is_complete():
        return art.path
    data = ws.data
    if method.partition("+")[0] == "dc" and ws.is_regression:
        raise UserError("dc matches gradients class by class; it needs class labels, not regression targets")
    art.claim()
    idx = random_real_subset(data.train_y, data.num_classes, ipc, generator(cfg.seed))
    init = ws.prepare(data.train_x[idx])
    labels = ws.targets(data.train_y[idx])
    experts = ExpertPool(expert_paths(ws), ws.device) if uses_experts else None
    posterior = ws.config.posterior.resolve(len(data.train_y), len(idx))
    context = DistillContext(ws.model(), experts, ws.train_x(), ws.targets(data.train_y), data.num_classes,
                             build_dsa(cfg.augment, per_image=cfg.augment_per_image), ws.device, posterior=posterior)
    t0 = time.perf_counter()
    images, summary = distill(cfg, objective_cfg, context, init, labels, quiet=ws.quiet)
    elapsed = time.perf_counter() - t0
    save_tensors(art.path / "coreset.safetensors",
                 {"images": images, "labels": labels, "init_images": init, "init_indices": idx,
                  **ws.preprocessor.state()},
                 metadata={"method": method, "ipc": str(ipc), "posterior": json.dumps(_asdict(posterior))})
    atomic_write_json(art.path / "summary.json", {**summary, "posterior": _asdict(posterior)})
    art.finish(cfg.seed, {"distill": elapsed}, {"method": method, "ipc": ipc, "classes": data.classes})
    return art.path


def load_coreset(path: Path, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, PosteriorSpec]:
    """Images, labels and the coreset posterior it was learnt for (w = T = sigma = 1 when not recorded)."""
    file = Path(path) / "coreset.safetensors"
    t = load_tensors(file, device)
    if "images" not in t or "labels" not in t or len(t["images"]) != len(t["labels"]):
        raise UserError(f"{file} lacks matching 'images' and 'labels'; re-run 'bpc distill'")
    try:
        with safe_open(str(file), framework="pt") as f:
            recorded = json.loads((f.metadata() or {}).get("posterior", "{}"))
        spec = PosteriorSpec(**recorded)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{file} holds a garbled posterior record ({exc}); re-run 'bpc distill'") from exc
    labels = t["labels"].float() if t["labels"].is_floating_point() else t["labels"].long()
    return t["images"].float(), labels, spec


def run_evaluate(ws: Workspace, method: str, ipc: int, protocol: str) -> Path:
    """Stage 3: Bayesian evaluation of one coreset on the test split with one protocol."""
    ev = eval_for(ws.config, ipc, protocol)
    ev.validate()
    ws.check_image_options(corruptions=bool(ev.corruptions), protocol=protocol)
    art = ws.eval_dir(method, ipc, protocol)
    if art.is_complete():
        return art.path
    core = ws.coreset_dir(method, ipc)
    if not core.is_complete():
        raise UserError(f"no complete coreset in {core.path}; run 'bpc distill' for {method} at ipc {ipc} first")
    _ = ws.data
    art.claim()
    x, y, recorded = load_coreset(core.path, ws.device)
    test_sets = {"test": ws.data.test_x.to(ws.device)}
    test_sets.update(corrupted_sets(ws, ev))
    t0 = time.perf_counter()
    model = ws.model()
    results = evaluate_coreset(model, x, y, test_sets, ws.targets(ws.data.test_y), ev, quiet=ws.quiet,
                               prepare=ws.prepare, recorded=recorded)
    results.update({"method": method, "ipc": ipc, "dataset": ws.config.data.name})
    if ws.config.model.arch == "linear" and ws.is_regression:  # Bayesian linear regression: everything exact
        results["exact"] = exact_comparison(ws.train_x(), ws.data.train_y, x, y, ws.config.model.noise_std,
                                            ev.posterior(recorded), ws.prepare(ws.data.test_x), ws.data.test_y)
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
    if any(needs_experts(m) for m in ws.config.methods):
        run_experts(ws)
    for ipc in ws.config.ipcs:
        for method in ws.config.methods:
            run_distill(ws, method, ipc)
            for protocol in ws.config.protocols:
                run_evaluate(ws, method, ipc, protocol)
    report = write_report(ws.out)
    report["wall_seconds"] = time.perf_counter() - t0
    return report


