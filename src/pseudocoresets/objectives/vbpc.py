"""VBPC: the variational Bayesian pseudocoreset (Lee, Lee and Lee, ICLR 2025, arXiv 2502.21143).

Only the last layer is Bayesian. A network body (every layer but the last, parameters theta) maps an input to
features phi(x) in R^h (for the ConvNet: the flattened output of its conv blocks, divided by sqrt(h) so that
phi^T phi is of order one; for ``--model.arch linear`` the input itself, so that the whole model is the last
layer). The last layer W = [w_1 ... w_K] in R^{h x K} has the prior N(0, sigma^2 I) per column (rho = 1/sigma^2).

**The coreset posterior in closed form.** The coreset is M points u_m with learnt real targets t_m in R^K. Under
a Gaussian likelihood t_m ~ N(W^T phi(u_m), s_u^2 I) counted w times and tempered by T (the coreset posterior of
:mod:`pseudocoresets.samplers.posterior`), the posterior of each column is Gaussian with a shared covariance:

    (V1)  Sigma   = (rho' I_h + beta Phi^T Phi)^{-1},   rho' = rho / T,   beta = w / (T s_u^2)
    (V2)  m_k     = beta Sigma Phi^T t_k               (Phi = [phi(u_1) ... phi(u_M)]^T in R^{M x h})

By the Woodbury identity, with the coreset kernel K_uu = Phi Phi^T and lambda = rho' / beta,

    (V3)  A       = K_uu + lambda I_M,     m_k = Phi^T A^{-1} t_k,
          Sigma   = (1/rho') (I_h - Phi^T A^{-1} Phi),

so everything is an M x M solve (one Cholesky factor of A), whatever h. For a point x with features phi_x the
last-layer outputs z = W^T phi_x are Gaussian, independent across classes, with

    (V4)  mu(x)   = K_xu A^{-1} T_u  (in R^K),      v(x) = (phi_x^T phi_x - K_xu A^{-1} K_ux) / rho'.

**The outer objective.** VBPC picks the coreset whose closed-form posterior q_u is the best variational
posterior for the *full* data under the model's real likelihood. Since
KL(q_u || p(W | D)) = -ELBO(q_u) + log p(D) and log p(D) does not depend on the coreset, it minimises

    (V5)  L(u, t) = -(1/N) sum_n E_{q_u}[ log p(y_n | z(x_n)) ] + (1/N) KL(q_u || N(0, rho^{-1} I)),

the data term estimated on a random batch of ``real_batch`` training points (all of them when 0). The KL of K
Gaussian columns with covariance Sigma and means m_k against the prior, through (V3):

    (V6)  KL = 1/2 [ K (rho tr Sigma - h - log det(rho Sigma)) + rho sum_k ||m_k||^2 ]
          rho tr Sigma - h        = (rho/rho') (h - tr(A^{-1} K_uu)) - h
          log det(rho Sigma)      = h log(rho/rho') - log det(I_M + K_uu / lambda)
          ||m_k||^2               = t_k^T A^{-1} K_uu A^{-1} t_k

(at T = 1, rho' = rho and the first line is -tr(A^{-1} K_uu)).

The expected log-likelihood of a data point:

- Gaussian likelihood (regression with noise s, K = 1), exactly:
  (V7)  E log N(y; z, s^2) = log N(y; mu, s^2) - v / (2 s^2).
- Categorical likelihood (images): no closed form; VBPC's one-pass approximation replaces the predictive
  E[softmax(z)] by the softmax of the means scaled by the variance (the mean-field approximation of the
  softmax-Gaussian integral, exact in the limits v -> 0 and v -> infinity for the argmax):
  (V8)  p(y | x, q_u) ~= softmax( mu(x) / sqrt(1 + pi v(x) / 8) )_y,
  and the data term uses log (V8). The same formula is the predictive of VBPC's evaluation protocol
  (:func:`predictive_probs`): Bayesian model averaging over the last layer in one forward pass.

With identity features and a Gaussian likelihood, (V1)-(V7) are exact: (V5) is then KL(q_u || pi_x) / N minus a
constant, which the tests check against Bayesian linear regression in closed form.

**Feature extractors.** The features phi depend on the body theta, which the coreset must serve across
initialisations and training stages. A pool of ``pool_size`` bodies, each drawn from the network's
initialisation and trained on the coreset (``pool_lr`` SGD with momentum 0.9 on the squared error between
the network's outputs and the targets), is kept; each outer iteration uses one of them (in turn), takes one
training step of that network after the coreset moved, and replaces a network with a freshly initialised
one once it has taken ``pool_steps`` steps. Without a body (``--model.arch linear``) there is no pool.

**Learnt targets.** The targets start at the centred one-hot labels (classification: e_y - 1/K; regression:
the coreset's own targets) and are learnt with the pixels (``lr_targets``); the coreset artifact stores them
(``targets``, with the noise s_u they were learnt for) and VBPC's evaluation protocol reads both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import UserError
from ..models import FlatModel
from ..models.last_layer import (
    LR_MAX,
    NOISE_RANGE,
    LastLayerPosterior,
    base_targets,
    features,
    has_body,
    last_layer_posterior,
    outer_loss,
    squared_error_step,
)
from .interface import DistillContext, ObjectiveBase
from .student import maybe_augment

NAME = "vbpc"
NEEDS_EXPERTS = False

POOL_MAX = 64
"""Most feature extractors in the pool: each is a whole network with its momentum, kept in memory."""


@dataclass
class Config:
    """VBPC (Lee, Lee and Lee, ICLR 2025)."""

    real_batch: int = field(default=512, metadata={"help": "training points per estimate of the data term (0 = all)"})
    coreset_noise: float = field(
        default=0.1,
        metadata={
            "help": "s_u: std of the coreset's Gaussian likelihood on "
            "its targets (0 = the model's noise_std, regression)"
        },
    )
    lr_targets: float = field(default=10.0, metadata={"help": "learning rate of the learnt targets (0 = fixed)"})
    pool_size: int = field(default=4, metadata={"help": "feature extractors in the pool (ConvNet)"})
    pool_steps: int = field(
        default=100, metadata={"help": "training steps of a pool network before it is replaced by a fresh one"}
    )
    pool_lr: float = field(default=0.01, metadata={"help": "SGD step size of the pool networks (momentum 0.9)"})

    def validate(self) -> None:
        if self.real_batch < 0 or self.coreset_noise < 0 or self.lr_targets < 0:
            raise UserError("--vbpc.real_batch, coreset_noise and lr_targets must be >= 0")
        if self.pool_size < 1 or self.pool_steps < 1 or not self.pool_lr > 0:
            raise UserError("--vbpc.pool_size and pool_steps must be >= 1 and --vbpc.pool_lr > 0")
        low, high = NOISE_RANGE
        if self.coreset_noise and not low <= self.coreset_noise <= high:
            raise UserError(
                f"--vbpc.coreset_noise must be 0 (the model's noise) or in {low:g}..{high:g} (got "
                f"{self.coreset_noise:g}): a smaller noise makes the last layer's solve singular"
            )
        if self.pool_size > POOL_MAX:
            raise UserError(
                f"--vbpc.pool_size must be at most {POOL_MAX} networks (got {self.pool_size}): the pool keeps every "
                "network and its momentum in memory"
            )
        if self.pool_lr > LR_MAX:
            raise UserError(f"--vbpc.pool_lr must be at most {LR_MAX:g} (got {self.pool_lr:g}): SGD diverges beyond")


def preset_values(preset: str, ipc: int) -> dict[str, Any]:
    """Adam on the pixels (the data term is a mean over a batch: its scale is unrelated to the paper's SGD rates).
    On the blr preset (regression, a linear model) the targets move at 0.05: the image default lr_targets 10 makes
    the targets, and the loss, diverge within a few steps on the closed-form family (docs/fidelity.md)."""
    out = {"distill.optimizer": "adam", "distill.lr_images": 0.01}
    if preset == "blr":
        out["vbpc.lr_targets"] = 0.05
    return out


def check_data(config: Config, is_regression: bool) -> None:
    """What the data rule out, before any work: the model's noise stands in for s_u only under a Gaussian
    likelihood."""
    if config.coreset_noise == 0 and not is_regression:
        raise UserError("--vbpc.coreset_noise 0 means the model's Gaussian noise; give a value > 0 for classes")


def coreset_noise(config: Config, model: FlatModel) -> float:
    if config.coreset_noise > 0:
        return config.coreset_noise
    check_data(config, model.likelihood.task == "regression")
    return float(model.likelihood.noise_std)


# --- the objective ----------------------------------------------------------------------------------------------
class VBPC(ObjectiveBase):
    name = NAME
    loss_is_divergence = True  # (V5): the KL to the full-data posterior up to the evidence, per data point
    guard_options = ("vbpc.lr_targets", "distill.lr_images")

    def __init__(self, config: Config, context: DistillContext):
        super().__init__(config, context)
        outputs = max(context.num_classes, 1)
        self.offset = torch.zeros(
            context.coreset_size, outputs, device=context.device, dtype=context.real_x.dtype, requires_grad=True
        )
        self.noise = coreset_noise(config, context.model)
        self.body = has_body(context.model)
        self.pool: list[torch.Tensor] = []
        self.momenta: list[torch.Tensor] = []
        self.ages = torch.zeros(config.pool_size if self.body else 0, dtype=torch.long)
        self.turn = 0
        self.fresh = 0  # networks drawn so far (their seeds)
        for _ in range(len(self.ages)):
            self._new_network()
        self._labels: torch.Tensor | None = None

    def _new_network(self, slot: int | None = None) -> None:
        theta = self.ctx.model.init(self.ctx.seed * 1000 + 7919 + self.fresh).to(self.ctx.device)
        self.fresh += 1
        if slot is None:
            self.pool.append(theta)
            self.momenta.append(torch.zeros_like(theta))
        else:
            self.pool[slot], self.momenta[slot] = theta, torch.zeros_like(theta)
            self.ages[slot] = 0

    def param_groups(self) -> list[dict]:
        if self.c.lr_targets <= 0:
            return []
        return [{"params": [self.offset], "lr": self.c.lr_targets, "momentum": 0.5}]

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        return base_targets(labels, self.ctx.num_classes, self.offset.dtype).to(self.offset.device) + self.offset

    def _posterior(self, phi_u: torch.Tensor, targets: torch.Tensor) -> LastLayerPosterior:
        spec = self.ctx.posterior
        return last_layer_posterior(phi_u, targets, spec.prior_std, spec.weight, spec.temperature, self.noise)

    def step(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> dict[str, float]:
        ctx, c = self.ctx, self.c
        self._labels = labels
        theta = self.pool[self.turn] if self.body else None
        view = maybe_augment(images, ctx.augment, g)
        post = self._posterior(features(ctx.model, theta, view), self.targets(labels))
        n = len(ctx.real_x)
        if c.real_batch and c.real_batch < n:
            idx = torch.randint(n, (c.real_batch,), generator=g, device=g.device).to(ctx.real_x.device)
            real_x, real_y = ctx.real_x[idx], ctx.real_y[idx]
        else:
            real_x, real_y = ctx.real_x, ctx.real_y
        with torch.no_grad():
            phi_x = features(ctx.model, theta, real_x)
        loss, data = outer_loss(post, ctx.model, phi_x, real_y, n)
        loss.backward()
        return {"loss": float(loss.detach()), "data_term": float(data.detach())}

    def after_update(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """One training step of the pool network just used, on the moved coreset; a fresh one replaces it when
        it has taken ``pool_steps`` steps."""
        if not self.body:
            return
        i = self.turn
        targets = self.targets(labels).detach()
        self.pool[i] = squared_error_step(
            self.ctx.model, self.pool[i], self.momenta[i], images.detach(), targets, self.c.pool_lr
        )
        self.ages[i] += 1
        if self.ages[i] >= self.c.pool_steps:
            self._new_network(i)
        self.turn = (self.turn + 1) % len(self.pool)

    def summary(self) -> dict[str, Any]:
        if self._labels is None:
            return {}
        return {"label_targets": self.targets(self._labels).detach().cpu().tolist(), "target_noise": self.noise}

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"offset": self.offset.detach(), "ages": self.ages, "counters": torch.tensor([self.turn, self.fresh])}
        if self._labels is not None:  # what summary() needs when a resume starts after the last iteration
            state["labels"] = self._labels
        for i, (theta, momentum) in enumerate(zip(self.pool, self.momenta)):
            state[f"pool.{i}"], state[f"momentum.{i}"] = theta, momentum
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            return
        with torch.no_grad():
            self.offset.copy_(state["offset"].to(self.offset.device))
        self.ages = state["ages"].clone()
        self.turn, self.fresh = (int(v) for v in state["counters"])
        if "labels" in state:
            self._labels = state["labels"].to(self.ctx.device)
        self.pool = [state[f"pool.{i}"].to(self.ctx.device) for i in range(len(self.ages))]
        self.momenta = [state[f"momentum.{i}"].to(self.ctx.device) for i in range(len(self.ages))]


def build(config: Config, context: DistillContext) -> VBPC:
    return VBPC(config, context)
