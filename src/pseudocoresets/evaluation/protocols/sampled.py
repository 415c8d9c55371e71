"""What the sampled protocols (HMC, A-SGHMC) share: chains on the coreset posterior through the shared chain
driver, the kept states scored on every test set, and convergence diagnostics on fixed test points.

Posterior on the coreset (u, y_u), at temperature T (samplers/posterior.py):

    pi_u(theta) ∝ exp( (1/T) [ sum_m log p(y_m | u_m, theta) + log N(theta; 0, sigma^2 I) ] ).

Chains start at theta ~ N(0, init_std^2 I); after ``burn_in`` iterations every ``thin``-th state is kept. The
predictive averages the softmax over all kept samples of all chains (regression: every state's predictive mean
is kept). Split R-hat and ESS of the log predictive probabilities of the first ``diagnostic_points`` test points
are reported (diagnostics.py).

Stopping rule (``settle_tv`` > 0 or ``settle_rhat`` > 0; classification). A fixed budget ranks the budget as
much as the coreset, so the chains may instead run until their predictive has settled. After ``iterations``, and
after every doubling of the chains' post-burn-in length, the rule checks

    TV_halves = 1/J sum_j 1/2 sum_k | p_first(k | x_j) - p_second(k | x_j) |,                       (S1)

the total variation between the predictive of the first and of the second half of every chain's kept states
(pooled over chains) on the first ``settle_points`` test points, and the median over the diagnostic points of
the split R-hat of their log predictive probabilities (diagnostics.py). Sampling stops (``settled``) once every
criterion set is met, TV_halves <= ``settle_tv`` and R-hat <= ``settle_rhat``, or at ``max_iterations`` per chain
(``cap``). Both compare the chains' first halves with their second halves; R-hat does it relative to the
chains' own Monte Carlo spread, so a threshold such as 1.1 means the same at any budget, while (S1) also falls
with the Monte Carlo error of the pooled predictive and so asks for more draws the lower it is set. Every check
is recorded (``settle_trace``: budget, TV_halves, the TV between even and odd kept states, R-hat, and accuracy
and NLL on the settle points), with the budget used and why sampling stopped; the full test sets are scored once,
with every kept state, at the end.
"""

from __future__ import annotations

import time
from dataclasses import field
from typing import Any, Callable

import torch

from ...errors import UserError
from ...samplers import (
    BurnInAdaptation,
    Chain,
    CoresetPosterior,
    MassAdapter,
    StepSizeAdapter,
    acceptance_rate,
    sample,
    sample_batched,
)
from ...utils import generator, progress
from ..diagnostics import predictive_diagnostics
from ..scoring import prepared, compile_pays, predictive_average, predictive_samples
from .interface import DRAWS, Prediction, ProtocolContext

# (posterior, config) -> (kernel, step-size adapter or None, thinning phase of the driver, mass adapter or None)
KernelFactory = Callable[[CoresetPosterior, Any], tuple[Any, StepSizeAdapter | None, int, MassAdapter | None]]


def kept_per_chain(config: Any) -> int:
    """States one chain keeps, at the most (under the stopping rule: at its cap)."""
    return max(0, -(-(iteration_cap(config) - config.burn_in) // config.thin))


def settle_tv_field() -> Any:
    return field(
        default=0.0,
        metadata={
            "help": "stopping rule: 0 = a fixed budget of iterations; else double the chains' post-burn-in length "
            "until the predictive of the second half of the kept states is within this total variation of the "
            "first half's (on settle_points test points), up to max_iterations",
            "identity": "unless-set",
        },
    )


def settle_rhat_field() -> Any:
    return field(
        default=0.0,
        metadata={
            "help": "stopping rule: 0 = no R-hat criterion; else double the chains' post-burn-in length until the "
            "median split R-hat of the diagnostic points' log predictive is at most this (e.g. 1.1), up to "
            "max_iterations",
            "identity": "unless-set",
        },
    )


RULE = ("settle_tv", "settle_rhat")  # the stopping rule's thresholds: its other options matter only with one set


def max_iterations_field() -> Any:
    return field(
        default=0,
        metadata={
            "help": "stopping rule: most iterations per chain (0 = 16 x iterations)",
            "identity": "unless-set",
            "only_with": RULE,
        },
    )


def settle_points_field() -> Any:
    return field(
        default=1000,
        metadata={
            "help": "stopping rule: test points its total variation is measured on",
            "identity": "unless-set",
            "only_with": RULE,
        },
    )


def validate_settling(config: Any, section: str) -> None:
    """The stopping rule's options (settle_tv, settle_rhat, max_iterations, settle_points) of a sampled protocol's
    Config."""
    if not 0 <= config.settle_tv < 1:
        raise UserError(f"--{section}.settle_tv must be in [0, 1) (0: a fixed budget; got {config.settle_tv})")
    if config.settle_rhat and not 1 < config.settle_rhat < 10:
        raise UserError(f"--{section}.settle_rhat must be 0 (off) or in (1, 10), e.g. 1.1 (got {config.settle_rhat})")
    if settling(config) and config.max_iterations and config.max_iterations < config.iterations:
        raise UserError(
            f"--{section}.max_iterations ({config.max_iterations}) must be 0 (16 x iterations) or at least "
            f"iterations ({config.iterations})"
        )
    if config.settle_points < 1:
        raise UserError(f"--{section}.settle_points must be >= 1 (got {config.settle_points})")


def iteration_cap(config: Any) -> int:
    """The most iterations per chain a repeat can run: ``iterations``, or under the stopping rule its cap."""
    if not settling(config):
        return config.iterations
    return config.max_iterations or 16 * config.iterations


def settling(config: Any) -> bool:
    """Whether the stopping rule is on (a threshold set for settle_tv or settle_rhat)."""
    return bool(getattr(config, "settle_tv", 0) or getattr(config, "settle_rhat", 0))


def _split(per_chain: list[list], interleaved: bool) -> tuple[list, list]:
    """Every chain's kept items cut into first and second halves (or even and odd ones), pooled over chains."""
    if interleaved:
        return [s for c in per_chain for s in c[0::2]], [s for c in per_chain for s in c[1::2]]
    return [s for c in per_chain for s in c[: len(c) // 2]], [s for c in per_chain for s in c[len(c) // 2 :]]


def _tv(first: torch.Tensor, second: torch.Tensor) -> float:
    return float(0.5 * (first - second).abs().sum(1).mean())


class SettlePoints:
    """The stopping rule's checks on the first ``points`` test points. Every kept state is scored there once, as
    it is kept (a check scores only the states kept since the last one), and (S1), the even/odd TV and the pooled
    predictive's accuracy and NLL follow from the saved per-state predictives."""

    def __init__(self, ctx: ProtocolContext, points: int, states: int = 0):
        self.ctx, self.x = ctx, ctx.test_sets["test"][:points]
        self.y = ctx.test_y[: len(self.x)].long()
        self.scored: list[list[torch.Tensor]] = []
        # compiled where the kept states at the cap (``states``) make it pay, as the final scoring: the same
        # compiled network, the points padded to its batch
        common = ctx.common
        self.compile = compile_pays(common.compile, ctx.model, states, len(self.x), common.test_batch, self.x.device)

    def check(self, chains: list[Chain]) -> dict[str, float]:
        """One check (module docstring): TV of the halves and of even/odd states, the median split R-hat of the
        diagnostic points (when observed, at least 4 draws per chain), and accuracy and NLL on the points."""
        ctx = self.ctx
        while len(self.scored) < len(chains):
            self.scored.append([])
        for scored, chain in zip(self.scored, chains):
            for theta in chain.samples[len(scored) :]:
                scored.append(
                    predictive_average(ctx.model, theta[None], self.x, ctx.common.test_batch, ctx.prepare, self.compile)
                )
        out = {}
        for key, interleaved in (("halves_tv", False), ("interleaved_tv", True)):
            firsts, seconds = _split(self.scored, interleaved)
            out[key] = _tv(torch.stack(firsts).mean(0), torch.stack(seconds).mean(0)) if firsts and seconds else 1.0
        if chains[0].observations and len(chains[0].observations) >= 4:
            rhat = predictive_diagnostics(torch.stack([torch.stack(c.observations) for c in chains]).cpu())
            if "rhat_median" in rhat:
                out["settle_rhat"] = rhat["rhat_median"]
        everything = [p for scored in self.scored for p in scored]
        out["kept"] = len(everything)
        if not everything:  # no state kept yet (A-SGHMC keeps the last of every block of thin): go on
            return out
        probs = torch.stack(everything).mean(0)
        out["accuracy"] = float((probs.argmax(1) == self.y).double().mean())
        out["nll"] = float(-probs.gather(1, self.y.reshape(-1, 1)).clamp_min(1e-40).log().mean())
        return out


def criteria_met(config: Any, check: dict[str, float]) -> bool:
    """Whether one check meets every criterion set (settle_tv, settle_rhat)."""
    tv, rhat = getattr(config, "settle_tv", 0), getattr(config, "settle_rhat", 0)
    if check.get("kept", 0) < 2:  # both halves need a kept state
        return False
    return (not tv or check["halves_tv"] <= tv) and (not rhat or check.get("settle_rhat", float("inf")) <= rhat)


class _Running:
    """One chain of a repeat, run through the shared driver and continued on demand (the stopping rule)."""

    def __init__(self, kernel, init: torch.Tensor, config: Any, adapter, phase: int, observe, mass):
        self.chain = Chain()
        self.tuning = BurnInAdaptation(self.chain, config.burn_in, config.thin, phase, adapter, observe, mass)
        self.kernel, self.state, self.done = kernel, kernel.init(init), 0

    def run(self, g: torch.Generator, iterations: int) -> None:
        (self.state,), self.kernel = sample(self.kernel, [self.state], g, iterations, self.tuning, start=self.done)
        self.done += iterations
        self.chain.step_size = self.kernel.step_size


class _Lockstep:
    """Every chain of a repeat stepped as one batch (samplers/batched.py), continued on demand like _Running."""

    def __init__(self, runs: list[_Running], step):
        self.runs, self.step = runs, step

    def run(self, g: torch.Generator, iterations: int) -> None:
        runs = self.runs
        states, kernels = sample_batched(
            [r.kernel for r in runs],
            [r.state for r in runs],
            g,
            iterations,
            [r.tuning for r in runs],
            self.step,
            start=runs[0].done,
        )
        for r, state, kernel in zip(runs, states, kernels):
            r.state, r.kernel, r.done = state, kernel, r.done + iterations
            r.chain.step_size = kernel.step_size


BATCH_CHOICES = ("auto", "on", "off")


def batch_chains_field() -> Any:
    return field(
        default="auto",
        metadata={
            "help": "step the chains as one batch (one vectorised gradient): on, off, or auto (by device: the loop "
            "on a CPU, where the batch measured 2.2-4x slower, benchmarks/results/chains_batched_cpu.md; the "
            "batch on an accelerator)",
            "identity": "unless-set",
        },
    )


def _batching(ctx: ProtocolContext, config: Any, name: str) -> dict:
    """Whether this repeat batches its chains (``batch_chains``). ``auto`` decides by the device's type, never
    by a timing, so that a run's results do not depend on how busy the machine was."""
    mode = getattr(config, "batch_chains", "off")
    if mode not in BATCH_CHOICES:
        raise UserError(f"--{name}.batch_chains must be one of {', '.join(BATCH_CHOICES)} (got {mode!r})")
    if mode == "off" or config.chains < 2:
        return {"chains_batched": False}
    return {"chains_batched": mode == "on" or ctx.coreset_x.device.type != "cpu"}


def validate_chains(config: Any, section: str) -> None:
    """The chain options every sampled protocol's Config has (chains, iterations, burn_in, thin, init_std)."""
    if config.chains < 1 or config.thin < 1:
        raise UserError(f"--{section}.chains and thin must be >= 1")
    if not 0 <= config.burn_in < config.iterations:
        raise UserError(
            f"--{section}.burn_in ({config.burn_in}) must be >= 0 and below iterations ({config.iterations})"
        )
    if config.init_std < 0:
        raise UserError(f"--{section}.init_std must be >= 0")


def sample_predictive(
    ctx: ProtocolContext,
    config: Any,
    seed: int,
    name: str,
    build: KernelFactory,
    batched_step: Callable[[CoresetPosterior], Callable] | None = None,
) -> Prediction:
    """Run ``config.chains`` chains of the kernel ``build`` makes on the coreset posterior, keep their samples
    ([K, P], small next to the test sets), then score every kept sample on every test set. With
    ``--evaluate.learnt_targets`` the posterior uses the coreset's learnt targets under their Gaussian likelihood
    instead of its labels. ``batched_step(posterior)`` gives a step of all chains at once (samplers/batched.py),
    used when ``config.batch_chains`` asks for it (module docstring)."""
    model, common = ctx.model, ctx.common
    g = generator(seed, ctx.coreset_x.device)
    targets: dict = {}
    if common.learnt_targets:
        if ctx.targets is None:
            raise UserError("--evaluate.learnt_targets: this coreset has no learnt targets (only vbpc learns them)")
        targets = {"targets": ctx.targets, "target_noise": ctx.target_noise_or_default()}
    posterior = CoresetPosterior.from_spec(model, ctx.coreset_x, ctx.coreset_y, ctx.posterior, **targets)
    observe = None
    if common.diagnostic_points and "test" in ctx.test_sets and model.likelihood.task == "classification":
        j = min(common.diagnostic_points, len(ctx.test_y))
        diag_x, diag_y = prepared(ctx.test_sets["test"][:j], ctx.prepare), ctx.test_y[:j].long().reshape(-1, 1)

        def observe(theta: torch.Tensor) -> torch.Tensor:  # eager: one small batch, not worth a compiled graph
            return torch.log_softmax(model._forward(theta, diag_x), dim=1).gather(1, diag_y).squeeze(1)

    settle = settling(config)
    if settle and (model.likelihood.task != "classification" or "test" not in ctx.test_sets):
        raise UserError(f"--{name}.settle_tv/settle_rhat compare class predictives on the test set; use a fixed budget")
    if getattr(config, "settle_rhat", 0) and observe is None:
        raise UserError(
            f"--{name}.settle_rhat reads the diagnostic points' R-hat; set --evaluate.diagnostic_points > 0"
        )
    start = time.perf_counter()
    runs = []
    batching: dict = {"chains_batched": False}
    if getattr(config, "batch_chains", "off") != "off" and batched_step is not None:
        batching = _batching(ctx, config, name)
    if batching["chains_batched"]:
        # the chains start from draws made before any of them moves, so that every chain is stepped together
        inits = [
            config.init_std * torch.randn(model.num_params, generator=g, device=ctx.coreset_x.device)
            for _ in range(config.chains)
        ]
        for init in inits:
            kernel, adapter, phase, mass = build(posterior, config)
            runs.append(_Running(kernel, init, config, adapter, phase, observe, mass))
        stepper: Any = _Lockstep(runs, batched_step(posterior))
        stepper.run(g, config.iterations)
    else:
        for _ in progress(range(config.chains), config.chains, f"{name} chains", ctx.quiet):
            kernel, adapter, phase, mass = build(posterior, config)
            init = config.init_std * torch.randn(model.num_params, generator=g, device=ctx.coreset_x.device)
            runs.append(_Running(kernel, init, config, adapter, phase, observe, mass))
            runs[-1].run(g, config.iterations)
        stepper = None
    chains = [r.chain for r in runs]
    settled: dict = {}
    budget, cap, trace = config.iterations, iteration_cap(config), []
    points = SettlePoints(ctx, config.settle_points, kept_per_chain(config) * config.chains) if settle else None
    while settle:  # the stopping rule (module docstring): double the post-burn-in length until it has settled
        trace.append({"iterations": budget, **points.check(chains)})
        met = criteria_met(config, trace[-1])
        if met or budget >= cap:
            settled = {
                "iterations": budget,
                **{k: trace[-1][k] for k in ("halves_tv", "interleaved_tv", "settle_rhat") if k in trace[-1]},
                "stopped": "settled" if met else "cap",
                "settle_trace": trace,
            }
            break
        more = min(budget - config.burn_in, cap - budget)
        for run in [stepper] if stepper is not None else runs:
            run.run(g, more)
        budget += more
    kept = [theta for chain in chains for theta in chain.samples]
    if not kept:
        raise UserError(f"no posterior samples kept; raise --{name}.iterations above burn_in")
    sampling = time.perf_counter() - start
    thetas = torch.stack(kept)
    score = predictive_samples if model.likelihood.task == "regression" else predictive_average
    images = sum(len(x) for x in ctx.test_sets.values())
    compile = compile_pays(common.compile, model, len(thetas), images, common.test_batch, thetas.device)
    probs = {key: score(model, thetas, x, common.test_batch, ctx.prepare, compile) for key, x in ctx.test_sets.items()}
    out = {
        "acceptance_rate": acceptance_rate(chains),
        "samples": len(kept),
        "final_step_size_mean": sum(c.step_size for c in chains) / len(chains),
        "mass_matrix": chains[0].metric,
        "sampling_seconds": sampling,
        "prediction_seconds": time.perf_counter() - start - sampling,
    }
    out.update(settled)
    out.update(batching)
    if observe is not None:
        draws = torch.stack([torch.stack(c.observations) for c in chains]).cpu()
        out.update(predictive_diagnostics(draws))
        out[DRAWS] = draws  # not JSON: the caller saves it (repeats.py) and drops it from the record
    return probs, out
