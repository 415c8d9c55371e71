"""BPC-rKL: reverse KL divergence D_KL[pi_u || pi_x] (Section 3.1; Manousakas et al. 2020).

For the coreset posterior pi_u(theta) ∝ exp((w f_u(theta) + log pi_0(theta)) / T) (samplers/posterior.py; f_u the
summed coreset log-likelihood, w the coreset weight, T the temperature) and the full-data posterior
pi_x(theta) ∝ exp(f_x(theta) + log pi_0(theta)), Eq. 4 generalises to

    grad_u D_KL[pi_u || pi_x] = Cov_{pi_u}[ (w/T) grad_u f_u(theta),  c(theta) ],
    c(theta) = (w f_u(theta) + log pi_0(theta)) / T - f_x(theta) - log pi_0(theta)      (up to a constant),

(for w = N/M, T = 1: -(N^2/M) Cov[grad_u sum_m f, mean_n f - mean_m f], the official estimator times w N).
It is estimated with S samples theta_s of pi_u, the full-data sum f_x by N times the mean over a random real
batch, and divided by the constant w N / T so that the step size does not depend on w (for w = N/M it is
exactly the official estimator, whose pixel gradient is that of the coreset's summed log-likelihood: each pixel
gets grad_u f(u_m, theta), not 1/M of it; dividing by w M N / T instead makes rKL's pixel steps M times smaller
than the official ones at the same learning rate, and its coresets hardly move). Centring the
gradient term is unnecessary since sum_s (c_s - mean_c) = 0, so the estimate is the gradient of the surrogate
M/(S N) sum_s sg(c_s - mean_c) mean_m f(u_m, theta_s).

Samples of pi_u (``--rkl.samples``): ``gaussian`` is the paper's q_u = N(theta_u^(L_u), s^2 I) around the student
endpoint (student SGD from an expert snapshot, as BPC-fKL); ``chains`` draws them from persistent HMC chains
on the current coreset posterior (objectives/chains.py), which makes the estimate one of the exact gradient.

Precision: the estimator is a weighted sum of per-sample gradients whose weights sum to zero, i.e. a small
difference of nearly equal gradients (samples 0.01 apart); bf16 rounding of each term is amplified by that
cancellation (cosine with fp32 0.987-0.990 for S = 2-30 on the test network, tests/models/test_precision.py), so the
sample terms always run in fp32. Under ``--precision bf16`` only the student steps and the chains use bf16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import parallel
from ..errors import UserError
from ..samplers import PosteriorSpec
from .chains import ChainOptions, PersistentChains
from .interface import DistillContext, ObjectiveBase, Watch
from .student import paper_student_schedule, siamese, student_endpoint

NAME = "rkl"
NEEDS_EXPERTS = True
VERSION = 2  # 2: the pixel gradient of the summed coreset log-likelihood; coresets of version 1 are refused


@dataclass
class Config(ChainOptions):
    """BPC-rKL (defaults: the official ipc-10 values)."""

    samples: str = field(
        default="gaussian",
        metadata={
            "help": "samples of pi_u: gaussian (the paper's q_u around the student endpoint) or chains (persistent HMC)"
        },
    )
    num_samples: int = field(default=30, metadata={"help": "S: Gaussian samples of q_u per iteration (gaussian)"})
    noise: float = field(default=0.01, metadata={"help": "std of q_u (isotropic) around theta_u (gaussian)"})
    real_batch: int = field(default=1000, metadata={"help": "real images per iteration (the full-data term)"})

    def validate(self) -> None:
        if self.samples not in ("gaussian", "chains"):
            raise UserError(f"--rkl.samples must be gaussian or chains (got {self.samples!r})")
        if self.num_samples < 1 or self.real_batch < 1:
            raise UserError("--rkl.num_samples and --rkl.real_batch must be >= 1")
        if self.noise < 0:
            raise UserError(f"--rkl.noise must be >= 0 (got {self.noise})")
        self.validate_chains("rkl")


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """The paper's student schedule and S = 10 at ipc 1 and 20 (official). The small presets' own values (S = 10,
    medium's real batch) are in their definitions (config.py). On the blr preset, samples from 8 persistent
    chains (initial step 0.1): the paper's q_u raises the reverse KL on the closed-form family's larger problems
    (its samples never see pi_u), the chains lower it on every problem of the family's bench (docs/fidelity.md)."""
    if preset == "blr":
        return {"rkl.samples": "chains", "rkl.chains": 8, "rkl.chain_step_size": 0.1}
    out = paper_student_schedule(preset, ipc)
    if preset == "paper" and ipc in (1, 20):
        out["rkl.num_samples"] = 10
    return out


def rkl_surrogate(
    coreset_log_lik: Callable[[torch.Tensor, int], torch.Tensor],
    data_log_lik: Callable[[torch.Tensor, int], torch.Tensor],
    thetas: torch.Tensor,
    coreset_size: int,
    data_size: int,
    posterior: PosteriorSpec = PosteriorSpec(),
    mine: Callable[[int], bool] = lambda s: True,
    skip: Callable[[int], Any] | None = None,
    combine: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> torch.Tensor:
    """Back-propagate the covariance estimator of grad_u KL(pi_u || pi_x) (module docstring) for samples
    ``thetas`` [S, P] of pi_u, divided by w N / T.

    ``coreset_log_lik(theta, s)`` is the mean coreset log-likelihood mean_m f(u_m, theta), differentiable in u;
    ``data_log_lik(theta, s)`` the mean log-likelihood of a real batch (an estimate of f_x / N).
    Under torch.distributed a rank computes only the samples with ``mine(s)`` (``skip(s)`` for the others, to
    keep its generator in step), ``combine`` sums the per-sample log-likelihoods over ranks (each rank holds
    zeros for the others' samples), and the caller sums the ranks' gradients.
    Returns the sample covariance of (mean coreset log-lik, c) for monitoring (detached).
    """
    num = len(thetas)
    w, temp = posterior.weight, posterior.temperature
    core = torch.zeros(num, dtype=thetas.dtype, device=thetas.device)
    full = torch.zeros(num, dtype=thetas.dtype, device=thetas.device)
    with torch.no_grad():
        for s, t in enumerate(thetas):
            if mine(s):
                core[s] = coreset_log_lik(t, s).detach()
                full[s] = data_log_lik(t, s).detach()
            elif skip is not None:
                skip(s)
    core, full = combine(core), combine(full)
    log_prior = torch.stack([-0.5 * (t * t).sum() / posterior.prior_std**2 for t in thetas])
    c = (w * coreset_size * core + log_prior) / temp - data_size * full - log_prior
    weights = c - c.mean()
    for s in range(num):
        if mine(s):
            ((weights[s] * coreset_size / (num * data_size)) * coreset_log_lik(thetas[s].detach(), s)).backward()
    return (weights * (core - core.mean())).mean()


class ReverseKL(ObjectiveBase):
    name = "rkl"
    # E_{pi_u}[mean real log-likelihood], from the samples the step already scores: -N times it is the term of
    # KL(pi_u || pi_x) that grows when pi_u spreads where the data pin theta down (module docstring)
    watch = Watch(
        "data_log_lik",
        "higher",
        "the coreset posterior's expected log-likelihood of the real data fell, so its reverse KL to the full-data "
        "posterior may have risen (a gradient estimate dominated by noise, or chains that do not mix)",
        ("rkl.samples", "rkl.chains", "rkl.chain_mass", "distill.lr_images"),
    )

    def __init__(self, config: Config, context: DistillContext):
        super().__init__(config, context)
        self.chains = None
        if config.samples == "chains":
            self.chains = PersistentChains.from_options(context, config)
        else:  # q_u's samples sit around the student endpoint and never see pi_u: nothing to tell from them
            self.watch = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.chains.state_dict() if self.chains is not None else {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.chains is not None:
            self.chains.load_state_dict(state)

    def posterior_samples(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator):
        if self.chains is not None:
            return self.chains.advance(images, labels, g), {}
        theta_u, _, info = student_endpoint(self.ctx, images, labels, g)
        eps = torch.randn(self.c.num_samples, theta_u.numel(), generator=g, device=theta_u.device, dtype=theta_u.dtype)
        return theta_u + self.c.noise * eps, info

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        c, ctx = self.c, self.ctx
        thetas, info = self.posterior_samples(images, labels, g)
        idx = torch.randint(len(ctx.real_x), (c.real_batch,), generator=g, device=ctx.real_x.device)
        real_x, real_y = ctx.real_x[idx], ctx.real_y[idx]
        augmented: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def views(s: int):
            # one siamese augmentation draw per sample, shared by the real batch and the coreset; drawn with
            # autograd on even when first asked for inside the no-grad weight pass, as the backward reuses it
            if s not in augmented:
                with torch.enable_grad():
                    augmented[s] = siamese(ctx.augment, real_x, images, g)
            return augmented[s]

        model = ctx.model.with_precision("fp32")  # see the module docstring (precision)

        def coreset_ll(theta, s):
            return -model.nll(theta, views(s)[1], labels)

        scored: list[torch.Tensor] = []

        def data_ll(theta, s):
            value = -model.nll(theta, views(s)[0], real_y)
            scored.append(value.detach().reshape(()))
            return value

        cov = rkl_surrogate(
            coreset_ll,
            data_ll,
            thetas,
            len(images),
            len(ctx.real_x),
            ctx.posterior,
            mine=parallel.mine,
            skip=views,
            combine=parallel.all_reduce_sum_,
        )
        if parallel.active():  # each rank back-propagated its share of the S terms: sum them
            if images.grad is None:
                images.grad = torch.zeros_like(images)
            parallel.all_reduce_sum_(images.grad)
        # the mean over every sample, whichever rank scored it
        total = torch.zeros(2, dtype=torch.float64, device=images.device)  # sum, count
        if scored:
            total[0], total[1] = torch.stack(scored).sum(), len(scored)
        parallel.all_reduce_sum_(total)
        return {"covariance": float(cov), "data_log_lik": float(total[0] / total[1]), **info}


def build(config: Config, context: DistillContext) -> ReverseKL:
    return ReverseKL(config, context)
