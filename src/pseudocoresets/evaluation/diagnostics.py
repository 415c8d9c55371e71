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
- effective sample size: ESS = C' n' / tau with tau = -1 + 2 sum_{t=0}^{2K-1} rho_t + rho_{2K}, where
  rho_t = 1 - (W - mean_c autocov_c(t)) / var+ combines the chains' autocovariances at lag t (biased, over n'),
  and K is Geyer's truncation (Stan's estimator, which ArviZ follows): the sums of consecutive pairs
  P_k = rho_{2k} + rho_{2k+1} are read for k = 1, 2, ... (while 2k - 1 < n' - 3) until the first P_K <= 0;
  P_0 .. P_{K-1} are made non-increasing (the initial monotone sequence), and rho_{2K} enters once when positive
  (or when the last pair was read because the lags ran out). tau is floored at 1 / log10(C' n').

Both are equal to arviz-stats' ``rhat(method="split")`` and ``ess(method="mean")`` on the same draws
(tests/evaluation/test_diagnostics.py), so the saved diagnostic draws give the same numbers in ArviZ.

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
    nan = torch.full_like(within, float("nan"))  # draws that do not vary: nothing to compare (arviz: NaN)
    return torch.where(within > 0, torch.sqrt(pooled / within.clamp_min(1e-300)), nan)


def _autocovariance(chains: torch.Tensor) -> torch.Tensor:
    """Autocovariance of each chain at every lag, [C, n, ...] -> [C, n, ...] (biased estimator, via FFT)."""
    n = chains.shape[1]
    centred = chains - chains.mean(dim=1, keepdim=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = torch.fft.rfft(centred, n=size, dim=1)
    return torch.fft.irfft(spectrum * spectrum.conj(), n=size, dim=1)[:, :n] / n


def initial_monotone(pairs: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Geyer's initial monotone sequence: the kept pair sums made non-increasing along dim 0."""
    return torch.cummin(torch.where(kept > 0, pairs, torch.full_like(pairs, float("inf"))), dim=0).values


def effective_sample_size(draws: torch.Tensor) -> torch.Tensor:
    """Effective sample size of the mean of [C, n, ...] draws (split chains; module docstring), one value per
    trailing index. Draws that do not vary give C' n' (nothing to correlate)."""
    chains = split_chains(draws.double())
    count, n = chains.shape[0], chains.shape[1]
    within, pooled = _variances(chains)
    acov = _autocovariance(chains).mean(dim=0)  # [n, ...]
    rho = 1 - (within - acov) / pooled.clamp_min(1e-300)
    rho[0] = 1.0
    pairs = rho[0 : 2 * (n // 2) : 2] + rho[1 : 2 * (n // 2) : 2]  # P_k = rho_2k + rho_2k+1, k < n/2
    readable = max(0, -(-(n - 2) // 2) - 1)  # P_1 .. P_readable are read (2k - 1 < n - 3)
    k = torch.arange(len(pairs), device=rho.device).reshape(-1, *[1] * (rho.dim() - 1))
    read = k <= readable
    # K: the first k >= 1 read with P_k <= 0, else the last one read (0 when the first pair is not positive)
    stops = (k >= 1) & read & (pairs <= 0)
    last = torch.full(pairs.shape[1:], readable, dtype=torch.long, device=rho.device)
    first_stop = torch.where(stops, k.expand_as(pairs), torch.full_like(k.expand_as(pairs), len(pairs))).min(0).values
    big_k = torch.where(first_stop < len(pairs), first_stop, last)
    big_k = torch.where(pairs[0] > 0, big_k, torch.zeros_like(big_k))
    kept = (k < big_k).to(pairs.dtype)
    full = (initial_monotone(pairs, kept) * kept).nan_to_num(0.0, posinf=0.0).sum(dim=0)
    even = torch.gather(rho, 0, (2 * big_k).clamp_max(n - 1).unsqueeze(0)).squeeze(0)
    last_pair = torch.gather(pairs, 0, big_k.clamp_max(len(pairs) - 1).unsqueeze(0)).squeeze(0)
    single = torch.where((even > 0) | ((big_k > 0) & (last_pair >= 0)) | (big_k == 0), even, torch.zeros_like(even))
    tau = -1 + 2 * full + single
    ess = count * n / tau.clamp_min(1.0 / math.log10(count * n))
    constant = (draws.amax(dim=(0, 1)) - draws.amin(dim=(0, 1))).double() < torch.finfo(torch.float64).resolution
    return torch.where(constant, torch.full_like(ess, float(count * n)), ess)


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
