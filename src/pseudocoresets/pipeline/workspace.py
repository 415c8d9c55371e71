"""The workspace of a run, and the rules that give every artifact its identity.

:class:`Workspace` loads the data, fits the preprocessing and builds the model of one run configuration once, and
every stage shares it. It also decides where each artifact lives and which configuration defines it:

- **experts** are defined by the data, model and expert sections;
- **the reference posterior** by the data, model and reference sections, the prior scale, and whether its chains
  start at random (``chain_starts``, recorded only then: a run without experts) rather than at the experts' final
  snapshots;
- **a coreset** by its experts' definition, the coreset posterior, the distillation section of its (method, ipc)
  cell without the options that only say how often to save, the objective's section, the objective's
  ``VERSION`` when above 1, the reference's definition when the objective reads reference samples, and for an
  imported set the SHA-256 of what was imported;
- **an evaluation** by its coreset's definition, the resolved shared evaluation section, the resolved section of
  its protocol, and the reference's definition when it measures agreement. Evaluations written before each
  protocol had its own section were defined by one flat evaluation section; they are still found and reused
  (:meth:`Workspace.earlier_evaluation_identity`).

Every identity and every location is a function of the resolved cell (:meth:`pseudocoresets.config.RunConfig.
resolve`) alone: never of whether an option was typed, nor of what else is on disk at the time.

A section enters an identity through :func:`identity_dict`: every field, except fields marked
``identity: "never"`` (how fast, not what is computed: compilation, the diagnostics' point count) and fields marked
``identity: "unless-set"`` while at their default (options whose default keeps earlier behaviour, so run
directories made before the option stay valid). The model's precision enters only when it resolves to something
other than fp32. Two configurations with equal identities share artifacts; :class:`.artifacts.ArtifactDir`
refuses to overwrite an artifact made with a different identity.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch

from ..config import Cell, RunConfig, renamed_options
from ..data import FeatureScaler, ImageData, Preprocessor, TabularData, fit_preprocessor, load_dataset
from ..data.datasets import test_order
from ..errors import UserError
from ..experts import ExpertConfig, expert_file
from ..models import FlatModel, build_likelihood, build_model, resolve_precision
from ..models.compiling import should_compile
from ..reference import ReferenceConfig
from ..evaluation import EvalConfig, PROTOCOLS
from ..objectives import has_objective, objective_module
from .artifacts import ArtifactDir, companion_path, coreset_path, evaluation_path, experts_path, reference_path
from .interop import source_digest


def identity_dict(x) -> dict:
    """A config section as it defines artifacts: every field, except those marked ``identity: "unless-set"`` while at
    their default (options added after artifacts existed, whose default keeps the old behaviour, so run directories
    made before the option stay valid), those marked ``identity: "never"`` (how fast, not what is computed), and
    those marked ``only_with: (names...)`` while every field they name is off (a stopping rule's cap without the
    rule)."""
    out = dataclasses.asdict(x)
    for f in dataclasses.fields(x):
        never = f.metadata.get("identity") == "never"
        idle = "only_with" in f.metadata and not any(getattr(x, name) for name in f.metadata["only_with"])
        if never or idle or (f.metadata.get("identity") == "unless-set" and out.get(f.name) == f.default):
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

    def model(self, planned_calls: int = 0) -> FlatModel:
        """The network; compiled (``--model.compile``, models/compiling.py) when the stage plans at least
        COMPILE_MIN_CALLS forward(+backward) calls of it."""
        d = self.data
        outputs = build_likelihood(self.config.model.likelihood).num_outputs(d.num_classes)
        input_shape = tuple(self.prepare(d.train_x[:1]).shape[1:])  # after preprocessing (e.g. an intercept column)
        model = build_model(self.config.model, input_shape, outputs).to(self.device).with_precision(self.precision)
        model.compile = should_compile(self.config.model.compile, model.module, self.device, planned_calls)
        return model

    @property
    def precision(self) -> str:
        """The compute precision actually used on this device (``auto`` resolved)."""
        return resolve_precision(self.config.model.precision, self.device)

    def model_identity(self) -> dict:
        """The model section as it defines artifacts: the resolved precision, recorded only when it is not fp32 (so
        fp32 runs keep the identity they had before the option existed)."""
        cfg = identity_dict(self.config.model)
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

    def check_distill_cell(self, cell: Cell) -> None:
        """What the data rule out for one coreset: DSA on tabular data, and what its objective's ``check_data``
        (config, is_regression) refuses."""
        self.check_image_options(augment=cell.distill.augment)
        check = getattr(objective_module(cell.distill.method), "check_data", None) if cell.objective else None
        if check is not None:
            check(cell.objective, self.is_regression)

    def check_eval_cell(self, cell: Cell) -> None:
        """What the data rule out for one evaluation: corrupted sets of tables, agreement for regression, and what
        its protocol's ``check_data`` (config, is_image, is_regression) refuses."""
        ev = cell.evaluation
        if not self.config.data.is_image and ev.common.corruptions:
            raise UserError("corrupted test sets exist for images only; drop --evaluate.corruptions for tabular data")
        ev.module.check_data(ev.own, self.config.data.is_image, self.is_regression)
        section = ev.module.SECTION
        if (getattr(ev.own, "settle_tv", 0) or getattr(ev.own, "settle_rhat", 0)) and self.is_regression:
            raise UserError(
                f"the stopping rule (--{section}.settle_tv / settle_rhat) compares class predictives; give "
                f"--{section}.settle_rhat 0 (and settle_tv 0) for a fixed budget on regression data"
            )
        if getattr(ev.own, "settle_rhat", 0) and not ev.common.diagnostic_points:
            raise UserError(
                f"--{section}.settle_rhat reads the R-hat of the diagnostic points; set --evaluate.diagnostic_points "
                f"> 0 or --{section}.settle_rhat 0"
            )
        if ev.common.agreement and self.is_regression:
            raise UserError(
                "--evaluate.agreement compares class predictives; for regression with --model.arch "
                "linear the evaluation reports the exact divergences instead"
            )

    def cells(self) -> list[Cell]:
        """Every coreset cell (method, ipc, replicate) of the run, resolved, in run order."""
        return [
            self.config.resolve(m, ipc, replicate=k)
            for ipc in self.config.ipcs
            for m in self.config.methods
            for k in range(self.config.distill.seeds)
        ]

    def reference_starts(self) -> str:
        """Where the reference chains start (``--reference.start``): the experts' final snapshots or random
        weights; a configuration value, never what happens to be on disk."""
        return self.config.reference.start

    # artifact identities -------------------------------------------------------------------------
    def experts_dir(self, expert_set: int = 0) -> ArtifactDir:
        """The run's experts, or the ``expert_set``-th independent set (``--distill.expert_sets independent``):
        the same configuration with seeds shifted by ``expert_set x num_experts``, under ``experts-set<k>``."""
        cfg = {
            "data": identity_dict(self.config.data),
            "model": self.model_identity(),
            "experts": identity_dict(self.expert_config(expert_set)),
        }
        path = experts_path(self.out, expert_set)
        files = tuple(expert_file(path, e).name for e in range(self.config.experts.num_experts))
        return ArtifactDir(path, "experts", cfg, files)

    def expert_config(self, expert_set: int = 0) -> ExpertConfig:
        """The experts' configuration of an expert set (its seeds follow the sets before it)."""
        if not expert_set:
            return self.config.experts
        return dataclasses.replace(
            self.config.experts, seed=self.config.experts.seed + expert_set * self.config.experts.num_experts
        )

    @staticmethod
    def expert_set(cell: Cell) -> int:
        """Which expert set a cell's coreset learns from: its own with ``--distill.expert_sets independent`` (for
        a method that reads experts), else the run's experts (set 0)."""
        independent = cell.distill.expert_sets == "independent" and needs_experts(cell.method)
        return cell.replicate if independent else 0

    def test_order_identity(self) -> dict:
        """``{"test_order": "seeded"}`` where the loader reorders the test split (image folders: data/datasets.py
        ``test_order``), else nothing: what reads test points one by one (the reference's predictive, which
        agreement compares point by point; diagnostics, stopping rules, corrupted subsets) is then another
        artifact than one made in the files' class-by-class order, while experts and coresets stay the same."""
        return {"test_order": "seeded"} if test_order(self.config.data) == "seeded" else {}

    def reference_dir(self, reference: ReferenceConfig | None = None) -> ArtifactDir:
        """The run's reference posterior, or with ``reference`` another one (a companion that checks it,
        ``ReferenceConfig.companion``), under ``references/<sampler>-seed<seed>``."""
        own = reference or self.config.reference
        cfg = {
            "data": identity_dict(self.config.data),
            "model": self.model_identity(),
            "reference": identity_dict(own),
        }
        if own.sampler == "csghmc" and own.settle_rhat:  # its diagnostic points set its budget
            cfg["reference"]["diagnostic_points"] = self.config.evaluate.diagnostic_points
        cfg["prior_std"] = self.config.posterior.prior_std
        cfg.update(self.test_order_identity())
        if self.reference_starts() == "random" and own.sampler != "ensemble":  # chains from random weights, not
            cfg["chain_starts"] = "random"  # the experts' (a weaker reference at the same budget): another artifact
        path = reference_path(self.out) if reference is None else companion_path(self.out, own.sampler, own.seed)
        return ArtifactDir(path, "reference", cfg, ("samples.safetensors", "results.json"))

    def coreset_dir(self, cell: Cell) -> ArtifactDir:
        method, ipc, distill_cfg, objective_cfg = cell.method, cell.ipc, cell.distill, cell.objective
        # how often to save, and how many coresets the run learns per cell: not what this coreset is
        run_control = {"checkpoint_every", "snapshot_every", "seeds", "expert_sets"}
        learning = {k: v for k, v in identity_dict(distill_cfg).items() if k not in run_control}
        if distill_cfg.method == "imported":  # what was imported, by content
            learning["import_sha256"] = source_digest(Path(distill_cfg.import_from))
        experts = self.experts_dir(self.expert_set(cell)).config
        cfg = {**experts, "posterior": identity_dict(self.config.posterior), "distill": learning}
        if objective_cfg is not None:
            cfg["objective"] = identity_dict(objective_cfg)
            version = getattr(objective_module(distill_cfg.method), "VERSION", 1)
            if version > 1:  # the objective's results changed since version 1: its older coresets are not these
                cfg["objective_version"] = version
        if needs_reference(method, objective_cfg):
            cfg["reference"] = self.reference_dir().config
        return ArtifactDir(
            coreset_path(self.out, method, ipc, self.replicate_tag(cell) + self.config.posterior.tag()),
            "coreset",
            cfg,
            ("coreset.safetensors", "summary.json"),
        )

    def eval_dir(self, cell: Cell) -> ArtifactDir:
        ev = cell.evaluation
        coreset = self.coreset_dir(cell).config
        cfg = {**coreset, "evaluate": identity_dict(ev.common), ev.module.SECTION: identity_dict(ev.own)}
        cfg.update(self.test_order_identity())
        earlier = {**coreset, "evaluate": self.earlier_evaluation_identity(cell)}
        if ev.common.agreement:
            cfg["reference"] = earlier["reference"] = self.reference_dir().config
        # the flat section predates the stopping rule (what it identifies ran a fixed budget, never a settled one)
        # and the seeded test order (on an image folder it read the files' class-by-class order)
        settles = getattr(ev.own, "settle_rhat", 0) or getattr(ev.own, "settle_tv", 0)
        earliers = [] if settles or self.test_order_identity() else [earlier]
        if getattr(ev.own, "settle_rhat", 0):  # the diagnostic points then set the budget: part of what is computed
            if ev.common.diagnostic_points == EvalConfig.diagnostic_points:  # as written before they were recorded
                earliers.append(copy.deepcopy(cfg))
            cfg[ev.module.SECTION]["diagnostic_points"] = ev.common.diagnostic_points
        method, which = cell.method, self.replicate_tag(cell)
        path = evaluation_path(self.out, method, cell.ipc, ev.protocol, self.posterior_tag(cell), which)
        before = evaluation_path(self.out, method, cell.ipc, ev.protocol, self._earlier_posterior_tag(cell), which)
        return ArtifactDir(
            path,
            "evaluation",
            cfg,
            ("results.json",),
            earlier=tuple(earliers),
            moved_from=(before,) if before != path else (),
        )

    @staticmethod
    def replicate_tag(cell: Cell) -> str:
        """``-seed<s>`` for a cell's second and later coresets (``--distill.seeds``): the first keeps the name
        it has without the option, so a run that grows from one coreset per cell to several keeps its work."""
        return f"-seed{cell.distill.seed}" if cell.replicate else ""

    def earlier_evaluation_identity(self, cell: Cell) -> dict:
        """The identity an evaluation had when every protocol's options were fields of one flat evaluation section
        (``evaluate.chains``, ``evaluate.friction``, ``evaluate.vbpc_steps`` ...): the shared options under their
        earlier names, then each earlier option from the cell's own protocol where it has it, else from the first
        registered protocol that has it (as its section stands). Evaluations written then are found by it."""
        ev = cell.evaluation
        earlier_name = {new: old for old, news in renamed_options().items() for new in news}
        flat = {}
        for key, value in identity_dict(ev.common).items():
            flat[earlier_name.get(f"evaluate.{key}", f"evaluate.{key}").split(".", 1)[1]] = value
        modules = [ev.module, *(m for m in PROTOCOLS.values() if m is not ev.module)]
        for module in modules:
            section = identity_dict(ev.own if module is ev.module else self.config.section(module.SECTION))
            for old, name in getattr(module, "ALIASES", {}).items():
                old_name = old.split(".", 1)[1]
                if old_name not in flat and name in section:
                    flat[old_name] = section[name]
        return flat

    def posterior_tag(self, cell: Cell) -> str:
        """The coreset's posterior suffix plus ``-eval-...`` for the evaluation-time posterior options (w, T,
        sigma) whose resolved value differs from the protocol's own (0, the coreset's, unless its preset_values
        say otherwise: A-SGHMC's T = 0.01), and ``targets`` for learnt targets."""
        baseline = {f.name: f.default for f in dataclasses.fields(EvalConfig)}
        for key, value in cell.evaluation.module.preset_values(self.config.preset, cell.ipc).items():
            section, name = key.split(".", 1)
            if section == "evaluate":
                baseline[name] = value
        return self._tag(cell, lambda key, value: value != baseline[key])

    def _earlier_posterior_tag(self, cell: Cell) -> str:
        """Where an evaluation was written when the suffix followed whether an option was typed (``-eval-T0.01``
        for A-SGHMC's own temperature given explicitly): read to move such an evaluation to its location now."""
        return self._tag(cell, lambda key, value: f"evaluate.{key}" in self.config.explicit)

    def _tag(self, cell: Cell, named) -> str:
        """The suffix: each non-zero evaluation-time posterior option for which ``named(option, value)``."""
        common = cell.evaluation.common
        short = {"coreset_weight": "w", "temperature": "T", "prior_std": "prior"}
        parts = [
            f"{s}{getattr(common, k):g}"
            for k, s in short.items()
            if getattr(common, k) and named(k, getattr(common, k))
        ]
        if common.learnt_targets:
            parts.append("targets")
        return self.config.posterior.tag() + ("-eval-" + "-".join(parts) if parts else "")


def needs_experts(method: str) -> bool:
    base = method.partition("+")[0]
    return has_objective(base) and objective_module(base).NEEDS_EXPERTS


def needs_reference(method: str, objective_cfg) -> bool:
    """Whether the objective of ``method`` reads full-data reference samples (its module's ``needs_reference``)."""
    base = method.partition("+")[0]
    if not has_objective(base) or objective_cfg is None:
        return False
    return bool(getattr(objective_module(base), "needs_reference", lambda cfg: False)(objective_cfg))
