"""BPC-fKL with MCMC: the forward KL D_KL[pi_x || pi_u] with samples of the actual coreset posterior.

For pi_u(theta) ∝ exp((w f(u, theta) + log pi_0(theta)) / T) with f(u, theta) = sum_m log p(y_m | u_m, theta)
(samplers/posterior.py), differentiating KL(pi_x || pi_u) = E_{pi_x}[log pi_x - log pi_u] gives (Eq. 17 of the
paper, with the weight and temperature kept)

    grad_u KL(pi_x || pi_u) = (w / T) ( E_{pi_u}[grad_u f(u, theta)] - E_{pi_x}[grad_u f(u, theta)] ),

the gradient of the contrastive surrogate J(u) = (w/T) (E_{pi_u}[f(u, theta)] - E_{pi_x}[f(u, theta)]) with the
samples held fixed. The paper's Algorithm 1 (``fkl``) replaces pi_u by N(theta_u^(L_u), s^2 I) around a student
endpoint and pi_x by N(theta_x^(L_x), s^2 I): two isotropic Gaussians of one scale, so the estimate sees only two
points and never the covariance of pi_u. Here

- the pi_u term comes from HMC chains on the current coreset posterior (objectives/chains.py; persistent by
  default, or restarted at the pi_x samples, ``chain_start`` below), so its spread is the coreset posterior's
  own, as in contrastive-divergence learning of pseudocoresets (BPC-CD, Tiwary et al., UAI 2024, is the closest
  relative: it also keeps an MTT term, which we do not);
- the pi_x term comes from full-data posterior samples: with ``x_source = reference`` the samples of the
  reference stage (cyclical SGHMC or HMC on the full data, reference/), else expert snapshots of the last
  ``x_epochs`` epochs across experts with optional isotropic noise ``noise_x`` (the paper's Sigma_x). Expert
  snapshots are SGD iterates: their spread is set by the learning rate and batch size, not by pi_x, and on
  Bayesian linear regression it can be many posterior standard deviations (docs/fidelity.md).

Chain starts (``chain_start``). Persistent chains (the default) estimate E_{pi_u} itself, once they have mixed.
A network's posterior has many modes (and permutation copies of each); pi_u at w = 1 on a hundred images is
nearly the prior, and chains that wander off the experts' mode give a pi_u term that says nothing about the pi_x
samples' neighbourhood. With ``chain_start = x`` every iteration starts one chain at each pi_x sample and runs
``chain_steps`` transitions on pi_u: contrastive divergence CD-k (Hinton, 2002), whose pi_u term is "where pi_u
moves the full-data samples to". Its gradient is biased for small k; in expectation it vanishes at pi_u = pi_x
when the starts are exact pi_x draws (the HMC kernel of pi_u then leaves them in distribution). With expert
snapshots plus ``noise_x`` as starts, the fixed point is where pi_u's kernel leaves *that* distribution in place.
It stays local to the mode the pi_x samples describe. In this mode there is one chain per pi_x sample
(``x_samples``): ``chains`` and ``chain_burn_in`` play no part. Measured on the closed-form model and on
images in docs/fidelity.md.

As in ``fkl`` the coreset log-likelihood is averaged over the M points and the factor w/T dropped, so the
estimate is grad_u KL * T / (w M): the exact direction, scaled by a constant the learning rate absorbs.

Learnt per-point weights (``learn_weights``; Manousakas et al., 2020, learn weights and pseudo-points jointly).
With point m counting w v_m times, f_v(u, theta) = sum_m v_m log p(y_m | u_m, theta), the same differentiation gives

    d KL(pi_x || pi_u) / d v_m = (w / T) ( E_{pi_u}[log p(y_m | u_m, theta)] - E_{pi_x}[log p(y_m | u_m, theta)] ),

so one surrogate J(u, a) = mean_m v_m log p(y_m | u_m, theta) contrasted between the two sample sets, with
v_m = exp(a_m) (positive; a_m starts at 0, v_m = 1), yields both gradients with the one constant T / (w M):
d J / d a_m = v_m d J / d v_m. The chains sample pi_u with the current v, and the learnt v is recorded in the
coreset artifact's posterior, so that the evaluation samples the posterior the coreset was learnt for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import UserError
from .chains import ChainOptions, PersistentChains
from .interface import DistillContext, ObjectiveBase
from .student import maybe_augment

NAME = "fkl_mcmc"
NEEDS_EXPERTS = True


@dataclass
class Config(ChainOptions):
    """Forward KL with MCMC samples of the coreset posterior."""

    x_samples: int = field(
        default=10, metadata={"help": "full-data posterior samples (expert snapshots) per iteration"}
    )
    x_epochs: int = field(
        default=1, metadata={"help": "pi_x samples are snapshots of each expert's last x_epochs epochs"}
    )
    noise_x: float = field(default=0.01, metadata={"help": "std of isotropic noise added to the pi_x samples"})
    x_source: str = field(
        default="experts",
        metadata={
            "help": "pi_x samples from: experts (snapshots) or reference "
            "(the full-data reference posterior, 'bpc reference')"
        },
    )
    chain_start: str = field(
        default="persistent",
        metadata={
            "help": "persistent: the pi_u chains go on across iterations (PCD); x: every iteration one chain starts at "
            "each pi_x sample and runs chain_steps transitions (CD-k), in the full-data posterior's mode "
            "(chains and chain_burn_in are then unused)",
            "identity": "unless-set",
        },
    )
    learn_weights: bool = field(
        default=False,
        metadata={
            "help": "also learn a weight per coreset point (Manousakas et al.), recorded in the coreset's posterior",
            "identity": "unless-set",
        },
    )
    lr_weights: float = field(
        default=0.1, metadata={"help": "SGD learning rate of the log point weights", "identity": "unless-set"}
    )

    def validate(self) -> None:
        self.validate_chains("fkl_mcmc")
        if self.chain_start not in ("persistent", "x"):
            raise UserError(f"--fkl_mcmc.chain_start must be persistent or x (got {self.chain_start!r})")
        if self.x_source not in ("experts", "reference"):
            raise UserError(f"--fkl_mcmc.x_source must be experts or reference (got {self.x_source!r})")
        if min(self.x_samples, self.x_epochs) < 1:
            raise UserError("--fkl_mcmc.x_samples and x_epochs must be >= 1")
        if self.noise_x < 0:
            raise UserError(f"--fkl_mcmc.noise_x must be >= 0 (got {self.noise_x})")
        if not self.lr_weights > 0:
            raise UserError(f"--fkl_mcmc.lr_weights must be > 0 (got {self.lr_weights})")


def needs_reference(config: Config) -> bool:
    """Whether the pipeline must provide the reference stage's samples (``context.reference``)."""
    return config.x_source == "reference"


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """No per-ipc values (the blr preset's chains and pi_x source are in its definition, config.py)."""
    return {}


class ForwardKLMCMC(ObjectiveBase):
    name = NAME

    def __init__(self, config: Config, context: DistillContext):
        super().__init__(config, context)
        self.chains = PersistentChains.from_options(context, config)
        self.log_weights = None  # a_m, v_m = exp(a_m): learnt per-point weights (learn_weights)
        if config.learn_weights:
            if context.coreset_size < 1:
                raise UserError("fkl_mcmc learn_weights needs the coreset size in its context (use the outer loop)")
            dtype = context.real_x.dtype if context.real_x.is_floating_point() else torch.float32
            self.log_weights = torch.zeros(context.coreset_size, dtype=dtype, device=context.device, requires_grad=True)

    def param_groups(self) -> list[dict]:
        if self.log_weights is None:
            return []
        return [{"params": [self.log_weights], "lr": self.c.lr_weights, "momentum": 0.5}]

    def point_weights(self) -> torch.Tensor | None:
        """v = exp(a), differentiable in a (None without learn_weights)."""
        return None if self.log_weights is None else self.log_weights.exp()

    def summary(self) -> dict[str, Any]:
        v = self.point_weights()
        if v is None:
            return {}
        v = v.detach().cpu()
        return {
            "point_weights": [float(t) for t in v],
            "point_weights_range": {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())},
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = self.chains.state_dict()
        if self.log_weights is not None:
            state["log_weights"] = self.log_weights.detach().clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.chains.load_state_dict(state)
        if self.log_weights is not None:
            with torch.no_grad():
                self.log_weights.copy_(state["log_weights"])

    def full_data_samples(self, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        """``x_samples`` reference samples drawn at random, or expert snapshots of the last ``x_epochs`` epochs
        across experts; plus isotropic noise ``noise_x``."""
        pool, c = self.ctx.experts, self.c
        if c.x_source == "reference":
            ref = self.ctx.reference
            if ref is None:
                raise UserError("fkl_mcmc with x_source reference needs the reference posterior's samples")
            idx = torch.randint(len(ref), (c.x_samples,), generator=g, device=g.device)
            thetas = ref[idx.to(ref.device)].to(dtype)
            return thetas + c.noise_x * torch.randn(thetas.shape, generator=g, device=thetas.device, dtype=dtype)
        last = pool.num_snapshots - 1
        first = max(last - c.x_epochs + 1, 0)
        rows = []
        for _ in range(c.x_samples):
            e = int(torch.randint(len(pool.paths), (1,), generator=g, device=g.device))
            r = int(torch.randint(first, last + 1, (1,), generator=g, device=g.device))
            rows.append(pool.snapshot(e, r).to(dtype))
        thetas = torch.stack(rows)
        noise = torch.randn(thetas.shape, generator=g, device=thetas.device, dtype=dtype)
        return thetas + c.noise_x * noise

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, Any]:
        ctx = self.ctx
        v = self.point_weights()
        if self.c.chain_start == "x":  # CD-k: the pi_u samples are k transitions away from the pi_x samples
            thetas_x = self.full_data_samples(g, images.dtype)
            thetas_u = self.chains.advance(images, labels, g, v, starts=thetas_x)
        else:
            thetas_u = self.chains.advance(images, labels, g, v)
            thetas_x = self.full_data_samples(g, images.dtype)

        def log_lik(theta: torch.Tensor) -> torch.Tensor:
            x = maybe_augment(images, ctx.augment, g)
            if v is None:
                return -ctx.model.nll(theta, x, labels)
            return -(self.point_weights() * ctx.model.nll(theta, x, labels, reduction="none")).mean()

        total = contrastive_backward(log_lik, thetas_u, thetas_x)
        out = {
            "surrogate": float(total),
            "chain_samples": len(thetas_u),
            "chain_acceptance": self.chains.acceptance(),
            "chain_step_size": self.chains.step_size,
        }
        if v is not None:
            out["point_weight_mean"] = float(v.detach().mean())
        return out


def contrastive_backward(
    log_lik: Callable[[torch.Tensor], torch.Tensor], thetas_u: torch.Tensor, thetas_x: torch.Tensor
) -> torch.Tensor:
    """Back-propagate mean_s log_lik(theta_u^s) - mean_t log_lik(theta_x^t) (samples held fixed), one sample at a
    time (memory of one); ``log_lik(theta)`` is the mean coreset log-likelihood, differentiable in u, and may
    draw a fresh augmentation per call. Returns the (detached) value."""
    total = torch.zeros((), dtype=thetas_u.dtype)
    for thetas, sign in ((thetas_u, 1.0), (thetas_x, -1.0)):
        for theta in thetas:
            term = sign * log_lik(theta.detach()) / len(thetas)
            term.backward()
            total = total + term.detach()
    return total


def build(config: Config, context: DistillContext) -> ForwardKLMCMC:
    return ForwardKLMCMC(config, context)
