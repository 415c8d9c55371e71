"""report/results.py: a row's protocol label says which coreset posterior its evaluation sampled."""

from pseudocoresets.report.results import posterior_label


def test_unweighted_posterior_has_no_label():
    assert posterior_label(None) == ""
    assert posterior_label({"weight": 1.0, "temperature": 1.0, "prior_std": 1.0}) == ""


def test_weight_and_learnt_point_weights_are_both_named():
    assert posterior_label({"weight": 600.0}) == " (w=600)"
    assert posterior_label({"weight": 1.0, "point_weights": [1.2, 0.8]}) == " (learnt point weights)"
    assert posterior_label({"weight": 600.0, "point_weights": [1.2, 0.8]}) == " (w=600, learnt point weights)"
