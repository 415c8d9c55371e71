"""report/results.py: a row's protocol label says which coreset posterior its evaluation sampled."""

from pseudocoresets.report.results import posterior_label


def test_unweighted_posterior_has_no_label():
    assert posterior_label(None) == ""
    assert posterior_label({"weight": 1.0, "temperature": 1.0, "prior_std": 1.0}) == ""


def test_weight_and_learnt_point_weights_are_both_named():
    assert posterior_label({"weight": 600.0}) == " (w=600)"
    assert posterior_label({"weight": 1.0, "point_weights": [1.2, 0.8]}) == " (learnt point weights)"
    assert posterior_label({"weight": 600.0, "point_weights": [1.2, 0.8]}) == " (w=600, learnt point weights)"


def test_agreement_is_shown_against_the_reference_ceiling():
    from pseudocoresets.report.results import ceiling_markdown

    rows = [
        {"dataset": "d", "ipc": 10, "method": "fkl", "protocol": "hmc", "agreement": {"mean": 0.45, "std": 0.01}},
        {"dataset": "d", "ipc": 10, "method": "random", "protocol": "hmc", "accuracy": {"mean": 0.5, "std": 0.1}},
    ]
    ceiling = {
        "reference": {"sampler": "csghmc", "seed": 0},
        "against": [
            {"sampler": "csghmc", "seed": 2, "agreement": 0.9, "tv": 0.1, "predictive_kl": 0.05, "accuracy": 0.8},
            {"sampler": "ensemble", "seed": 2, "agreement": 0.75, "tv": 0.2, "predictive_kl": 0.3, "accuracy": 0.85},
        ],
    }
    text = ceiling_markdown(rows, ceiling)
    assert "| csghmc | 2 | 0.9000 | 0.1000 | 0.0500 | 0.8000 |" in text
    assert "| d | 10 | fkl | hmc | 0.4500 ± 0.0100 | 0.500 | 0.600 |" in text  # 0.45 / 0.9 and 0.45 / 0.75
    assert "random" not in text  # no agreement, no fraction
    assert ceiling_markdown(rows, {}) == ""
