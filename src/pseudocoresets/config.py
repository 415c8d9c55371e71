"""Typed run configuration, presets, and (de)serialisation.

A :class:`RunConfig` holds one dataclass per stage, one per registered objective (the objective's own
``Config``) and one per evaluation protocol (the protocol's own ``Config``). Presets give complete starting points
(``quick`` for a laptop CPU, ``paper`` for the paper's CIFAR-10 settings on a GPU). A cell of a run, (method, ipc)
for a coreset and (method, ipc, protocol) for its evaluation, is resolved once by :meth:`RunConfig.resolve`: the
objective's and the protocol's official values (their ``preset_values``) are applied unless the user set that
option explicitly, and everything downstream reads the resolved :class:`Cell`. This module names no objective and
no protocol.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from .data import DataConfig
from .distill import DistillConfig
from .errors import UserError
from .io import check_path_kind, read_bytes
from .evaluation import EvalConfig, EvalSettings
from .evaluation.protocols import aliases as protocol_aliases
from .evaluation.protocols import protocol_module, protocol_sections
from .experts import ExpertConfig
from .models import ModelConfig
from .objectives import OBJECTIVES, has_objective, objective_module
from .reference import ReferenceConfig
from .samplers import PosteriorConfig
from .utils import flatten_dict

STAGE_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "experts": ExpertConfig,
    "posterior": PosteriorConfig,
    "reference": ReferenceConfig,
    "distill": DistillConfig,
    "evaluate": EvalConfig,
}
TOP_LEVEL = ("methods", "ipcs", "protocols")
PRESETS = ("quick", "demo", "medium", "paper", "blr", "none")


def sections() -> dict[str, type]:
    """Every config section: the stages', one per evaluation protocol (its module's ``Config``), then one per
    registered objective (its module's ``Config``)."""
    return {
        **STAGE_SECTIONS,
        **{name: module.Config for name, module in protocol_sections().items()},
        **{name: module.Config for name, module in OBJECTIVES.items()},
    }


@dataclass(frozen=True)
class Cell:
    """One cell of a run, resolved once (:meth:`RunConfig.resolve`): the coreset's (method, ipc) with its
    distillation section and its objective's section (None for ``random`` and ``imported``), and, for an
    evaluation, the protocol's resolved settings. Read-only: the stages take it as it is."""

    method: str  # as named in --methods (e.g. fkl+aug)
    ipc: int
    distill: DistillConfig
    objective: Any | None
    evaluation: EvalSettings | None = None
    replicate: int = 0  # which of the cell's --distill.seeds coresets: learnt with seed distill.seed + replicate

    @property
    def protocol(self) -> str | None:
        return self.evaluation.protocol if self.evaluation is not None else None


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    experts: ExpertConfig = field(default_factory=ExpertConfig)
    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    objectives: dict[str, Any] = field(default_factory=dict)  # objective name -> its Config (filled on access)
    protocol_options: dict[str, Any] = field(default_factory=dict)  # protocol section -> its Config (on access)
    methods: list[str] = field(default_factory=lambda: ["random", "fkl"])
    ipcs: list[int] = field(default_factory=lambda: [10])
    protocols: list[str] = field(default_factory=lambda: ["hmc"])
    preset: str = "none"
    explicit: list[str] = field(default_factory=list)

    def section(self, name: str) -> Any:
        """The dataclass of one section (``distill``, ``evaluate``, ``fkl``...)."""
        if name in STAGE_SECTIONS:
            return getattr(self, name)
        if name in protocol_sections():
            if name not in self.protocol_options:
                self.protocol_options[name] = protocol_sections()[name].Config()
            return self.protocol_options[name]
        if name not in self.objectives:
            self.objectives[name] = objective_module(name).Config()
        return self.objectives[name]

    def to_dict(self) -> dict[str, Any]:
        """Sections at the top level (``{"distill": {...}, "fkl": {...}, "methods": [...]}``), as YAML files take."""
        out = {name: dataclasses.asdict(self.section(name)) for name in sections()}
        out.update({k: getattr(self, k) for k in (*TOP_LEVEL, "preset", "explicit")})
        return out

    def resolve(self, method: str, ipc: int, protocol: str | None = None, replicate: int = 0) -> Cell:
        """The cell (method, ipc) and, with ``protocol``, its evaluation, fully resolved: the objective's and the
        protocol's ``preset_values`` for this preset and ipc, then the user's explicit options (module
        docstring). The one place where a cell's settings are worked out. ``replicate`` k picks the k-th of the
        cell's ``--distill.seeds`` coresets, learnt with seed ``distill.seed + k``."""
        if not 0 <= replicate < max(self.distill.seeds, 1):
            raise UserError(
                f"coreset {replicate} of a cell with --distill.seeds {self.distill.seeds}: choose one of 0 to "
                f"{max(self.distill.seeds, 1) - 1}, or raise --distill.seeds"
            )
        distill_cfg, own = self._distill_cell(method, ipc)
        distill_cfg.seed += replicate
        evaluation = self._evaluation_cell(ipc, protocol) if protocol is not None else None
        return Cell(method, ipc, distill_cfg, own, evaluation, replicate)

    def cell(self, method: str, ipc: int) -> tuple[DistillConfig, Any]:
        """(distill config, objective config or None) of a (method, ipc) cell: :meth:`resolve` without a
        protocol, as a pair."""
        cell = self.resolve(method, ipc)
        return cell.distill, cell.objective

    def _distill_cell(self, method: str, ipc: int) -> tuple[DistillConfig, Any]:
        cfg = copy.deepcopy(self.distill)
        base, _, suffix = method.partition("+")
        if suffix not in ("", "aug"):
            raise UserError(f"unknown method suffix in {method!r}; the only suffix is +aug (train with DSA)")
        cfg.method, cfg.ipc = base, ipc
        if suffix == "aug":
            cfg.augment = True
        if not has_objective(base):  # a coreset drawn (random) or brought in (imported)
            return cfg, None
        module = objective_module(base)
        own = copy.deepcopy(self.section(base))
        self._apply_preset_values(module.preset_values(self.preset, ipc), {"distill": cfg, base: own}, base)
        return cfg, own

    def _evaluation_cell(self, ipc: int, protocol: str) -> EvalSettings:
        module = protocol_module(protocol)
        common = copy.deepcopy(self.evaluate)
        common.protocol = protocol
        own = copy.deepcopy(self.section(module.SECTION))
        self._apply_preset_values(
            module.preset_values(self.preset, ipc), {"evaluate": common, module.SECTION: own}, protocol
        )
        return EvalSettings(protocol, common, own)

    def _apply_preset_values(self, values: dict[str, Any], targets: dict[str, Any], owner: str) -> None:
        for key, value in values.items():
            section, name = key.split(".", 1)
            target = targets.get(section)
            if target is None or not hasattr(target, name):
                raise AssertionError(f"{owner}.preset_values sets {key!r}, outside its own and the shared section")
            if key not in self.explicit:
                setattr(target, name, value)

    def distill_for(self, method: str, ipc: int) -> DistillConfig:
        return self.resolve(method, ipc).distill


def _protocol_sections(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A preset's values of protocol sections (per-ipc official values stay in each protocol's ``preset_values``)."""
    return {name: protocol_sections()[name].Config(**options) for name, options in values.items()}


def _objective_sections(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A preset's own values of objective sections (per-ipc official values stay in each ``preset_values``)."""
    return {name: objective_module(name).Config(**options) for name, options in values.items()}


def preset(name: str) -> RunConfig:
    if name == "quick":
        return RunConfig(
            data=DataConfig(name="fashion-mnist"),
            model=ModelConfig(width=32, depth=3),
            experts=ExpertConfig(num_experts=3, epochs=4),
            reference=ReferenceConfig(chains=2, cycles=3, epochs_per_cycle=1.0, batch_size=256),
            distill=DistillConfig(
                iterations=150, lr_images=100.0, lr_student=0.01, student_steps=20, max_start_epoch=2, expert_epochs=1
            ),
            evaluate=EvalConfig(repeats=3),
            # HMC runs until its predictive has settled: 40 iterations, then doubling the post-burn-in length until
            # the median split R-hat of the diagnostic points is at most 1.1, up to 640 (on Random's Fashion-MNIST
            # coreset it stopped at 340, NLL within 2.5% of 640's; 40 understated accuracy by 0.04:
            # experiments/settle_budget)
            protocol_options=_protocol_sections(
                {
                    "hmc": {
                        "chains": 4,
                        "iterations": 40,
                        "burn_in": 20,
                        "thin": 10,
                        "settle_rhat": 1.1,
                        "max_iterations": 640,
                    },
                    # A-SGHMC: 1000 steps (500 burn-in), then doubling until the TV between the predictives of the
                    # kept states' halves is at most 0.06, up to 4000, one kept state per 50 steps (the official 5
                    # would score ten times as many); as measured: every one of the yardstick's 12 Fashion-MNIST
                    # A-SGHMC evaluations settled at 1000 (halves' TV 0.042-0.058), while its R-hat (1.2-1.3 there)
                    # would have run them to the cap with no change in the predictive (experiments/yardstick)
                    "asghmc": {"chains": 4, "settle_tv": 0.06, "max_iterations": 4000, "thin": 50},
                }
            ),
            objectives=_objective_sections({"fkl": {"num_samples": 10}, "rkl": {"num_samples": 10}}),
            methods=["random", "fkl"],
            ipcs=[10],
            preset="quick",
        )
    if name == "demo":  # `make demo`: the quick model on a 10,000-image subset with smaller budgets (< 5 min)
        config = preset("quick")
        config.data.train_subset = 10000
        config.distill.iterations, config.distill.student_steps = 100, 10
        config.evaluate = EvalConfig(repeats=2)
        config.protocol_options.update(
            _protocol_sections(
                {"hmc": {"chains": 3, "iterations": 30, "burn_in": 15, "thin": 8}, "asghmc": {"chains": 3}}
            )
        )
        config.section("fkl").num_samples = 5
        config.preset = "demo"
        return config
    if (
        name == "medium"
    ):  # CIFAR-10 on 2 CPU cores in about 40 min (experiments/table1/table1_medium.sh): wider than quick, more
        # experts, epochs, iterations and chains; L_u = 10 student steps (quick: 20) pays for them
        return RunConfig(
            data=DataConfig(name="cifar10"),
            model=ModelConfig(width=48, depth=3),
            experts=ExpertConfig(num_experts=4, epochs=5),
            reference=ReferenceConfig(chains=2, cycles=3, epochs_per_cycle=1.0, batch_size=256),
            distill=DistillConfig(
                iterations=250, lr_images=100.0, lr_student=0.01, student_steps=10, max_start_epoch=3, expert_epochs=1
            ),
            evaluate=EvalConfig(repeats=3),
            protocol_options=_protocol_sections(
                {"hmc": {"chains": 5, "iterations": 50, "burn_in": 20, "thin": 10}, "asghmc": {"chains": 5}}
            ),
            # a real batch of 500 for rKL: its S = 10 data-likelihood passes are most of an iteration
            objectives=_objective_sections({"fkl": {"num_samples": 10}, "rkl": {"num_samples": 10, "real_batch": 500}}),
            methods=["random", "rkl", "wasserstein", "fkl"],
            ipcs=[10],
            preset="medium",
        )
    if name == "paper":
        return RunConfig(
            data=DataConfig(name="cifar10"),
            model=ModelConfig(width=128, depth=3),
            experts=ExpertConfig(num_experts=100, epochs=50, augment=True),  # MTT's buffers use DSA
            distill=DistillConfig(),
            evaluate=EvalConfig(),
            methods=["random", "fkl"],
            ipcs=[1, 10, 20],
            preset="paper",
        )
    if name == "blr":  # Bayesian linear regression on synthetic data: every posterior and divergence exact
        return RunConfig(
            data=DataConfig(name="synthetic-regression"),
            model=ModelConfig(arch="linear", likelihood="gaussian", noise_std=1.0),
            experts=ExpertConfig(num_experts=8, epochs=30, lr=0.05, batch_size=32),
            reference=ReferenceConfig(sampler="hmc", chains=4, iterations=400, burn_in=200, thin=5),
            distill=DistillConfig(
                iterations=300,
                optimizer="adam",
                lr_images=0.05,
                lr_schedule="linear",
                lr_student=0.01,
                student_steps=30,
                max_start_epoch=10,
                expert_epochs=1,
            ),
            evaluate=EvalConfig(repeats=3),
            protocol_options=_protocol_sections(
                {"hmc": {"chains": 4, "iterations": 400, "burn_in": 200, "thin": 5}, "asghmc": {"chains": 4}}
            ),
            # fkl_mcmc: more chains starting at step size 0.1 (as the closed-form family measured them), and pi_x
            # from the reference posterior's samples (HMC), without noise
            objectives=_objective_sections(
                {"fkl_mcmc": {"chains": 8, "chain_step_size": 0.1, "x_source": "reference", "noise_x": 0.0}}
            ),
            methods=["random", "fkl", "fkl_mcmc", "rkl", "wasserstein"],
            ipcs=[20],
            preset="blr",
        )
    if name == "none":
        return RunConfig()
    raise UserError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")


RENAMED = {"evaluate.vbpc_noise": ["evaluate.target_noise"]}
"""Earlier names of shared options (besides the protocols' own ALIASES) -> the options they set now."""


def renamed_options() -> dict[str, list[str]]:
    """Every earlier option name -> the ``section.option`` keys it sets now."""
    return {**protocol_aliases(), **RENAMED}


CELL_OPTIONS = {"distill.method": "methods", "distill.ipc": "ipcs", "evaluate.protocol": "protocols"}


def reconcile_cell_options(config: RunConfig) -> None:
    """``--distill.method``, ``--distill.ipc`` and ``--evaluate.protocol`` name one cell, ``--methods``, ``--ipcs``
    and ``--protocols`` the cells of a run: a cell option the user set becomes the list when the list was not
    set, and is refused when the list says otherwise (never silently ignored)."""
    for key, top in CELL_OPTIONS.items():
        if key not in config.explicit:
            continue
        section, name = key.split(".")
        value = getattr(config.section(section), name)
        if top in config.explicit and getattr(config, top) != [value]:
            listed = ",".join(str(v) for v in getattr(config, top))
            raise UserError(f"--{key} {value} contradicts --{top} {listed}; give only --{top}")
        setattr(config, top, [value])


SEED_MAX = 2**62
"""Largest seed: a base seed plus its offsets (expert e, repeat r) stays inside the generators' 64-bit range."""
COUNT_MAX = 10**8
"""Largest whole-number option: every count here (epochs, iterations, chains, samples, widths, points) is far
below it in any real run, and a value above it is a typo (``1e9``) that would run for ever or exhaust memory."""
SCALE_MAX = 1e12
"""Largest real-valued option (learning rates reach 1e4-1e5 on pixels; standard deviations and weights far less)."""
FRACTIONS = {"momentum", "momentum_images"}  # in [0, 1): a momentum of 1 or more never forgets and diverges


def check_ranges(config: RunConfig) -> None:
    """One range rule for every number of every section (each section's ``validate`` has its own finer rules):
    no number is negative, seeds are at most :data:`SEED_MAX`, other whole numbers at most :data:`COUNT_MAX`,
    real numbers at most :data:`SCALE_MAX`, momenta below 1; ``--ipcs`` at most :data:`COUNT_MAX`."""
    for name in sections():
        section = config.section(name)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                option = f"--{name}.{f.name}"
                if v < 0:
                    raise UserError(f"{option} must be >= 0 (got {v})")
                if f.name == "seed" or f.name.endswith("_seed"):
                    if v > SEED_MAX:
                        raise UserError(f"{option} must be at most 2**62 = {SEED_MAX} (got {v})")
                elif isinstance(v, int) and v > COUNT_MAX:
                    raise UserError(f"{option} {v} is beyond any run this library can do (at most {COUNT_MAX:.0e})")
                elif isinstance(v, float) and v > SCALE_MAX:
                    raise UserError(f"{option} {v:g} is beyond any sensible scale (at most {SCALE_MAX:.0e})")
                if f.name in FRACTIONS and not v < 1:
                    raise UserError(f"{option} must be in [0, 1) (got {v})")
    if any(ipc > COUNT_MAX for ipc in config.ipcs):
        raise UserError(f"--ipcs must be at most {COUNT_MAX:.0e} (got {','.join(str(i) for i in config.ipcs)})")


def validate_run(config: RunConfig) -> None:
    """Every check that needs no data, for every cell of the run, before any work (the sections' own rules, then
    :func:`check_ranges`)."""
    reconcile_cell_options(config)
    if config.data.root:  # one spelling per path, absolute: data/fm from two working directories is two datasets
        config.data.root = os.path.abspath(config.data.root)
    for section in ("data", "model", "experts", "posterior", "evaluate"):
        config.section(section).validate()
    if not config.methods or not config.ipcs or not config.protocols:
        raise UserError("--methods, --ipcs and --protocols must each name at least one value")
    if any(ipc < 1 for ipc in config.ipcs):
        raise UserError(f"--ipcs must be >= 1 (got {','.join(str(i) for i in config.ipcs)})")
    for method in config.methods:
        for ipc in config.ipcs:
            distill_cfg, objective_cfg = config.cell(method, ipc)
            uses_experts = objective_cfg is not None and objective_module(distill_cfg.method).NEEDS_EXPERTS
            distill_cfg.validate(config.experts.epochs if uses_experts else None)
            if objective_cfg is not None:
                objective_cfg.validate()
    for name in protocol_sections():
        config.section(name).validate()
    for ipc in config.ipcs:
        for protocol in config.protocols:
            config._evaluation_cell(ipc, protocol).validate()
    config.reference.validate()  # also where no stage of the run samples it: a wrong option is never silent
    check_ranges(config)


def _coerce(value: Any, like: Any, key: str) -> Any:
    """``value`` as the type of ``like``; no silent truncation (6.9 is not an int, true is not a number) and
    no non-finite numbers (nan, inf)."""
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise UserError(f"option {key} expects true/false, got {value!r}")
    try:
        if isinstance(like, (int, float)) and isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(like, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value) if not isinstance(value, str) else int(value.strip())
        if isinstance(like, float):
            number = float(value)
            if not math.isfinite(number):
                raise UserError(f"option {key} must be a finite number (got {value!r})")
            return number
        if isinstance(like, list):
            items = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            return [_coerce(v, like[0] if like else "", key) for v in items]
    except (TypeError, ValueError) as exc:
        raise UserError(f"option {key} expects a {type(like).__name__}, got {value!r}") from exc
    return str(value)


def apply_overrides(config: RunConfig, overrides: dict[str, Any], mark_explicit: bool = True) -> RunConfig:
    """Set dotted keys (``distill.ipc``) or top-level keys (``methods``) on ``config``. An earlier name of a
    protocol's option (``evaluate.chains``, before each protocol had its own section) sets the options it became
    (``hmc.chains`` and ``asghmc.chains``); the current name, given too, wins."""
    renamed = renamed_options()
    for key, value in overrides.items():
        if key in renamed:
            for new in renamed[key]:
                if new not in overrides:
                    apply_overrides(config, {new: value}, mark_explicit)
            continue
        if "." in key:
            section, name = key.split(".", 1)
            known = sections()
            if section not in known or name not in {f.name for f in dataclasses.fields(known[section])}:
                raise UserError(f"unknown option {key!r}; see 'bpc run --help'")
            target = config.section(section)
        else:
            if key not in TOP_LEVEL:
                raise UserError(f"unknown option {key!r}; see 'bpc run --help'")
            target, name = config, key
        setattr(target, name, _coerce(value, getattr(target, name), key))
        if mark_explicit and key not in config.explicit:
            config.explicit.append(key)
    return config


class _Refused(yaml.YAMLError):
    """A construct of valid YAML that no configuration needs; ``message`` ends the one-line refusal."""

    def __init__(self, message: str, mark=None):
        super().__init__(message)
        self.message, self.mark = message, mark


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader for configuration files. It refuses, before building anything:

    - anchors and aliases (``&name``, ``*name``, merge keys ``<<: *name``): a configuration never needs one, and
      they are what makes a few lines expand to billions of values or refer to themselves;
    - a list or a mapping as a key (keys are names such as ``distill`` or ``ipc``);
    - a key given twice in one mapping (YAML says keys are unique; PyYAML keeps the last silently)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                "uses YAML anchors/aliases (&/*), which bpc does not read; write the values out", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise _Refused(f"has a {kind} as a key; keys are names such as 'distill' or 'ipc'", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _config_text(raw: bytes) -> str:
    """A configuration file's text: UTF-8, or UTF-16 / UTF-32 marked by their byte-order mark."""
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
        (b"\xef\xbb\xbf", "utf-8-sig"),
    ):
        if raw.startswith(bom):
            return raw.decode(codec)
    return raw.decode("utf-8")


def _no_duplicate_json_keys(pairs):
    keys = [k for k, _ in pairs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"the key {duplicated[0]!r} appears twice in one object")
    return dict(pairs)


def load_config_file(path: str) -> dict[str, Any]:
    """A YAML/JSON file of sections (``distill: {ipc: 10}``), flattened to dotted keys. UTF-8, or UTF-16/32 with
    a byte-order mark; read by :func:`pseudocoresets.io.read_bytes` (a FIFO, a device or a file over 64 MiB is
    refused). A key given twice, a list or mapping as a key, YAML anchors or aliases, or nesting deeper than
    Python can follow, is refused in one line."""
    check_path_kind(path, "--config")
    try:
        text = _config_text(read_bytes(path, "config file", fix="give a YAML or JSON file"))
        if path.endswith(".json"):
            data = json.loads(text, object_pairs_hook=_no_duplicate_json_keys)
        else:
            data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError as exc:
        raise UserError(f"config file {path} not found") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path} is not text (binary bytes); give a YAML or JSON file") from exc
    except _Refused as exc:
        where = f" (line {exc.mark.line + 1}, column {exc.mark.column + 1})" if exc.mark is not None else ""
        raise UserError(f"config file {path}{where} {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UserError(f"config file {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    except (json.JSONDecodeError, ValueError) as exc:
        raise UserError(f"config file {path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise UserError(f"config file {path} nests deeper than any configuration; give a mapping of sections") from exc
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of sections")
    flat = flatten_dict(data)
    flat.pop("explicit", None)
    return flat


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Rebuild a saved config (as written into every artifact directory)."""
    cfg = preset(d.get("preset", "none"))
    flat = flatten_dict({k: v for k, v in d.items() if k not in ("preset", "explicit")})
    apply_overrides(cfg, flat, mark_explicit=False)
    cfg.explicit = list(d.get("explicit", []))
    return cfg
