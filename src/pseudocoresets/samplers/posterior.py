"""The coreset posterior, written once for every objective, sampler and protocol.

    pi_u(theta) ∝ exp( -U(theta) / T ),   U(theta) = w sum_m -log p(y_m | u_m, theta) + ||theta||^2 / (2 sigma^2),

i.e. [ prod_m p(y_m | u_m, theta)^w  N(theta; 0, sigma^2 I) ]^(1/T): every coreset point counts w times (w = 1 is
the paper's evaluation; w = N/M puts the coreset on the full data's scale, as Manousakas et al.'s weighted
pseudocoresets), and T < 1 sharpens the whole posterior (a cold posterior: the prior is tempered too, as in
the official A-SGHMC). Learnt per-point weights (Manousakas et al.; ``--fkl_mcmc.learn_weights``) are
multipliers v_m of w: point m counts w v_m times, U(theta) = w sum_m v_m (-log p(y_m | u_m, theta)) + ...; the
coreset artifact records them with w, T and sigma. The likelihood is the model's (:mod:`pseudocoresets.models.likelihood`),
or, for a coreset with learnt real targets t_m (VBPC's; ``targets``), the Gaussian likelihood it was learnt with,
-log p(t_m | u_m, theta) = |t_m - f(u_m; theta)|^2 / (2 s^2) + const with the targets' noise s: the whole network's
version of VBPC's last-layer model, so that HMC and A-SGHMC sample the posterior the coreset stands for.
:class:`PosteriorConfig` is the user's choice (``--posterior.weight 1|n/m|<number>``); the pipeline resolves
it to a :class:`PosteriorSpec` per coreset, records it in the coreset artifact, and the evaluation of that
coreset uses it unless told otherwise. HMC needs the tempered potential
U / T and its gradient (:meth:`CoresetPosterior.potential_and_grad`); SGHMC takes the untempered gradient of U
and puts T into its injected noise (:meth:`CoresetPosterior.energy_grad`, optionally on a fresh augmentation of
the coreset per call, as A-SGHMC).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import UserError
from ..models import FlatModel


@dataclass(frozen=True)
class PosteriorSpec:
    """A resolved coreset posterior: weight w, temperature T, prior std sigma (module docstring)."""

    weight: float = 1.0
    temperature: float = 1.0
    prior_std: float = 1.0
    # learnt multipliers v_m of w (None: every v_m = 1); out of artifact records while None (as before it existed)
    point_weights: tuple[float, ...] | None = field(default=None, metadata={"identity": "unless-set"})

    def __post_init__(self) -> None:
        if self.point_weights is not None:  # a JSON list when read back from an artifact
            object.__setattr__(self, "point_weights", tuple(float(v) for v in self.point_weights))

    def record(self) -> dict:
        """As written into artifacts and results: no ``point_weights`` key without learnt weights."""
        out = dataclasses.asdict(self)
        if self.point_weights is None:
            del out["point_weights"]
        return out

    def multipliers(self, like: torch.Tensor) -> torch.Tensor | None:
        """v as a tensor of ``like``'s dtype and device (None when every v_m = 1)."""
        if self.point_weights is None:
            return None
        return torch.tensor(self.point_weights, dtype=like.dtype, device=like.device)


@dataclass
class PosteriorConfig:
    """The coreset posterior pi_u, shared by coreset learning and evaluation (module docstring)."""

    weight: str = field(
        default="1",
        metadata={"help": "coreset weight w: a number, or n/m (full-data count / coreset size: the full data's scale)"},
    )
    temperature: float = field(default=1.0, metadata={"help": "temperature T of pi_u (1 = Bayes posterior)"})
    prior_std: float = field(default=1.0, metadata={"help": "sigma of the Gaussian prior N(0, sigma^2 I)"})

    def validate(self) -> None:
        if str(self.weight).strip().lower() != "n/m":
            try:
                w = float(self.weight)
            except ValueError:
                raise UserError(f"--posterior.weight must be a number or n/m (got {self.weight!r})") from None
            if not w > 0 or w == float("inf"):
                raise UserError(f"--posterior.weight must be a finite number > 0 (got {self.weight!r})")
        if not self.temperature > 0 or not self.prior_std > 0:
            raise UserError("--posterior.temperature and --posterior.prior_std must be > 0")

    def tag(self) -> str:
        """A directory-name suffix for a non-default posterior ("" for w = 1, T = 1, sigma = 1), so that coresets
        learnt for different posteriors live side by side: e.g. ``-wnm`` for w = N/M, ``-w10-T0.1``."""
        parts = []
        weight = str(self.weight).strip().lower()
        if weight != "1":
            parts.append("w" + ("nm" if weight == "n/m" else f"{float(weight):g}"))
        if self.temperature != 1.0:
            parts.append(f"T{self.temperature:g}")
        if self.prior_std != 1.0:
            parts.append(f"prior{self.prior_std:g}")
        return "".join(f"-{p}" for p in parts)

    def resolve(self, num_data: int, num_coreset: int) -> PosteriorSpec:
        """The spec for a coreset of ``num_coreset`` points standing for ``num_data`` points."""
        self.validate()
        w = num_data / num_coreset if str(self.weight).strip().lower() == "n/m" else float(self.weight)
        return PosteriorSpec(w, float(self.temperature), float(self.prior_std))


@dataclass
class CoresetPosterior:
    model: FlatModel
    x: torch.Tensor
    y: torch.Tensor
    prior_std: float
    temperature: float = 1.0
    weight: float = 1.0
    point_weights: torch.Tensor | None = None  # [M] multipliers v_m of w (None: all 1)
    targets: torch.Tensor | None = None  # [M, K] learnt real targets: Gaussian likelihood of noise target_noise
    target_noise: float = 1.0

    @classmethod
    def from_spec(
        cls,
        model: FlatModel,
        x: torch.Tensor,
        y: torch.Tensor,
        spec: PosteriorSpec,
        point_weights: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        target_noise: float = 1.0,
    ) -> "CoresetPosterior":
        """The posterior of ``spec``; ``point_weights`` (e.g. being learnt) replaces the spec's recorded ones;
        ``targets`` [M, outputs]: learnt real targets with the Gaussian likelihood of std ``target_noise``."""
        v = point_weights if point_weights is not None else spec.multipliers(x)
        if v is not None and v.shape != (len(x),):
            raise UserError(f"{v.numel()} point weights for a coreset of {len(x)} points; re-run 'bpc distill'")
        if targets is not None and (targets.dim() != 2 or len(targets) != len(x)):
            raise UserError(f"targets of shape {tuple(targets.shape)} for a coreset of {len(x)} points")
        if not target_noise > 0:
            raise UserError(f"the targets' noise must be > 0 (got {target_noise})")
        return cls(model, x, y, spec.prior_std, spec.temperature, spec.weight, v, targets, float(target_noise))

    def point_nll(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p per coreset point (up to constants): the model's likelihood of y, or the targets' Gaussian."""
        if self.targets is None:
            return self.model.nll(theta, x, self.y, reduction="none")
        residual = self.model(theta, x) - self.targets
        return 0.5 * (residual * residual).sum(dim=1) / self.target_noise**2

    def energy(self, theta: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """U(theta): w times the (v-weighted) summed negative log-likelihood of the coreset (or of ``x``, e.g. an
        augmented copy) plus the negative log prior (up to constants)."""
        x = self.x if x is None else x
        if self.targets is not None:
            per_point = self.point_nll(theta, x)
            nll_sum = per_point.sum() if self.point_weights is None else (self.point_weights * per_point).sum()
        elif self.point_weights is None:
            nll_sum = self.model.nll(theta, x, self.y, reduction="sum")
        else:
            nll_sum = (self.point_weights * self.model.nll(theta, x, self.y, reduction="none")).sum()
        if self.weight != 1.0:
            nll_sum = self.weight * nll_sum
        return nll_sum + 0.5 * (theta * theta).sum() / self.prior_std**2

    def potential_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U(theta) / T, grad U / T): the potential of pi_u for HMC."""
        theta = theta.detach().requires_grad_(True)
        u = self.energy(theta) / self.temperature
        (grad,) = torch.autograd.grad(u, theta)
        return u.detach(), grad

    @property
    def metropolis_potential(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """theta -> U(theta) / T with the network in fp32, for HMC's Metropolis test when the model computes in
        bf16 (None in fp32: the integrator's potential is already exact)."""
        if self.model.precision == "fp32":
            return None
        exact = dataclasses.replace(self, model=self.model.with_precision("fp32"))

        @torch.no_grad()
        def potential(theta: torch.Tensor) -> torch.Tensor:
            return exact.energy(theta) / exact.temperature

        return potential

    def energy_grad(self, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None):
        """(theta, g) -> grad U(theta), the coreset augmented afresh by ``augment`` at every call if given."""

        def grad_fn(theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            theta = theta.detach().requires_grad_(True)
            x = None if augment is None else augment(self.x, g)
            (grad,) = torch.autograd.grad(self.energy(theta, x), theta)
            return grad

        return grad_fn
