"""Bayesian evaluation of a coreset: the protocols that turn it into a predictive (one module each, protocols/),
the repeats and their summary (repeats.py), scoring on test sets (scoring.py), metrics and diagnostics."""

from .metrics import accuracy, brier_score, classification_metrics, expected_calibration_error, nll
from .protocols import PROTOCOLS, ProtocolContext, protocol_module
from .repeats import evaluate_coreset
from .settings import EvalConfig, EvalSettings

__all__ = [
    "EvalConfig",
    "EvalSettings",
    "PROTOCOLS",
    "ProtocolContext",
    "evaluate_coreset",
    "protocol_module",
    "accuracy",
    "nll",
    "expected_calibration_error",
    "brier_score",
    "classification_metrics",
]
