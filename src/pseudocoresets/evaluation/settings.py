"""The evaluation's options: the section every protocol shares (``--evaluate.*``, :class:`EvalConfig`), and the
fully resolved settings of one evaluation cell (:class:`EvalSettings`: the shared section and the protocol's own
section after the protocol's per-preset values), which is all the evaluation code downstream reads.

The posterior an evaluation predicts with is the coreset posterior recorded with the coreset (weight w,
temperature T, prior sigma, learnt per-point weights), with each of ``coreset_weight``, ``temperature`` and
``prior_std`` replacing the recorded value when it is set (non-zero): 0 means "the coreset's own". A protocol may
give one of them a value of its own through its ``preset_values`` (A-SGHMC samples at T = 0.01).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..corruptions import CORRUPTIONS
from ..errors import UserError
from ..models.last_layer import NOISE_RANGE
from ..samplers import PosteriorSpec

# Scoring runs compiled (--evaluate.compile) from this many batch forwards on: on the 2-core CPU compilation took
# 2-4 s per cell and saved about 0.025 s of each 256-image forward of the quick ConvNet (2.83 -> 1.81 s per 40
# batches, benchmarks/results/scoring.md), so it pays from about 100-150 forwards. A quick-preset repeat scores 8
# samples x 40 batches = 320 (compiled); the demo preset's 6 x 40 = 240 stay eager.
COMPILE_MIN_FORWARDS = 256


@dataclass
class EvalConfig:
    """Options every evaluation protocol shares: repeats, test sets, metrics, the posterior's evaluation-time
    options. Each protocol's own options are in its section (``--hmc.*``, ``--asghmc.*``, ``--vbpc_eval.*``)."""

    protocol: str = field(
        default="hmc",
        metadata={
            "help": "evaluation protocol of one cell (--protocols names those of a run): hmc, asghmc, or vbpc (a "
            "network trained on the coreset, its last layer's closed-form posterior)"
        },
    )
    repeats: int = field(default=10, metadata={"help": "independent repeats (seeds) for mean +/- std"})
    seed: int = field(default=0, metadata={"help": "base seed; repeat r uses seed + r"})
    prior_std: float = field(
        default=0.0,
        metadata={"help": "sigma of the Gaussian prior (0 = the coreset's posterior, --posterior.prior_std)"},
    )
    temperature: float = field(
        default=0.0,
        metadata={
            "help": "posterior temperature T (0 = the coreset's posterior, --posterior.temperature; asghmc: 0.01)"
        },
    )
    coreset_weight: float = field(
        default=0.0, metadata={"help": "coreset weight w (0 = the coreset's posterior, --posterior.weight)"}
    )
    learnt_targets: bool = field(
        default=False,
        metadata={
            "help": "hmc / asghmc: sample the coreset posterior with the coreset's learnt real targets (VBPC's) "
            "under their Gaussian likelihood (noise: target_noise), not its class labels",
            "identity": "unless-set",
        },
    )
    target_noise: float = field(
        default=0.0,
        metadata={
            "help": "std of the Gaussian likelihood on a coreset's learnt targets (vbpc protocol, learnt_targets; "
            "0 = the one its targets were learnt for, else 0.1)",
            "identity": "unless-set",
        },
    )
    test_batch: int = field(default=256, metadata={"help": "test images per forward pass"})
    compile: bool = field(
        default=True,
        metadata={
            "help": "score the test sets with torch.compile where it pays: at least "
            f"{COMPILE_MIN_FORWARDS} batch forwards of a ConvNet, and a C++ compiler on CPUs (1.6-2.7x measured; "
            "falls back to eager scoring with one line if compilation fails); false: eager scoring",
            "identity": "never",
        },
    )
    corruptions: list[str] = field(
        default_factory=list,
        metadata={"help": "corrupted test sets (CIFAR-10-C protocol): names, 'standard' (15) or 'all' (19)"},
    )
    severities: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5], metadata={"help": "corruption severities"})
    corruption_subset: int = field(
        default=0,
        metadata={
            "help": "test images per corrupted set: the first N of the test split (0 = all; the CIFAR-10-C "
            "protocol uses all 10,000)",
            "identity": "unless-set",
        },
    )
    agreement: bool = field(
        default=False,
        metadata={
            "help": "also compare the predictive with the full-data "
            "reference posterior's (agreement, TV, KL; runs 'bpc reference')"
        },
    )
    ece_bins: int = field(default=15, metadata={"help": "bins of the expected calibration error"})
    diagnostic_points: int = field(
        default=100,
        metadata={
            "help": "sampled protocols: test points whose log predictive probability under every post-burn-in "
            "state gives split R-hat and ESS (0 = no diagnostics)",
            "identity": "never",
        },
    )

    def validate(self) -> None:
        from .protocols import PROTOCOLS

        if self.protocol not in PROTOCOLS:
            raise UserError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.repeats < 1:
            raise UserError(f"--evaluate.repeats must be >= 1 (got {self.repeats})")
        if self.prior_std < 0 or self.temperature < 0 or self.coreset_weight < 0 or self.target_noise < 0:
            raise UserError(
                "--evaluate.prior_std, temperature, coreset_weight and target_noise must be >= 0 (0 = the coreset's)"
            )
        low, high = NOISE_RANGE
        if self.target_noise and not low <= self.target_noise <= high:
            raise UserError(
                f"--evaluate.target_noise must be 0 (the targets' own) or in {low:g}..{high:g} (got "
                f"{self.target_noise:g}): a smaller noise makes the last layer's solve singular"
            )
        if self.diagnostic_points < 0:
            raise UserError(f"--evaluate.diagnostic_points must be >= 0 (got {self.diagnostic_points})")
        if self.test_batch < 1 or self.ece_bins < 1:
            raise UserError(
                f"--evaluate.test_batch and --evaluate.ece_bins must be >= 1 (got {self.test_batch} and "
                f"{self.ece_bins})"
            )
        known = {*CORRUPTIONS, "standard", "all"}
        unknown = [c for c in self.corruptions if c not in known]
        if unknown:
            raise UserError(
                f"unknown corruption(s) {', '.join(unknown)}; choose from standard, all, {', '.join(CORRUPTIONS)}"
            )
        if self.corruption_subset < 0:
            raise UserError(
                f"--evaluate.corruption_subset must be >= 0 (0 = every test image; got {self.corruption_subset})"
            )
        if any(not 1 <= s <= 5 for s in self.severities) or (self.corruptions and not self.severities):
            raise UserError(f"--evaluate.severities must be in 1..5 (got {self.severities})")

    def __getattr__(self, name: str) -> Any:
        """An option that moved to a protocol's own section is named with where it went (not a bare error)."""
        from .protocols import aliases

        moved = aliases().get(f"evaluate.{name}") or (["evaluate.target_noise"] if name == "vbpc_noise" else None)
        if moved:
            section, option = moved[0].split(".", 1)
            raise AttributeError(
                f"EvalConfig.{name} is now {' and '.join(moved)}: read it from the protocol's section, e.g. "
                f"config.section({section!r}).{option}, or from a resolved cell, config.resolve(method, ipc, "
                "protocol).evaluation.own"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def posterior(self, recorded: PosteriorSpec) -> PosteriorSpec:
        """The posterior to predict with: the coreset's recorded one, with the options set here (non-zero)
        replacing it (a coreset's learnt per-point weights stay: ``coreset_weight`` replaces the w they multiply)."""
        return dataclasses.replace(
            recorded,
            weight=self.coreset_weight or recorded.weight,
            temperature=self.temperature or recorded.temperature,
            prior_std=self.prior_std or recorded.prior_std,
        )


@dataclass(frozen=True)
class EvalSettings:
    """One evaluation cell's resolved settings: the protocol's name, the shared section (``common``, with the
    protocol's preset values applied) and the protocol's own section (``own``). Built once per cell by
    :meth:`pseudocoresets.config.RunConfig.resolve` (or :meth:`build` in the Python API); read-only afterwards."""

    protocol: str
    common: EvalConfig
    own: Any

    @property
    def module(self):
        from .protocols import protocol_module

        return protocol_module(self.protocol)

    def validate(self) -> None:
        self.common.validate()
        self.own.validate()

    def posterior(self, recorded: PosteriorSpec) -> PosteriorSpec:
        return self.common.posterior(recorded)

    def planned_calls(self) -> int:
        """Network (gradient) calls the evaluation plans, over every repeat (for the compile decision)."""
        return self.common.repeats * self.module.planned_calls(self.own)

    def kept_states(self) -> int:
        """Parameter vectors one repeat keeps at once (for the memory check)."""
        return self.module.kept_states(self.own)

    @classmethod
    def build(cls, protocol: str = "hmc", **options: Any) -> "EvalSettings":
        """Settings from keyword options, each a field of :class:`EvalConfig` or of the protocol's own ``Config``
        (e.g. ``EvalSettings.build("hmc", chains=2, iterations=20, repeats=1)``); nothing else is applied."""
        from .protocols import protocol_module

        module = protocol_module(protocol)
        shared = {f.name for f in dataclasses.fields(EvalConfig)}
        own_names = {f.name for f in dataclasses.fields(module.Config)}
        unknown = sorted(set(options) - shared - own_names)
        if unknown:
            raise UserError(
                f"unknown evaluation option(s) {', '.join(unknown)} for protocol {protocol}; options: "
                f"{', '.join(sorted(shared | own_names))}"
            )
        common = EvalConfig(protocol=protocol, **{k: v for k, v in options.items() if k in shared and k != "protocol"})
        own = module.Config(**{k: v for k, v in options.items() if k in own_names and k not in shared})
        return cls(protocol, common, own)
