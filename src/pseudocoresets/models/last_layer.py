"""The closed-form last-layer posterior of VBPC and its one-pass predictive, on feature matrices.

The equations (V1)-(V8) are derived in :mod:`pseudocoresets.objectives.vbpc`: the coreset posterior of the last
layer under a Gaussian likelihood on learnt targets (V1)-(V3), the moments of the outputs at new points (V4),
VBPC's outer loss (V5) with its KL term (V6), the exact expected Gaussian log-likelihood (V7) and the
one-pass approximation of the class predictive (V8). The objective learns coresets with them; the evaluation
protocol ``vbpc`` (:mod:`pseudocoresets.evaluation.protocols.vbpc`) predicts with them. A posterior whose
Cholesky factor fails or is not finite (a tiny noise, diverged features or targets) is refused in one line naming
the options to change, never returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.func import functional_call

from ..errors import UserError
from .flat import FlatModel

NOISE_RANGE = (1e-3, 1e3)
"""Allowed std s of the Gaussian likelihood on learnt targets (``--vbpc.coreset_noise``,
``--evaluate.target_noise``): the ridge lambda = s^2 / (sigma^2 w) of (V3) must stay well above float32's rounding
of K_uu for A's Cholesky factor to exist; far above 1 the targets stop mattering."""
LR_MAX = 10.0
"""Largest SGD step size of a network trained on the coreset (``--vbpc.pool_lr``, ``--vbpc_eval.lr``): the squared
error diverges to non-finite weights long before it."""
SINGULAR = (
    "VBPC's last-layer posterior is numerically singular (the Cholesky factor of K_uu + lambda I failed or is not "
    "finite); raise the targets' noise (--vbpc.coreset_noise when distilling, --evaluate.target_noise when "
    "evaluating) or lower the step sizes that diverged (--vbpc.pool_lr, --vbpc.lr_targets, --distill.lr_images, "
    "--vbpc_eval.lr)"
)


@dataclass
class LastLayerPosterior:
    """q_u of (V1)-(V3): the coreset features, the Cholesky factor of A, A^{-1} T_u and the precisions."""

    phi_u: torch.Tensor  # [M, h]
    k_uu: torch.Tensor  # [M, M] = Phi Phi^T
    chol: torch.Tensor  # [M, M], A = K_uu + lambda I = chol chol^T
    alpha: torch.Tensor  # [M, K] = A^{-1} T_u
    targets: torch.Tensor  # [M, K]
    rho: float  # prior precision 1/sigma^2
    rho_t: float  # rho' = rho / T
    lam: float  # lambda = rho' / beta

    def moments(self, phi_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V4): means [B, K] and the shared variance [B] of the last-layer outputs at features ``phi_x``."""
        k_xu = phi_x @ self.phi_u.T
        mu = k_xu @ self.alpha
        solved = torch.cholesky_solve(k_xu.T, self.chol)  # A^{-1} K_ux [M, B]
        var = ((phi_x * phi_x).sum(1) - (k_xu.T * solved).sum(0)) / self.rho_t
        return mu, var.clamp_min(0)

    def kl_to_prior(self) -> torch.Tensor:
        """(V6): KL(q_u || N(0, rho^{-1} I)) summed over the K columns."""
        (m, h), k, k_uu = self.phi_u.shape, self.targets.shape[1], self.k_uu
        ratio = self.rho / self.rho_t
        trace_term = ratio * (h - torch.diagonal(torch.cholesky_solve(k_uu, self.chol)).sum()) - h
        # log det(I + K_uu / lambda) = log det A - M log lambda, from A's Cholesky factor
        logdet_a = 2 * torch.log(torch.diagonal(self.chol)).sum()
        logdet = h * math.log(ratio) - (logdet_a - m * math.log(self.lam))
        means = (self.alpha * (k_uu @ self.alpha)).sum()  # sum_k t_k^T A^{-1} K A^{-1} t_k
        return 0.5 * (k * (trace_term - logdet) + self.rho * means)


def last_layer_posterior(
    phi_u: torch.Tensor,
    targets: torch.Tensor,
    prior_std: float = 1.0,
    weight: float = 1.0,
    temperature: float = 1.0,
    noise: float = 1.0,
) -> LastLayerPosterior:
    """q_u of (V1)-(V3) for coreset features ``phi_u`` [M, h] and targets [M, K]."""
    try:
        rho = 1.0 / prior_std**2
        rho_t = rho / temperature
        beta = weight / (temperature * noise**2)
        lam = rho_t / beta
        k_uu = phi_u @ phi_u.T
        eye = torch.eye(len(k_uu), dtype=k_uu.dtype, device=k_uu.device)
        chol = torch.linalg.cholesky(k_uu + lam * eye)
    except (ZeroDivisionError, torch.linalg.LinAlgError):
        raise UserError(SINGULAR) from None
    alpha = torch.cholesky_solve(targets, chol)
    if not (math.isfinite(lam) and lam > 0 and torch.isfinite(chol).all() and torch.isfinite(alpha).all()):
        raise UserError(SINGULAR)
    return LastLayerPosterior(phi_u, k_uu, chol, alpha, targets, rho, rho_t, lam)


def predictive_probs(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """(V8): the one-pass approximation of the class predictive [B, K]."""
    return torch.softmax(mu / torch.sqrt(1 + math.pi * var / 8).unsqueeze(1), dim=1)


def expected_log_lik(model: FlatModel, mu: torch.Tensor, var: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """E_{q_u} log p(y | z) per point: (V7) exactly for a Gaussian likelihood, log (V8) for classes."""
    likelihood = model.likelihood
    if likelihood.task == "regression":
        s = likelihood.noise_std
        resid = y.reshape(-1) - mu.reshape(-1)
        return -0.5 * math.log(2 * math.pi * s * s) - (resid**2 + var) / (2 * s * s)
    logits = mu / torch.sqrt(1 + math.pi * var / 8).unsqueeze(1)
    return torch.log_softmax(logits, dim=1).gather(1, y.long().reshape(-1, 1)).squeeze(1)


def outer_loss(
    post: LastLayerPosterior, model: FlatModel, phi_x: torch.Tensor, y: torch.Tensor, num_data: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(V5) on a batch: (loss, its data term alone)."""
    mu, var = post.moments(phi_x)
    data = -expected_log_lik(model, mu, var, y).mean()
    return data + post.kl_to_prior() / num_data, data


def has_body(model: FlatModel) -> bool:
    return hasattr(model.module, "features") and hasattr(model.module, "classifier")


def features(model: FlatModel, theta: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """phi(x): the body's flattened output / sqrt(h) (ConvNet), or the input itself (linear model)."""
    if theta is None or not has_body(model):
        return x.flatten(1)
    params = {k[len("features.") :]: v for k, v in model.unflatten(theta).items() if k.startswith("features.")}
    phi = functional_call(model.module.features, params, (x,)).flatten(1).float()
    return phi / math.sqrt(phi.shape[1])


def base_targets(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The targets' starting point: centred one-hot rows (classes), or the coreset's targets as a column."""
    if labels.is_floating_point() or num_classes == 0:
        return labels.reshape(len(labels), -1).to(dtype)
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes).to(dtype)
    return onehot - 1.0 / num_classes


def squared_error_step(
    model: FlatModel, theta: torch.Tensor, momentum: torch.Tensor, x: torch.Tensor, targets: torch.Tensor, lr: float
) -> torch.Tensor:
    """One SGD step (momentum 0.9, ``momentum`` updated in place) of the whole network on the squared error of its
    outputs against the coreset's ``targets``: how VBPC's pool networks and its evaluation's network are trained."""
    theta = theta.detach().requires_grad_(True)
    loss = ((model(theta, x) - targets) ** 2).sum(1).mean()
    (grad,) = torch.autograd.grad(loss, theta)
    with torch.no_grad():
        momentum.mul_(0.9).add_(grad)
        return (theta - lr * momentum).detach()
