"""The pipeline as Python functions (the ``bpc`` subcommands are thin wrappers around these).

Stages talk through artifact directories (layout in :mod:`.artifacts`); every stage skips work that is
already complete for the same configuration.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from typing import Callable
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
from ..evaluation.protocols import METRICS, predictive_average, predictive_metrics, predictive_samples
from ..experts import ExpertPool, expert_file, expert_files, save_trajectory, sgd_trajectory, trajectory_shape
from ..io import atomic_write_json, atomic_write_text, load_tensors, save_tensors, read_json
from ..models import FlatModel, build_likelihood, build_model, resolve_precision
from ..objectives import DistillContext, objective_module
from ..reference import CSGHMCState, sample_csghmc, sample_hmc
from ..report import write_report
from ..samplers import PosteriorSpec
from .. import parallel
from ..utils import generator, progress_bar
from .interop import load_distilled, source_digest
from .artifacts import ArtifactDir, coreset_path, evaluation_path, experts_path, reference_path


def _asdict(x) -> dict:
    """A config section as it defines artifacts: every field, except those marked ``identity: "unless-set"`` while at
    their default (options added after artifacts existed, whose default keeps the old behaviour, so run directories
    made before the option stay valid), and those marked ``identity: "never"`` (how fast, not what is computed)."""
    out = dataclasses.asdict(x)
    for f in dataclasses.fields(x):
        never = f.metadata.get("identity") == "never"
        if never or (f.metadata.get("identity") == "unless-set" and out.get(f.name) == f.default):
            del out[f.name]
    return out


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
        model = build_model(self.config.model, input_shape, outputs).to(self.device)
        return model.with_precision(self.precision)

    @property
    def precision(self) -> str:
        """The compute precision actually used on this device (``auto`` resolved)."""
        return resolve_precision(self.config.model.precision, self.device)

    def model_identity(self) -> dict:
        """The model section as it defines artifacts: the resolved precision, recorded only when it is not fp32 (so
        fp32 runs keep the identity they had before the option existed)."""
        cfg = _asdict(self.config.model)
        cfg.pop("precision", None)
        if self.precision != "fp32":
            cfg["precision"] = self.precision
        return cfg

    def check_coreset(self, path: Path, x: torch.Tensor, y: torch.Tensor) -> None:
        """A loaded coreset fits this run's data: input shape, label range, finite values (one line if not)."""
        shape = tuple(self.prepare(self.data.train_x[:1]).shape[1:])
        problem = None
        if tuple(x.shape[1:]) != shape:
            problem = f"inputs of shape {tuple(x.shape[1:])}, the data's are {shape}"
        elif not torch.isfinite(x).all():
            problem = "non-finite values"
        elif not self.is_regression and len(y) and (int(y.min()) < 0 or int(y.max()) >= max(self.data.num_classes, 2)):
            problem = f"labels outside 0..{max(self.data.num_classes, 2) - 1}"
        if problem:
            raise UserError(f"{path} holds {problem}; delete its directory and re-run 'bpc distill'")

    def check_image_options(self, augment: bool = False) -> None:
        """DSA augmentation exists for images only; one line before any work."""
        if augment and not self.config.data.is_image:
            raise UserError("DSA augmentation (+aug, --experts.augment) works on images only; drop it for tabular data")

    def check_distill_cell(self, cfg) -> None:
        """What the data rule out for one coreset (``cfg``: its DistillConfig)."""
        self.check_image_options(augment=cfg.augment)
        if cfg.method == "dc" and self.is_regression:
            raise UserError("dc matches gradients class by class; it needs class labels, not regression targets")

    def check_eval_cell(self, ev) -> None:
        """What the data rule out for one evaluation (``ev``: its EvalConfig)."""
        if not self.config.data.is_image:
            if ev.corruptions:
                raise UserError("corrupted test sets exist for images only; drop --evaluate.corruptions for tabular data")
            if ev.protocol == "asghmc":
                raise UserError("asghmc augments images at every step; use --protocols hmc for tabular data")
        if ev.agreement and self.is_regression:
            raise UserError("--evaluate.agreement compares class predictives; for regression with --model.arch "
                            "linear the evaluation reports the exact divergences instead")

    def check_cells(self) -> None:
        """Every (method, ipc, protocol) cell of the run, before any work."""
        for method in self.config.methods:
            for ipc in self.config.ipcs:
                self.check_distill_cell(self.config.cell(method, ipc)[0])
                for protocol in self.config.protocols:
                    self.check_eval_cell(eval_for(self.config, ipc, protocol))

    # artifact identities -------------------------------------------------------------------------
    def experts_dir(self) -> ArtifactDir:
        cfg = {"data": _asdict(self.config.data), "model": self.model_identity(), "experts": _asdict(self.config.experts)}
        files = tuple(expert_file(experts_path(self.out), e).name for e in range(self.config.experts.num_experts))
        return ArtifactDir(experts_path(self.out), "experts", cfg, files)

    def reference_dir(self) -> ArtifactDir:
        cfg = {"data": _asdict(self.config.data), "model": self.model_identity(),
               "reference": _asdict(self.config.reference)}
        cfg["prior_std"] = self.config.posterior.prior_std
        return ArtifactDir(reference_path(self.out), "reference", cfg, ("samples.safetensors", "results.json"))

    def coreset_dir(self, method: str, ipc: int) -> ArtifactDir:
        distill_cfg, objective_cfg = self.config.cell(method, ipc)
        run_control = {"checkpoint_every", "snapshot_every"}  # how often to save, not what is computed
        learning = {k: v for k, v in _asdict(distill_cfg).items() if k not in run_control}
        if distill_cfg.method == "imported":  # what was imported, by content
            learning["import_sha256"] = source_digest(Path(distill_cfg.import_from))
        cfg = {**self.experts_dir().config, "posterior": _asdict(self.config.posterior), "distill": learning}
        if objective_cfg is not None:
            cfg["objective"] = _asdict(objective_cfg)
            version = getattr(objective_module(distill_cfg.method), "VERSION", 1)
            if version > 1:  # the objective's results changed since version 1: its older coresets are not these
                cfg["objective_version"] = version
        if needs_reference(method, objective_cfg):
            cfg["reference"] = self.reference_dir().config
        return ArtifactDir(coreset_path(self.out, method, ipc, self.config.posterior.tag()), "coreset", cfg,
                           ("coreset.safetensors", "summary.json"))

    def eval_dir(self, method: str, ipc: int, protocol: str) -> ArtifactDir:
        ev = eval_for(self.config, ipc, protocol)
        cfg = {**self.coreset_dir(method, ipc).config, "evaluate": _asdict(ev)}
        if ev.agreement:
            cfg["reference"] = self.reference_dir().config
        return ArtifactDir(evaluation_path(self.out, method, ipc, protocol, self.posterior_tag(ev)), "evaluation", cfg,
                           ("results.json",))

    def posterior_tag(self, ev) -> str:
        """The coreset's posterior suffix plus ``-eval-...`` for posterior options the user set for evaluation."""
        own = {"coreset_weight": "w", "temperature": "T", "prior_std": "prior"}
        parts = [f"{short}{getattr(ev, key):g}" for key, short in own.items()
                 if f"evaluate.{key}" in self.config.explicit and getattr(ev, key)]
        return self.config.posterior.tag() + ("-eval-" + "-".join(parts) if parts else "")


def needs_experts(method: str) -> bool:
    base = method.partition("+")[0]
    return base not in ("random", "imported") and objective_module(base).NEEDS_EXPERTS


def needs_reference(method: str, objective_cfg) -> bool:
    """Whether the objective of ``method`` reads full-data reference samples (its module's ``needs_reference``)."""
    base = method.partition("+")[0]
    if base in ("random", "imported") or objective_cfg is None:
        return False
    return bool(getattr(objective_module(base), "needs_reference", lambda cfg: False)(objective_cfg))


def run_experts(ws: Workspace) -> Path:
    """Stage 1: ``num_experts`` SGD trajectories, one file each (finished experts are kept on re-runs)."""
    cfg = ws.config.experts
    cfg.validate()
    ws.check_image_options(augment=cfg.augment)
    art = ws.experts_dir()
    if art.is_complete():
        return art.path
    model = ws.model()  # loads the data first: a missing dataset leaves no directory behind
    claim(art)
    x, y = ws.train_x(), ws.targets(ws.data.train_y)
    timings = {}
    done = [trajectory_shape(expert_file(art.path, e)) == (cfg.epochs + 1, model.num_params)
            for e in range(cfg.num_experts)]
    bar = progress_bar(cfg.num_experts * cfg.epochs, "experts (epochs)", ws.quiet, cfg.epochs * sum(done))
    for e in range(cfg.num_experts):
        path = expert_file(art.path, e)
        if done[e] or not parallel.mine(e):
            continue  # finished earlier (a missing, broken or mis-shaped file is retrained), or another rank's
        t0 = time.perf_counter()
        seed = cfg.seed + e
        partial = path.with_name(f"{path.stem}.partial.safetensors")  # its state after the last finished epoch
        resume = load_checkpoint(partial, EXPERT_KEYS, ws.device) or None
        log = [] if resume is None else [float(v) for v in resume["losses"]]
        bar.update(len(log))
        # progress.jsonl: one line per expert epoch; lines of this expert past its saved state are dropped
        metrics = ProgressLog(art.path / rank_log_name(),
                              keep=lambda row, e=e, n=len(log): row.get("expert") != e or row.get("epoch", 0) <= n)

        def on_epoch(epoch: int, loss: float, e=e, metrics=metrics) -> None:
            log.append(loss)
            metrics.write(epoch, {"expert": e, "train_loss": loss}, key="epoch")
            bar.update(1)

        augment = build_dsa(cfg.augment, per_image=cfg.augment_per_image)
        try:
            traj = sgd_trajectory(model, model.init(seed), x, y, cfg, seed, augment=augment,
                                  on_epoch=on_epoch, resume=resume,
                                  on_checkpoint=lambda state: save_tensors(partial, state))
        except UserError:  # diverged: its partial state is of no use to a corrected re-run
            partial.unlink(missing_ok=True)
            raise
        save_trajectory(path, traj, seed, log)
        partial.unlink(missing_ok=True)
        timings[f"expert_{e:03d}"] = time.perf_counter() - t0
        bar.set_postfix_str(f"expert {e + 1}: final train loss {log[-1]:.4f}")
    bar.close()
    for part in parallel.all_gather_objects(timings):  # also waits for every rank's experts
        timings.update(part)
    if parallel.is_main():
        art.finish(cfg.seed, timings, {"num_params": model.num_params, "snapshots": cfg.epochs + 1,
                                       "processes": parallel.world()})
    parallel.barrier()
    return art.path


def claim(art: ArtifactDir) -> None:
    """Rank 0 claims the directory (every other rank waits for it): the only writer of shared files."""
    if parallel.is_main():
        art.claim()
    parallel.barrier()


def rank_log_name() -> str:
    """progress.jsonl on rank 0 (and in one process); progress-rank<r>.jsonl for the work of another rank."""
    return "progress.jsonl" if parallel.is_main() else f"progress-rank{parallel.rank()}.jsonl"


def expert_paths(ws: Workspace) -> list[Path]:
    art = ws.experts_dir()
    if not art.is_complete():
        raise UserError(f"no complete experts in {art.path} for this configuration; run 'bpc experts' first")
    paths = expert_files(art.path, ws.config.experts.num_experts)
    expected = (ws.config.experts.epochs + 1, ws.model().num_params)
    for path in paths:
        shape = trajectory_shape(path)
        if shape != expected:
            found = "unreadable" if shape is None else f"shape {shape[0]}x{shape[1]}"
            raise UserError(f"{path} is damaged ({found}, expected {expected[0]}x{expected[1]}); delete it and "
                            "re-run 'bpc experts'")
    return paths


def load_checkpoint(path: Path, required: set[str], device: torch.device) -> dict[str, torch.Tensor]:
    """A stage's saved partial state, or {} when there is none; one clear line when it lacks what it must hold."""
    if not Path(path).exists():
        return {}
    state = load_tensors(path, device)
    missing = sorted(required - state.keys())
    if missing:
        raise UserError(f"{path} is incomplete (no {', '.join(missing)}); delete it to restart that part of the stage")
    return state


EXPERT_KEYS = {"snapshots", "velocity", "generator_state", "losses"}
CSGHMC_KEYS = {"position", "velocity", "cycle", "generator_state", "samples"}
DISTILL_KEYS = {"iteration", "images", "generator", "elapsed"}


def _chain_starts(ws: Workspace, count: int, g: torch.Generator, init_std: float) -> list[torch.Tensor]:
    """Final snapshots of the experts (one per chain, cycling) when the run has experts, else N(0, init_std^2 I)."""
    if ws.experts_dir().is_complete():
        pool = ExpertPool(expert_paths(ws), ws.device)
        return [pool.snapshot(c % len(pool.paths), pool.num_snapshots - 1).float() for c in range(count)]
    n = ws.model().num_params
    return [init_std * torch.randn(n, generator=g, device=ws.device) for _ in range(count)]


def run_reference(ws: Workspace) -> Path:
    """The full-data reference posterior: samples (samples.safetensors), its own metrics on the test split
    (results.json, the "Full data" row) and its predictive per test set (predictive/, filled on demand).
    cSGHMC chains save their state after every cycle (chain_<c>.safetensors), HMC chains when they finish, so a
    killed run resumes where it stopped."""
    cfg = ws.config.reference
    cfg.validate()
    ws.config.posterior.validate()
    art = ws.reference_dir()
    if art.is_complete():
        return art.path
    try:  # under torchrun the chains are split round robin; rank 0 gathers them from their files and writes
        return _sample_reference(ws, cfg, art)
    finally:
        parallel.barrier()


def _sample_reference(ws: Workspace, cfg, art: ArtifactDir) -> Path:
    model = ws.model()
    x, y = ws.train_x(), ws.targets(ws.data.train_y)
    if cfg.sampler == "csghmc":
        cfg.check_schedule(len(y))
    claim(art)
    prior = float(ws.config.posterior.prior_std)
    g = generator(cfg.seed, ws.device)
    starts = _chain_starts(ws, cfg.chains, g, cfg.init_std)
    t0 = time.perf_counter()
    for c in range(cfg.chains):
        if not parallel.mine(c):
            continue
        path = art.path / f"chain_{c:03d}.safetensors"
        saved = load_checkpoint(path, {"samples", "accept"} if cfg.sampler == "hmc" else CSGHMC_KEYS, ws.device)
        if cfg.sampler == "hmc":
            if "samples" not in saved:
                chain_g = generator(cfg.seed + 1000 + c, ws.device)
                kept, accept = sample_hmc(model, x, y, prior, cfg, starts[c], chain_g)
                saved = {"samples": torch.stack(kept), "accept": torch.tensor([accept])}
                save_tensors(path, saved)
        else:
            if saved:
                state = CSGHMCState(saved["position"], saved["velocity"], int(saved["cycle"][0]),
                                    saved["generator_state"].cpu(), list(saved["samples"]))
            else:
                chain_g = generator(cfg.seed + 1000 + c, ws.device)
                state = CSGHMCState(starts[c], torch.zeros_like(starts[c]), 0, chain_g.get_state(), [])

            def checkpoint(st: CSGHMCState, path=path, c=c) -> None:
                save_tensors(path, {"position": st.position, "velocity": st.velocity,
                                    "cycle": torch.tensor([st.cycle]), "generator_state": st.generator_state,
                                    "samples": torch.stack(st.samples)})
                if not ws.quiet:
                    print(f"reference chain {c + 1}/{cfg.chains}: cycle {st.cycle}/{cfg.cycles}")

            sample_csghmc(model, x, y, prior, cfg, state, on_cycle=checkpoint)  # its file then holds all its samples
    parallel.barrier()  # every rank's chains are in their files
    if not parallel.is_main():
        return art.path
    chains = [load_tensors(art.path / f"chain_{c:03d}.safetensors", ws.device) for c in range(cfg.chains)]
    accepts = [float(chain["accept"][0]) for chain in chains if "accept" in chain]
    thetas = torch.cat([chain["samples"] for chain in chains])
    sampling = time.perf_counter() - t0
    save_tensors(art.path / "samples.safetensors", {"samples": thetas})
    predictive = reference_predictive(ws, art.path, "test", ws.data.test_x)
    metrics = predictive_metrics(model, predictive, ws.targets(ws.data.test_y), ws.config.evaluate)
    keys = METRICS[model.likelihood.task]
    results = {"method": "full data", "protocol": f"reference-{cfg.sampler}", "ipc": 0,
               "dataset": ws.config.data.name, "samples": len(thetas),
               "summary": {k: {"mean": metrics[k], "std": None} for k in keys},
               "acceptance_rate": sum(accepts) / len(accepts) if accepts else None,
               "sampling_seconds": sampling, "repeats": [metrics]}
    atomic_write_json(art.path / "results.json", results)
    art.finish(cfg.seed, {"sampling": sampling, "total": time.perf_counter() - t0},
               {"samples": len(thetas), "num_params": model.num_params})
    return art.path


def reference_predictive(ws: Workspace, directory: Path, name: str, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The reference posterior's predictive on one test set (``name``: ``test`` or e.g. ``fog/3`` with the
    corruption ``seed``), computed once and kept under ``predictive/`` of the reference directory."""
    key = "test" if name == "test" else f"{name.replace('/', '-')}-seed{seed}"
    path = Path(directory) / "predictive" / f"{key}.safetensors"
    if path.exists():
        return load_tensors(path, ws.device)["probs"]
    thetas = load_tensors(Path(directory) / "samples.safetensors", ws.device)["samples"]
    model = ws.model()
    if model.likelihood.task == "regression":
        probs = predictive_samples(model, thetas, x.to(ws.device), ws.config.evaluate.test_batch, ws.prepare)
    else:
        probs = predictive_average(model, thetas, x.to(ws.device), ws.config.evaluate.test_batch, ws.prepare)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, {"probs": probs})
    return probs


def reference_samples(ws: Workspace) -> torch.Tensor:
    art = ws.reference_dir()
    if not art.is_complete():
        raise UserError(f"no complete reference posterior in {art.path} for this configuration; run "
                        "'bpc reference' first")
    return load_tensors(art.path / "samples.safetensors", ws.device)["samples"]


def run_distill(ws: Workspace, method: str, ipc: int) -> Path:
    """Stage 2: learn (or, for ``random``, draw) the coreset of one (method, ipc) cell."""
    cfg, objective_cfg = ws.config.cell(method, ipc)
    uses_experts = needs_experts(method)
    cfg.validate(ws.config.experts.epochs if uses_experts else None)
    if objective_cfg is not None:
        objective_cfg.validate()
    ws.check_distill_cell(cfg)
    art = ws.coreset_dir(method, ipc)
    if art.is_complete():
        return art.path
    data = ws.data
    if method == "imported":
        images, labels, stored = load_distilled(Path(cfg.import_from))
        init = ws.prepare(images) if stored else images.float().to(ws.device)
        labels = ws.targets(labels)
        ws.check_coreset(Path(cfg.import_from), init, labels)
        expected = ipc * data.num_classes if data.num_classes else ipc
        if len(labels) != expected:
            raise UserError(f"{cfg.import_from} holds {len(labels)} images, not ipc {ipc} x {data.num_classes} classes; "
                            f"give --ipcs {len(labels) // max(data.num_classes, 1)}")
        idx = torch.full((len(labels),), -1, dtype=torch.long)
    claim(art)
    if method != "imported":
        idx = random_real_subset(data.train_y, data.num_classes, ipc, generator(cfg.seed))
        init = ws.prepare(data.train_x[idx])
        labels = ws.targets(data.train_y[idx])
    experts = ExpertPool(expert_paths(ws), ws.device) if uses_experts else None
    posterior = ws.config.posterior.resolve(len(data.train_y), len(idx))
    reference = reference_samples(ws) if needs_reference(method, objective_cfg) else None
    context = DistillContext(ws.model(), experts, ws.train_x(), ws.targets(data.train_y), data.num_classes,
                             build_dsa(cfg.augment, per_image=cfg.augment_per_image), ws.device, posterior=posterior,
                             reference=reference)
    t0 = time.perf_counter()
    checkpoint = art.path / "checkpoint.safetensors"
    resume = load_checkpoint(checkpoint, DISTILL_KEYS, ws.device) or None
    start = int(resume["iteration"][0]) if resume is not None else 0
    communication = parallel.COMMUNICATION["seconds"]
    main = parallel.is_main()  # every rank computes (objectives split their sample terms); rank 0 alone writes
    log = ProgressLog(art.path / "progress.jsonl", start) if main else None
    with StopOnSignal() as stop:
        images, summary = distill(cfg, objective_cfg, context, init, labels, quiet=ws.quiet,
                                  on_iteration=log.write if main else None, resume=resume,
                                  on_checkpoint=(lambda state: save_tensors(checkpoint, state)) if main else None,
                                  stop_requested=stop.requested,
                                  on_snapshot=snapshotter(ws, art.path, labels, log) if main else None)
    elapsed = time.perf_counter() - t0
    if not main:
        parallel.barrier()
        return art.path
    if "point_weights" in summary:  # learnt per-point weights belong to the coreset posterior it was learnt for
        posterior = dataclasses.replace(posterior, point_weights=summary.pop("point_weights"))
        if not all(math.isfinite(v) and v > 0 for v in posterior.point_weights):
            raise UserError(f"{method}: the learnt point weights are not all finite and > 0; lower the objective's "
                            "lr_weights")
    save_tensors(art.path / "coreset.safetensors",
                 {"images": images, "labels": labels, "init_images": init, "init_indices": idx,
                  **ws.preprocessor.state()},
                 metadata={"method": method, "ipc": str(ipc), "posterior": json.dumps(_asdict(posterior))})
    atomic_write_json(art.path / "summary.json", {**summary, "posterior": _asdict(posterior)})
    art.finish(cfg.seed, {"distill": elapsed}, {"method": method, "ipc": ipc, "classes": data.classes,
                                                "resumed_at": start, "processes": parallel.world(),
                                                "communication_seconds": parallel.COMMUNICATION["seconds"] - communication})
    checkpoint.unlink(missing_ok=True)
    parallel.barrier()
    return art.path


def snapshotter(ws: Workspace, directory: Path, labels: torch.Tensor, log: "ProgressLog"):
    """``on_snapshot`` of the distillation loop: keep the coreset under ``snapshots/`` and log a quick score
    (one SGD-trained network, first 1000 test points; evaluation/quick.py) as a line of progress.jsonl."""
    from ..evaluation.quick import quick_score

    def save(k: int, images: torch.Tensor) -> None:
        save_tensors(directory / "snapshots" / f"iter_{k:06d}.safetensors", {"images": images, "labels": labels})
        score = quick_score(ws.model(), images, labels, ws.data.test_x[:1000].to(ws.device),
                            ws.targets(ws.data.test_y[:1000]), ws.prepare)
        log.write(k - 1, {f"snapshot_{m}": v for m, v in score.items()})

    return save


class ProgressLog:
    """A JSONL metrics log, one line per iteration or epoch, readable while the run goes (``tail -f``). On a resume
    the lines of work after the resumed state (written after the checkpoint, or cut by a kill) are dropped:
    ``keep(row)`` says which lines stay (the default keeps iterations before ``start``)."""

    def __init__(self, path: Path, start: int = 0, keep: Callable[[dict], bool] | None = None):
        self.path, self.start = Path(path), start
        keep = keep or (lambda row: row.get("iteration", start) < start)
        kept = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut by a kill, and whatever follows it
                if not isinstance(row, dict) or not keep(row):
                    continue
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        self.t0 = time.perf_counter()

    def write(self, k: int, metrics: dict, key: str = "iteration") -> None:
        row = {key: k, "seconds": round(time.perf_counter() - self.t0, 4),
               **{m: v for m, v in metrics.items() if isinstance(v, (int, float, str, bool))}}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


class StopOnSignal:
    """While active, SIGINT and SIGTERM only set a flag that the distillation loop reads after the current
    iteration (it then saves a checkpoint and stops); a second signal interrupts at once."""

    def __init__(self):
        self.stop = False
        self.previous: dict = {}

    def requested(self) -> bool:
        return self.stop

    def _handle(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True

    def __enter__(self) -> "StopOnSignal":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: signals stay as they are
            self.previous = {}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


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
    v = spec.point_weights
    if v is not None and (len(v) != len(t["images"]) or not all(math.isfinite(w) and w > 0 for w in v)):
        raise UserError(f"{file} records {len(v)} point weights for {len(t['images'])} images (or some not finite "
                        "and > 0); re-run 'bpc distill'")
    labels = t["labels"].float() if t["labels"].is_floating_point() else t["labels"].long()
    return t["images"].float(), labels, spec


def run_evaluate(ws: Workspace, method: str, ipc: int, protocol: str) -> Path:
    """Stage 3: Bayesian evaluation of one coreset on the test split with one protocol."""
    ev = eval_for(ws.config, ipc, protocol)
    ev.validate()
    ws.check_eval_cell(ev)
    art = ws.eval_dir(method, ipc, protocol)
    if art.is_complete():
        return art.path
    core = ws.coreset_dir(method, ipc)
    if not core.is_complete():
        raise UserError(f"no complete coreset in {core.path}; run 'bpc distill' for {method} at ipc {ipc} first")
    _ = ws.data
    claim(art)
    x, y, recorded = load_coreset(core.path, ws.device)
    ws.check_coreset(core.path / "coreset.safetensors", x, y)
    test_sets = {"test": ws.data.test_x.to(ws.device)}
    test_sets.update(corrupted_sets(ws, ev))
    t0 = time.perf_counter()
    model = ws.model()
    reference = None
    if ev.agreement:
        reference_samples(ws)  # a clear error when it is missing
        ref_dir = ws.reference_dir().path
        reference = {name: reference_predictive(ws, ref_dir, name, xs, ev.seed) for name, xs in test_sets.items()}
    partial = art.path / "repeats.partial.json"  # the repeats finished so far (each has its own seed)
    finished = read_json(partial) if partial.exists() else None
    if finished is not None and not (isinstance(finished, list) and all(
            isinstance(rec, dict) and set(rec) == {"sets", "stats"} and set(rec["sets"]) == set(test_sets)
            and isinstance(rec["stats"], dict) and 0 <= rec["stats"].get("seed", -1) - ev.seed < ev.repeats
            for rec in finished)):
        raise UserError(f"{partial} does not hold this evaluation's finished repeats; delete it to redo them")
    results = evaluate_coreset(model, x, y, test_sets, ws.targets(ws.data.test_y), ev, quiet=ws.quiet,
                               prepare=ws.prepare, recorded=recorded, reference=reference, finished=finished,
                               on_repeat=lambda records: atomic_write_json(partial, records) if parallel.is_main() else None)
    results.update({"method": method, "ipc": ipc, "dataset": ws.config.data.name})
    if ws.config.model.arch == "linear" and ws.is_regression:  # Bayesian linear regression: everything exact
        results["exact"] = exact_comparison(ws.train_x(), ws.data.train_y, x, y, ws.config.model.noise_std,
                                            ev.posterior(recorded), ws.prepare(ws.data.test_x), ws.data.test_y)
    if parallel.is_main():
        atomic_write_json(art.path / "results.json", results)
        art.finish(ev.seed, {"evaluate": time.perf_counter() - t0}, {"method": method, "ipc": ipc,
                                                                      "resumed_repeats": len(finished or []),
                                                                      "processes": parallel.world()})
        partial.unlink(missing_ok=True)
    parallel.barrier()
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
    ws.check_cells()
    if any(needs_experts(m) for m in ws.config.methods):
        run_experts(ws)
    cells = [ws.config.cell(m, ipc) for m in ws.config.methods for ipc in ws.config.ipcs]
    if ws.config.evaluate.agreement or any(needs_reference(c.method, o) for c, o in cells):
        run_reference(ws)
    for ipc in ws.config.ipcs:
        for method in ws.config.methods:
            run_distill(ws, method, ipc)
            for protocol in ws.config.protocols:
                run_evaluate(ws, method, ipc, protocol)
    report = write_report(ws.out) if parallel.is_main() else {"markdown": ""}
    report["wall_seconds"] = time.perf_counter() - t0
    return report


