"""Bayesian evaluation of a coreset: posterior sampling on it, posterior predictive on test data, metrics."""

from .metrics import accuracy, brier_score, classification_metrics, expected_calibration_error, nll
from .protocols import EvalConfig, evaluate_coreset

__all__ = [
    "EvalConfig",
    "evaluate_coreset",
    "accuracy",
    "nll",
    "expected_calibration_error",
    "brier_score",
    "classification_metrics",
]
