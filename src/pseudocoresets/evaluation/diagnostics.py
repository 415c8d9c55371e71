"""Convergence diagnostics of the sampled coreset posterior, in function space.

Weight-space diagnostics mean little for networks (permutation and scaling symmetries make chains that agree on
every prediction look unconverged), so, as Izmailov et al. (ICML 2021) do for HMC on network posteriors, the
diagnostics are computed on predictions: for a fixed set of test points, the log predictive probability of each
point's label under each kept sample, log p(y_j | x_j, theta), is one scalar chain per point.

For C chains of n kept draws each of one scalar (Vehtari, Gelman, Simpson, Carpenter and Buerkner 2021, Eqs. in
their Section 3; Gelman et al., BDA3, Section 11.4):

- split R-hat: every chain is cut into two halves (C' = 2C chains of n' = floor(n/2) draws); with the within-chain
  variance W = mean_c s_c^2 and the between-chain variance B / n' = var_c(mean_c) (unbiased, over the C' chain
  means), the pooled estimate var+ = (n' - 1)/n' W + B/n' and R-hat = sqrt(var+ / W). Converged chains give 1;
  the usual threshold is 1.01 (1.1 is the older, looser one).
- effective sample size: ESS = C' n' / tau with tau = -1 + 2 sum_{t=0}^{2m+1} rho_t, where
  rho_t = 1 - (W - mean_c autocov_c(t)) / var+ combines the chains' autocovariances at lag t, and the sum stops by
  Geyer's initial monotone sequence rule (the sums of consecutive pairs rho_{2k} + rho_{2k+1} are kept while
  positive and made non-increasing).

:func:`predictive_diagnostics` summarises the per-point values (median and worst R-hat, median and smallest ESS).
"""

from __future__ import annotations

import math

import torch


def split_chains(draws: torch.Tensor) -> torch.Tensor:
    """[C, n, ...] -> [2C, floor(n/2), ...]: each chain cut into its first and second half (the middle draw of an
    odd-length chain is dropped)."""
    half = draws.shape[1] // 2
    return torch.cat([draws[:, :half], draws[:, draws.shape[1] - half :]], dim=0)


def _variances(chains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, var+) of [C, n, ...] chains."""
    n = chains.shape[1]
    within = chains.var(dim=1, unbiased=True).mean(dim=0)
    between_over_n = chains.mean(dim=1).var(dim=0, unbiased=True)
    return within, (n - 1) / n * within + between_over_n


def split_rhat(draws: torch.Tensor) -> torch.Tensor:
    """Split R-hat of [C, n, ...] draws (C >= 1 chains, n >= 4 draws), one value per trailing index."""
    chains = split_chains(draws.double())
    within, pooled = _variances(chains)
    return torch.sqrt(pooled / within.clamp_min(1e-300))


def _autocovariance(chains: torch.Tensor) -> torch.Tensor:
    """Autocovariance of each chain at every lag, [C, n, ...] -> [C, n, ...] (biased estimator, via FFT)."""
    n = chains.shape[1]
    centred = chains - chains.mean(dim=1, keepdim=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = torch.fft.rfft(centred, n=size, dim=1)
    return torch.fft.irfft(spectrum * spectrum.conj(), n=size, dim=1)[:, :n] / n


def effective_sample_size(draws: torch.Tensor) -> torch.Tensor:
    """Bulk effective sample size of [C, n, ...] draws (split chains), one value per trailing index."""
    chains = split_chains(draws.double())
    count, n = chains.shape[0], chains.shape[1]
    within, pooled = _variances(chains)
    acov = _autocovariance(chains).mean(dim=0)  # [n, ...]
    rho = 1 - (within - acov) / pooled.clamp_min(1e-300)
    rho[0] = 1.0
    pairs = rho[0 : n - 1 : 2] + rho[1:n:2]  # rho_{2k} + rho_{2k+1}
    # initial positive sequence, then made monotone (non-increasing)
    positive = torch.cumprod((pairs > 0).to(pairs.dtype), dim=0)
    pairs = pairs * positive
    pairs = torch.cummin(pairs, dim=0).values
    tau = -1 + 2 * pairs.sum(dim=0)
    return count * n / tau.clamp_min(1.0 / math.log10(max(count * n, 10)))


def predictive_diagnostics(log_probs: torch.Tensor) -> dict[str, float]:
    """Function-space diagnostics from ``log_probs`` [C, n, J]: the log predictive probability of J fixed test
    points' labels under each of n kept samples of C chains."""
    if log_probs.shape[1] < 4:
        return {}
    rhat = split_rhat(log_probs)
    ess = effective_sample_size(log_probs)
    finite = torch.isfinite(rhat)
    if not finite.any():
        return {}
    rhat, ess = rhat[finite], ess[finite]
    return {
        "rhat_median": float(rhat.median()),
        "rhat_max": float(rhat.max()),
        "ess_median": float(ess.median()),
        "ess_min": float(ess.min()),
    }
