"""Evaluation protocols: ``hmc`` (full-batch HMC on the coreset), ``asghmc`` (A-SGHMC), and ``vbpc`` (a network
trained on the coreset with the closed-form posterior of its last layer, last_layer.py).

Posterior on the coreset (u, y_u), at temperature T (samplers/posterior.py):

    pi_u(theta) ∝ exp( (1/T) [ sum_m log p(y_m | u_m, theta) + log N(theta; 0, sigma^2 I) ] ).

Chains start at theta ~ N(0, init_std^2 I) and run through the shared chain driver (samplers/driver.py):
after ``burn_in`` iterations every ``thin``-th state is kept. The predictive
averages the softmax over all kept samples of all chains; metrics are computed on it (metrics.py).
A protocol is repeated with independent seeds and reported as mean and std. Sampling protocols also report
split R-hat and ESS of the predictions on fixed test points (diagnostics.py).

``asghmc`` (the paper's A-SGHMC): SGHMC (samplers/sghmc.py) on the same potential, where every gradient is
taken on a fresh DSA augmentation of the fixed coreset; friction 0.1, temperature 0.01 and one kept sample
per block of 5 steps are the official values (applied by the config unless set explicitly).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import parallel
from ..corruptions import CORRUPTIONS

from ..augment import DSA
from ..errors import UserError
from ..models import FlatModel, compiling
from ..samplers import (
    Chain,
    CoresetPosterior,
    MassAdapter,
    PosteriorSpec,
    StepSizeAdapter,
    acceptance_rate,
    hmc,
    run_chain,
    sghmc,
)
from ..utils import generator, progress
from .diagnostics import predictive_diagnostics
from .last_layer import last_layer_predictive
from .metrics import agreement_metrics, classification_metrics, regression_metrics

# summary metrics per likelihood task (models/likelihood.py)
DIAGNOSTICS = ("rhat_median", "rhat_max", "ess_median", "ess_min")  # diagnostics.py, per repeat
METRICS = {"classification": ("accuracy", "nll", "ece", "brier"), "regression": ("rmse", "nll", "coverage_95")}


# Scoring runs compiled (--evaluate.compile) from this many batch forwards on: on the 2-core CPU compilation took
# 2-4 s per cell and saved about 0.025 s of each 256-image forward of the quick ConvNet (2.83 -> 1.81 s per 40
# batches, benchmarks/results/scoring.md), so it pays from about 100-150 forwards. A quick-preset repeat scores 8
# samples x 40 batches = 320 (compiled); the demo preset's 6 x 40 = 240 stay eager.
COMPILE_MIN_FORWARDS = 256


@dataclass
class EvalConfig:
    """Bayesian evaluation (defaults: the official HMC settings at ipc 10, with a correct sampler)."""

    protocol: str = field(
        default="hmc",
        metadata={
            "help": "evaluation protocol: hmc, asghmc, or vbpc (a network "
            "trained on the coreset, its last layer's closed-form posterior)"
        },
    )
    chains: int = field(default=10, metadata={"help": "independent chains per repeat"})
    iterations: int = field(default=100, metadata={"help": "HMC iterations per chain (incl. burn-in)"})
    burn_in: int = field(default=50, metadata={"help": "iterations discarded at the start of each chain"})
    thin: int = field(default=1, metadata={"help": "keep every thin-th state after burn-in"})
    leapfrog_steps: int = field(default=5, metadata={"help": "leapfrog steps per HMC proposal"})
    step_size: float = field(default=0.01, metadata={"help": "leapfrog step size (initial value if adapted)"})
    adapt_step_size: bool = field(default=True, metadata={"help": "adapt the step size during burn-in"})
    target_accept: float = field(default=0.75, metadata={"help": "target acceptance probability of the adaptation"})
    mass: str = field(
        default="identity",
        metadata={
            "help": "hmc: mass matrix: identity, or diagonal (each chain estimates it from its own burn-in in "
            "windows of doubling length, as Stan does)",
            "identity": "unless-set",
        },
    )
    prior_std: float = field(
        default=0.0,
        metadata={"help": "sigma of the Gaussian prior (0 = the coreset's posterior, --posterior.prior_std)"},
    )
    init_std: float = field(default=0.1, metadata={"help": "chains start at theta ~ N(0, init_std^2 I)"})
    temperature: float = field(
        default=0.0,
        metadata={
            "help": "posterior temperature T (0 = the coreset's posterior, --posterior.temperature; asghmc: 0.01)"
        },
    )
    coreset_weight: float = field(
        default=0.0, metadata={"help": "coreset weight w (0 = the coreset's posterior, --posterior.weight)"}
    )
    friction: float = field(default=0.1, metadata={"help": "asghmc: friction alpha"})
    augment_per_image: bool = field(
        default=True, metadata={"help": "asghmc: DSA draws per image (false: one per batch)"}
    )
    sghmc_step_size: float = field(default=1e-4, metadata={"help": "asghmc: step size eta"})
    repeats: int = field(default=10, metadata={"help": "independent repeats (seeds) for mean +/- std"})
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
            "help": "test points whose log predictive probability "
            "under every post-burn-in state gives split R-hat and ESS "
            "(0 = no diagnostics)",
            "identity": "never",
        },
    )
    vbpc_steps: int = field(
        default=300, metadata={"help": "vbpc: training steps of the network on the coreset", "identity": "unless-set"}
    )
    vbpc_lr: float = field(
        default=0.01, metadata={"help": "vbpc: SGD step size of that training (momentum 0.9)", "identity": "unless-set"}
    )
    vbpc_noise: float = field(
        default=0.0,
        metadata={
            "help": "vbpc: std of the coreset's Gaussian likelihood on its "
            "targets (0 = the one its targets were learnt for, else 0.1)",
            "identity": "unless-set",
        },
    )
    learnt_targets: bool = field(
        default=False,
        metadata={
            "help": "hmc / asghmc: sample the coreset posterior with the coreset's learnt real targets (VBPC's) "
            "under their Gaussian likelihood (noise: vbpc_noise, else the one they were learnt with), not its "
            "class labels",
            "identity": "unless-set",
        },
    )
    seed: int = field(default=0, metadata={"help": "base seed; repeat r uses seed + r"})

    def validate(self) -> None:
        if self.protocol not in (*PROTOCOLS, *PREDICTORS):
            raise UserError(f"unknown protocol {self.protocol!r}; choose one of {', '.join((*PROTOCOLS, *PREDICTORS))}")
        if self.mass not in ("identity", "diagonal"):
            raise UserError(f"--evaluate.mass must be identity or diagonal (got {self.mass!r})")
        if self.vbpc_steps < 0 or not self.vbpc_lr > 0 or self.vbpc_noise < 0:
            raise UserError("--evaluate.vbpc_steps and vbpc_noise must be >= 0 and vbpc_lr > 0")
        if self.chains < 1 or self.repeats < 1 or self.thin < 1 or self.leapfrog_steps < 1:
            raise UserError("--evaluate.chains, repeats, thin and leapfrog_steps must be >= 1")
        if not 0 <= self.burn_in < self.iterations:
            raise UserError(
                f"--evaluate.burn_in ({self.burn_in}) must be >= 0 and below iterations ({self.iterations})"
            )
        if not 0 < self.friction <= 1 or self.sghmc_step_size <= 0:
            raise UserError("--evaluate.friction must be in (0, 1] and sghmc_step_size > 0")
        if self.step_size <= 0 or self.init_std < 0:
            raise UserError("--evaluate.step_size must be > 0 and init_std >= 0")
        if self.prior_std < 0 or self.temperature < 0 or self.coreset_weight < 0:
            raise UserError("--evaluate.prior_std, temperature and coreset_weight must be >= 0 (0 = the coreset's)")
        if self.diagnostic_points < 0:
            raise UserError(f"--evaluate.diagnostic_points must be >= 0 (got {self.diagnostic_points})")
        if self.test_batch < 1 or self.ece_bins < 1:
            raise UserError(
                f"--evaluate.test_batch and --evaluate.ece_bins must be >= 1 (got {self.test_batch} and "
                f"{self.ece_bins})"
            )
        if not 0 < self.target_accept < 1:
            raise UserError(f"--evaluate.target_accept must be in (0, 1) (got {self.target_accept})")
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

    def posterior(self, recorded: PosteriorSpec) -> PosteriorSpec:
        """The posterior to sample: the coreset's recorded one, with the options set here (non-zero) replacing it
        (a coreset's learnt per-point weights stay: ``coreset_weight`` replaces the w they multiply)."""
        return dataclasses.replace(
            recorded,
            weight=self.coreset_weight or recorded.weight,
            temperature=self.temperature or recorded.temperature,
            prior_std=self.prior_std or recorded.prior_std,
        )


Prepare = Callable[[torch.Tensor], torch.Tensor]


def _prepared(x: torch.Tensor, prepare: Prepare | None) -> torch.Tensor:
    """A test batch as network input; images in channels-last memory order (the CPU convolutions and
    elementwise layers run 1.09-1.18x faster on it at widths 32-64, ``benchmarks/results/scoring.md``; same
    values to 1e-6)."""
    x = prepare(x) if prepare is not None else x
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


@torch.no_grad()
def predictive_probs(
    model: FlatModel, theta: torch.Tensor, x: torch.Tensor, batch: int, prepare: Prepare | None = None
) -> torch.Tensor:
    """softmax(f(x; theta)) in batches; ``prepare`` maps stored (e.g. uint8) images to network inputs."""
    return predictive_average(model, theta[None], x, batch, prepare)


def compile_pays(compile: bool, model: FlatModel, samples: int, images: int, batch: int, device: torch.device) -> bool:
    """Whether scoring ``samples`` parameter vectors on ``images`` inputs should run compiled: asked for, at least
    COMPILE_MIN_FORWARDS batch forwards (compilation costs 2-10 s, which a short evaluation would not earn back),
    and a network and device that can compile (models/compiling.py)."""
    if not compile or samples * -(-images // max(batch, 1)) < COMPILE_MIN_FORWARDS:
        return False
    return compiling.can_compile(model.module, device)


def _scorer(model: FlatModel, batch: int, compile: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(theta, x) -> logits; compiled, a short last batch is padded to ``batch`` rows (one compiled shape), and a
    failed compilation falls back to the eager network with one line on stderr."""
    if not compile or compiling.failed():
        return model._forward  # eager: what --no-evaluate.compile or a short scoring asks for
    forward = model.compiled()

    def compiled(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not compiling.failed():
            try:
                return forward(theta, x)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager network gives the same logits
                compiling.record_failure(exc)
        return model._forward(theta, x)

    def padded(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if len(x) == batch:
            return compiled(theta, x)
        fill = x[-1:].expand(batch - len(x), *x.shape[1:])
        return compiled(
            theta,
            torch.cat([x, fill]).contiguous(memory_format=torch.channels_last)
            if x.dim() == 4
            else torch.cat([x, fill]),
        )[: len(x)]

    return padded


@torch.no_grad()
def predictive_average(
    model: FlatModel,
    thetas: torch.Tensor,
    x: torch.Tensor,
    batch: int,
    prepare: Prepare | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """1/K sum_k softmax(f(x; theta_k)) for samples ``thetas`` [K, P].

    Each test batch is prepared once (normalisation, ZCA) and scored by every sample, so the
    preprocessing is not repeated per posterior sample. ``compile``: the network under torch.compile.
    """
    score = _scorer(model, batch, compile)
    out = []
    for i in range(0, len(x), batch):
        xb = _prepared(x[i : i + batch], prepare)
        total = model.likelihood.predictive(score(thetas[0], xb))
        for theta in thetas[1:]:
            total += model.likelihood.predictive(score(theta, xb))
        out.append(total / len(thetas))
    return torch.cat(out)


@torch.no_grad()
def predictive_samples(
    model: FlatModel,
    thetas: torch.Tensor,
    x: torch.Tensor,
    batch: int,
    prepare: Prepare | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """Per-sample predictive statistics [K, N] (regression: the means f(x; theta_k)), kept for the mixture's NLL."""
    score = _scorer(model, batch, compile)
    out = []
    for i in range(0, len(x), batch):
        xb = _prepared(x[i : i + batch], prepare)
        out.append(torch.stack([model.likelihood.predictive(score(theta, xb)) for theta in thetas]))
    return torch.cat(out, dim=1)


MIN_ACCEPTANCE = 1e-3
"""Below this mean acceptance probability after burn-in, HMC's chains have stayed where they started: no result."""


def check_result(
    what: str,
    metrics: dict[str, dict],
    acceptance: float | None = None,
    advice: str = "lower --evaluate.init_std, step_size or sghmc_step_size",
) -> None:
    """Refuse what is not a result (:class:`UserError`, one line with advice): a non-finite metric on any test set
    (``metrics``: set name -> metric name -> value), or chains that accepted (almost) none of their proposals."""
    import math

    for name, row in metrics.items():
        for key, value in row.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserError(
                    f"{what} gave {key} = {value} on the {name} set: the posterior samples' predictions are not "
                    f"finite (a diverged chain, or a start too far out: {advice}); not saved"
                )
    if acceptance is not None and math.isfinite(acceptance) and acceptance < MIN_ACCEPTANCE:
        raise UserError(
            f"{what}: its chains accepted {acceptance:.1e} of their proposals after burn-in, so they never left "
            "their starting points; lower --evaluate.step_size or keep --evaluate.adapt_step_size on (and check "
            "--evaluate.temperature and coreset_weight); not saved"
        )


def predictive_metrics(model: FlatModel, predictive: torch.Tensor, targets: torch.Tensor, config: EvalConfig) -> dict:
    """The task's metrics of a predictive (classification: averaged probabilities; regression: per-sample means)."""
    if model.likelihood.task == "regression":
        return regression_metrics(predictive, targets, model.likelihood.noise_std)
    return classification_metrics(predictive, targets, config.ece_bins)


def _hmc(posterior: CoresetPosterior, config: EvalConfig) -> tuple[Any, StepSizeAdapter | None, int]:
    kernel = hmc.build(
        posterior.potential_and_grad, config.leapfrog_steps, config.step_size, posterior.metropolis_potential
    )
    adapter = StepSizeAdapter(config.step_size, config.target_accept) if config.adapt_step_size else None
    return kernel, adapter, 0


def _asghmc(posterior: CoresetPosterior, config: EvalConfig) -> tuple[Any, StepSizeAdapter | None, int]:
    kernel = sghmc.build(
        posterior.energy_grad(DSA(per_image=config.augment_per_image)),
        config.sghmc_step_size,
        config.friction,
        posterior.temperature,
    )
    return kernel, None, config.thin - 1


# sampling protocols: name -> (posterior, config) -> (kernel, step-size adapter or None, thinning phase of the driver)
PROTOCOLS: dict[str, Callable[[CoresetPosterior, EvalConfig], tuple[Any, StepSizeAdapter | None, int]]] = {
    "hmc": _hmc,
    "asghmc": _asghmc,
}


# protocols that predict without sampling: name -> (model, x, y, targets, test sets, config, seed, prepare,
# recorded posterior) -> (probabilities per test set, stats)
def _vbpc(model, coreset_x, coreset_y, targets, test_sets, config, seed, prepare, recorded, target_noise=None):
    if model.likelihood.task != "classification":
        raise UserError("the vbpc protocol predicts classes; use --protocols hmc for regression")
    noise = config.vbpc_noise or target_noise or 0.1
    return last_layer_predictive(
        model,
        coreset_x,
        coreset_y,
        targets,
        test_sets,
        config.posterior(recorded),
        seed,
        config.vbpc_steps,
        config.vbpc_lr,
        config.test_batch,
        noise,
        prepare,
    )


PREDICTORS: dict[str, Callable[..., tuple[dict[str, torch.Tensor], dict]]] = {"vbpc": _vbpc}


def sampled_targets(config: EvalConfig, targets: torch.Tensor | None, target_noise: float | None) -> dict:
    """The targets and noise the sampled coreset posterior uses: none unless ``--evaluate.learnt_targets``."""
    if not config.learnt_targets:
        return {}
    if targets is None:
        raise UserError("--evaluate.learnt_targets: this coreset has no learnt targets (only vbpc learns them)")
    return {"targets": targets, "target_noise": config.vbpc_noise or target_noise or 0.1}


def posterior_predictive(
    model: FlatModel,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    test_sets: dict[str, torch.Tensor],
    config: EvalConfig,
    seed: int,
    quiet: bool = True,
    prepare: Prepare | None = None,
    recorded: PosteriorSpec = PosteriorSpec(),
    diagnostic: tuple[torch.Tensor, torch.Tensor] | None = None,
    targets: torch.Tensor | None = None,
    target_noise: float = 1.0,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Run ``config.chains`` chains of the protocol's sampler on the coreset posterior (``recorded``, the one the
    coreset was learnt for, with ``config``'s non-zero options replacing it), keep their samples ([K, P], small
    next to the test sets), then average the predictive of every kept sample on every test set (regression:
    keep every sample's predictive mean, [K, N]). ``diagnostic``: test inputs (stored form) and labels whose log
    predictive probabilities under every post-burn-in state give split R-hat and ESS (diagnostics.py;
    classification). ``targets``: learnt real targets whose Gaussian likelihood (std ``target_noise``) replaces
    the labels' in the coreset posterior (``--evaluate.learnt_targets``)."""
    g = generator(seed, coreset_x.device)
    posterior = CoresetPosterior.from_spec(
        model, coreset_x, coreset_y, config.posterior(recorded), targets=targets, target_noise=target_noise
    )
    chains: list[Chain] = []
    observe = None
    if diagnostic is not None and model.likelihood.task == "classification":
        diag_x, diag_y = _prepared(diagnostic[0], prepare), diagnostic[1].long().reshape(-1, 1)

        def observe(theta: torch.Tensor) -> torch.Tensor:  # eager: one small batch, not worth a compiled graph
            return torch.log_softmax(model._forward(theta, diag_x), dim=1).gather(1, diag_y).squeeze(1)

    start = time.perf_counter()
    for _ in progress(range(config.chains), config.chains, f"{config.protocol} chains", quiet):
        kernel, adapter, phase = PROTOCOLS[config.protocol](posterior, config)
        init = config.init_std * torch.randn(model.num_params, generator=g, device=coreset_x.device)
        mass = MassAdapter(config.burn_in) if config.mass == "diagonal" and config.protocol == "hmc" else None
        chains.append(
            run_chain(kernel, init, g, config.iterations, config.burn_in, config.thin, phase, adapter, observe, mass)
        )
    kept = [theta for chain in chains for theta in chain.samples]
    if not kept:
        raise UserError("no posterior samples kept; raise --evaluate.iterations above burn_in")
    sampling = time.perf_counter() - start
    thetas = torch.stack(kept)
    score = predictive_samples if model.likelihood.task == "regression" else predictive_average
    images = sum(len(x) for x in test_sets.values())
    compile = compile_pays(config.compile, model, len(thetas), images, config.test_batch, thetas.device)
    probs = {name: score(model, thetas, x, config.test_batch, prepare, compile) for name, x in test_sets.items()}
    out = {
        "acceptance_rate": acceptance_rate(chains),
        "samples": len(kept),
        "final_step_size_mean": sum(c.step_size for c in chains) / len(chains),
        "mass_matrix": chains[0].metric,
        "sampling_seconds": sampling,
        "prediction_seconds": time.perf_counter() - start - sampling,
    }
    if observe is not None:
        out.update(predictive_diagnostics(torch.stack([torch.stack(c.observations) for c in chains]).cpu()))
    return probs, out


def _mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def evaluate_coreset(
    model: FlatModel,
    coreset_x: torch.Tensor,
    coreset_y: torch.Tensor,
    test_sets: dict[str, torch.Tensor],
    test_y: torch.Tensor,
    config: EvalConfig,
    quiet: bool = False,
    prepare: Prepare | None = None,
    recorded: PosteriorSpec = PosteriorSpec(),
    reference: dict[str, torch.Tensor] | None = None,
    finished: list[dict] | None = None,
    on_repeat: Callable[[list[dict]], None] | None = None,
    targets: torch.Tensor | None = None,
    target_noise: float | None = None,
) -> dict:
    """All repeats of the protocol on every test set (``test`` plus e.g. ``fog/3``); mean/std over repeats.

    Each repeat r has its own seed (``config.seed + r``), so repeats are independent: ``on_repeat`` receives the
    records of the repeats finished so far (JSON-able) after each one, and passing them back as ``finished``
    skips them, with the same final result as an uninterrupted evaluation.

    Results: ``summary`` (the clean ``test`` set), ``sets[name]`` per test set, and for corrupted sets the
    averages over all of them (``corrupted_mean``) and per severity (``severity_mean[s]``). With ``reference``
    (the full-data posterior's predictive per test set, classification) every set also gets agreement, total
    variation and predictive KL to it (metrics.py). ``targets``: the coreset's learnt real targets, read by the
    protocols that use them (``vbpc``), with the noise ``target_noise`` they were learnt for.
    """
    config.validate()
    if config.protocol == "asghmc" and coreset_x.dim() != 4:
        raise UserError("asghmc augments images (DSA) at every step; evaluate tabular coresets with --protocols hmc")
    keys = METRICS[model.likelihood.task]
    if reference is not None:
        if model.likelihood.task != "classification":
            raise UserError(
                "agreement with a reference predictive is defined for classification; regression "
                "evaluations of linear models report the exact divergences instead"
            )
        keys = (*keys, "agreement", "tv", "predictive_kl")
    done = {rec["stats"]["seed"] - config.seed: rec for rec in finished or []}
    todo = [r for r in range(config.repeats) if r not in done and parallel.mine(r)]  # under torchrun: split
    records = [done[r] for r in sorted(done) if r < config.repeats]
    for r in progress(todo, len(todo), f"evaluate {config.protocol}", quiet):
        if config.protocol in PREDICTORS:
            probs, stats = PREDICTORS[config.protocol](
                model,
                coreset_x,
                coreset_y,
                targets,
                test_sets,
                config,
                config.seed + r,
                prepare,
                recorded,
                target_noise,
            )
        else:
            diagnostic = None
            if config.diagnostic_points and "test" in test_sets:
                j = min(config.diagnostic_points, len(test_y))
                diagnostic = (test_sets["test"][:j], test_y[:j])
            probs, stats = posterior_predictive(
                model,
                coreset_x,
                coreset_y,
                test_sets,
                config,
                config.seed + r,
                prepare=prepare,
                recorded=recorded,
                diagnostic=diagnostic,
                **sampled_targets(config, targets, target_noise),
            )
        sets = {}
        for name in test_sets:
            # a corrupted set may hold only the first images of the test split (--evaluate.corruption_subset)
            sets[name] = predictive_metrics(model, probs[name], test_y[: len(test_sets[name])], config)
            if reference is not None:
                sets[name].update(agreement_metrics(probs[name], reference[name]))
        check_result(f"{config.protocol} repeat {r} (seed {config.seed + r})", sets, stats.get("acceptance_rate"))
        records.append({"sets": sets, "stats": {**stats, "seed": config.seed + r}})
        if on_repeat is not None:
            on_repeat(records)
    merged = {rec["stats"]["seed"]: rec for part in parallel.all_gather_objects(records) for rec in part}
    records = [merged[config.seed + r] for r in range(config.repeats)]
    per_set: dict[str, list[dict]] = {k: [rec["sets"][k] for rec in records] for k in test_sets}
    runs = [{**rec["sets"]["test"], **rec["stats"]} for rec in records]

    def summarise(rows: list[dict], names=keys) -> dict:
        return {k: dict(zip(("mean", "std"), _mean_std([row[k] for row in rows]))) for k in names}

    sampled = all(row.get("acceptance_rate") is not None for row in runs)
    diagnosed = [k for k in DIAGNOSTICS if all(k in row for row in runs)]
    summary = summarise(runs, (*keys, *(["acceptance_rate"] if sampled else []), *diagnosed))
    result = {
        "protocol": config.protocol,
        "summary": summary,
        "repeats": runs,
        "posterior": config.posterior(recorded).record(),
    }
    if config.learnt_targets and config.protocol in PROTOCOLS:
        result["posterior"]["likelihood"] = "learnt targets"  # the coreset's targets, not its labels
    corrupted = [k for k in test_sets if k != "test"]
    if corrupted:
        result["sets"] = {k: summarise(per_set[k]) for k in corrupted}

        # average over corrupted sets within each repeat, then mean/std over repeats
        def averaged(names):
            rows = [{m: sum(per_set[n][r][m] for n in names) / len(names) for m in keys} for r in range(config.repeats)]
            return summarise(rows)

        result["corrupted_mean"] = averaged(corrupted)
        severities = sorted({k.rsplit("/", 1)[1] for k in corrupted})
        result["severity_mean"] = {s: averaged([k for k in corrupted if k.endswith(f"/{s}")]) for s in severities}
    return result
