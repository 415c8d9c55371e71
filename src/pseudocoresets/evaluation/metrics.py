"""Metrics of a posterior predictive.

Classification: p(y | x) = 1/S sum_s softmax(f(x; theta_s)); the metrics take ``probs`` [N, K] (the averaged
predictive, not per-sample) and integer ``labels`` [N].

Regression with a Gaussian likelihood of known noise s: p(y | x) = 1/S sum_s N(y; f(x; theta_s), s^2), a
mixture; the metrics take the per-sample means ``f`` [S, N]:

- RMSE of the predictive mean m(x) = 1/S sum_s f_s(x);
- NLL = -1/N sum_i log 1/S sum_s N(y_i; f_s(x_i), s^2) (the mixture's density, as the UCI BNN benchmarks);
- coverage_95: the share of test targets inside m(x) ± 1.96 sqrt(v(x)), v = s^2 + var_s f_s(x) (the mixture's
  variance); 0.95 when the predictive is calibrated and close to Gaussian.

:func:`gaussian_predictive_metrics` gives the same three for an exact Gaussian predictive N(m(x), v(x)).

Agreement with a reference predictive q (the full-data posterior's, reference/), per test point, averaged over
the test set (the NeurIPS 2021 approximate-inference competition's yardsticks): top-1 agreement
1[argmax p = argmax q], total variation 1/2 sum_k |p_k - q_k|, and KL(q || p) = sum_k q_k log(q_k / p_k).
"""

from __future__ import annotations

import math

import torch


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probs.argmax(1) == labels).float().mean())


def nll(probs: torch.Tensor, labels: torch.Tensor, eps: float = 1e-12) -> float:
    """-1/N sum_i log p(y_i | x_i): the log of the *averaged* predictive (independent of batch size)."""
    p = probs.gather(1, labels[:, None]).squeeze(1)
    return float(-(p.clamp_min(eps).log()).mean())


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """1/N sum_i sum_k (p_ik - [y_i = k])^2 (Brier 1950; ranges 0..2)."""
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return float(((probs - onehot) ** 2).sum(1).mean())


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Naeini et al. 2015): sum_b |B|/N |acc(B) - conf(B)|.

    Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 falls in the first bin.
    """
    conf, pred = probs.max(1)
    correct = (pred == labels).to(probs.dtype)
    idx = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)
    n = len(labels)
    ece = torch.zeros((), dtype=probs.dtype)
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece = ece + mask.sum() / n * (correct[mask].mean() - conf[mask].mean()).abs()
    return float(ece)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, float]:
    probs, labels = probs.double().cpu(), labels.cpu()
    return {
        "accuracy": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": expected_calibration_error(probs, labels, bins),
        "brier": brier_score(probs, labels),
    }


def regression_metrics(f: torch.Tensor, targets: torch.Tensor, noise_std: float) -> dict[str, float]:
    """RMSE, mixture NLL and 95% coverage of the predictive 1/S sum_s N(f_s(x), s^2) (module docstring)."""
    f, y = f.double().cpu(), targets.double().cpu()
    mean = f.mean(0)
    var = f.var(0, unbiased=False) + noise_std**2
    log_dens = -0.5 * ((y - f) / noise_std) ** 2 - math.log(noise_std * math.sqrt(2 * math.pi))
    mixture = torch.logsumexp(log_dens, 0) - math.log(len(f))
    return {
        "rmse": float(((mean - y) ** 2).mean().sqrt()),
        "nll": float(-mixture.mean()),
        "coverage_95": float(((y - mean).abs() <= 1.96 * var.sqrt()).double().mean()),
    }


def gaussian_predictive_metrics(mean: torch.Tensor, var: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """RMSE, NLL and 95% coverage of the Gaussian predictive N(mean, var) per test point."""
    mean, var, y = mean.double().cpu(), var.double().cpu(), targets.double().cpu()
    nll_i = 0.5 * (y - mean) ** 2 / var + 0.5 * torch.log(2 * math.pi * var)
    return {
        "rmse": float(((mean - y) ** 2).mean().sqrt()),
        "nll": float(nll_i.mean()),
        "coverage_95": float(((y - mean).abs() <= 1.96 * var.sqrt()).double().mean()),
    }


def agreement_metrics(probs: torch.Tensor, reference: torch.Tensor, eps: float = 1e-12) -> dict[str, float]:
    """Top-1 agreement, total variation and KL(reference || probs) between two predictives [N, K]."""
    p, q = probs.double().cpu(), reference.double().cpu()
    kl = (q * (q.clamp_min(eps).log() - p.clamp_min(eps).log())).sum(1)
    return {
        "agreement": float((p.argmax(1) == q.argmax(1)).double().mean()),
        "tv": float(0.5 * (p - q).abs().sum(1).mean()),
        "predictive_kl": float(kl.mean()),
    }
