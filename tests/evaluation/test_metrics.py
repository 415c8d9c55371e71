"""Metrics against hand-worked examples and an independent implementation (torchmetrics)."""

import math

import pytest
import torch

from pseudocoresets.evaluation.metrics import (
    accuracy,
    brier_score,
    classification_metrics,
    expected_calibration_error,
    nll,
)


def test_hand_worked_example():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]], dtype=torch.float64)
    labels = torch.tensor([0, 2, 2, 1])
    assert accuracy(probs, labels) == pytest.approx(0.5)
    assert nll(probs, labels) == pytest.approx(-(math.log(0.7) + math.log(0.3) + math.log(0.4) + math.log(0.25)) / 4)
    brier = (
        (0.3**2 + 0.2**2 + 0.1**2)
        + (0.1**2 + 0.6**2 + 0.7**2)
        + (0.3**2 + 0.3**2 + 0.6**2)
        + (0.5**2 + 0.75**2 + 0.25**2)
    ) / 4
    assert brier_score(probs, labels) == pytest.approx(brier)
    # 2 bins: confidences 0.7 (right), 0.6 (wrong), 0.4 (right), 0.5 (wrong)
    # bin (0, .5]: {0.4 right, 0.5 wrong}: |0.5 - 0.45| * 2/4; bin (.5, 1]: {0.7 right, 0.6 wrong}: |0.5 - 0.65| * 2/4
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(0.5 * 0.05 + 0.5 * 0.15)


def test_nll_is_of_the_averaged_predictive():
    # two posterior samples, one confident-right, one confident-wrong: average first, then log
    p1 = torch.tensor([[0.99, 0.01]], dtype=torch.float64)
    p2 = torch.tensor([[0.01, 0.99]], dtype=torch.float64)
    avg = (p1 + p2) / 2
    assert nll(avg, torch.tensor([0])) == pytest.approx(math.log(2))


def test_against_torchmetrics():
    tm = pytest.importorskip("torchmetrics.functional.classification")
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(2000, 10, generator=g, dtype=torch.float64)
    probs = logits.softmax(1)
    labels = torch.randint(0, 10, (2000,), generator=g)
    labels[:1200] = probs[:1200].argmax(1)  # make it partly accurate
    ours = classification_metrics(probs, labels, bins=15)
    ref_ece = tm.multiclass_calibration_error(probs.float(), labels, num_classes=10, n_bins=15, norm="l1")
    ref_acc = tm.multiclass_accuracy(probs, labels, num_classes=10, average="micro")
    assert ours["ece"] == pytest.approx(float(ref_ece), abs=1e-5)
    assert ours["accuracy"] == pytest.approx(float(ref_acc))
    ref_nll = torch.nn.functional.nll_loss(probs.log(), labels)
    assert ours["nll"] == pytest.approx(float(ref_nll))
