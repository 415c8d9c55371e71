"""Metrics of a posterior predictive p(y | x) = 1/S sum_s softmax(f(x; theta_s)).

All take ``probs`` [N, K] (the averaged predictive, not per-sample) and integer ``labels`` [N].
"""

from __future__ import annotations

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
