"""Cells of the results table."""

from pseudocoresets.report.results import format_metric, posterior_label


def test_a_metric_without_a_value_is_a_dash():
    assert format_metric({"mean": 0.5, "std": 0.25}) == "0.5000 ± 0.2500"
    assert format_metric({"mean": 0.5, "std": None}) == "0.5000"
    assert format_metric(None) == "—"
    assert format_metric({"mean": float("nan"), "std": 0.0}) == "—"  # A-SGHMC has no acceptance rate


def test_the_posterior_label_names_what_was_sampled():
    assert posterior_label({"weight": 1.0}) == ""
    assert posterior_label({"weight": 600.0, "point_weights": [1.0]}) == " (w=600, learnt point weights)"
    assert posterior_label({"weight": 1.0, "likelihood": "learnt targets"}) == " (learnt targets)"
