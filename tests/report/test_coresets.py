"""report/coresets.py: rows over several learnt coresets, paired differences and same-protocol gap shares."""

import math

import pytest

from pseudocoresets.report.coresets import cell_rows, comparisons, comparisons_markdown, interval
from pseudocoresets.report.results import markdown_table

T_975_2 = 4.302652729911275  # Student's t quantile 0.975 with 2 degrees of freedom (tables)


def row(method, seed, acc, nll=1.0, protocol="hmc", repeats=2, ipc=10):
    return {
        "run": f"evals/{method}-{seed}",
        "dataset": "d",
        "ipc": ipc,
        "method": method,
        "protocol": protocol,
        "repeats": repeats,
        "coreset_seed": seed,
        "accuracy": {"mean": acc, "std": 0.01},
        "nll": {"mean": nll, "std": 0.02},
        "corrupted_mean": None,
    }


RANDOM = [0.50, 0.60, 0.70]
FKL = [0.55, 0.66, 0.77]  # each seed's random coreset plus 0.05, 0.06, 0.07: paired, the spread cancels
REFERENCE = {"dataset": "d", "ipc": 0, "method": "full data", "protocol": "reference-csghmc", "repeats": 1}


def rows():
    out = [row("random", s, a) for s, a in enumerate(RANDOM)] + [row("fkl", s, a) for s, a in enumerate(FKL)]
    return out + [{**REFERENCE, "accuracy": {"mean": 0.9, "std": None}}]


def test_a_cell_with_several_coresets_is_the_mean_and_std_over_them():
    cells = {(r["method"], r["ipc"]): r for r in cell_rows(rows())}
    fkl = cells[("fkl", 10)]
    assert fkl["coresets"] == 3 and fkl["coreset_seeds"] == [0, 1, 2]
    assert fkl["accuracy"]["mean"] == pytest.approx(0.66)
    assert fkl["accuracy"]["std"] == pytest.approx(0.11)  # std of 0.55, 0.66, 0.77 (n - 1), not the repeats' 0.01
    assert cells[("full data", 0)]["coresets"] == 1


def test_paired_differences_have_the_t_interval_over_seeds():
    found = comparisons(rows())
    (diff,) = found["differences"]
    assert (diff["a"], diff["b"], diff["seeds"]) == ("fkl", "random", [0, 1, 2])
    acc = diff["accuracy"]
    half = T_975_2 * 0.01 / math.sqrt(3)  # differences 0.05, 0.06, 0.07: sd 0.01
    assert acc["mean"] == pytest.approx(0.06)
    assert (acc["low"], acc["high"]) == (pytest.approx(0.06 - half), pytest.approx(0.06 + half))
    assert acc["low"] > 0  # unpaired, the coresets' spread (0.1) would swamp the difference


def test_gap_share_is_per_seed_against_random_under_the_same_protocol():
    found = comparisons(rows())
    (share,) = found["gap_shares"]
    expected = [(f - r) / (0.9 - r) for f, r in zip(FKL, RANDOM)]
    assert share["method"] == "fkl" and share["protocol"] == "hmc"
    assert share["share"]["mean"] == pytest.approx(sum(expected) / 3)
    # a method evaluated under another protocol is not compared with Random under HMC
    other = [r for r in rows() if r["method"] != "fkl"] + [row("fkl", s, a, protocol="vbpc") for s, a in enumerate(FKL)]
    assert comparisons(other)["gap_shares"] == [] and comparisons(other)["differences"] == []


def test_one_coreset_has_no_interval_and_one_repeat_no_std():
    one = [row("random", 0, 0.5, repeats=1), row("fkl", 0, 0.6, repeats=1)]
    for r in one:  # as results.collect_results reads a single repeat
        r["accuracy"]["std"] = r["nll"]["std"] = None
    found = comparisons(one)
    assert found["differences"][0]["accuracy"]["low"] is None
    assert "one coreset: no interval" in comparisons_markdown(found)
    table = markdown_table(one)
    assert "| d | 10 | fkl | hmc | 0.6000 | 1.0000 | 1 | 1 |" in table and "±" not in table


def test_interval_of_a_single_value_and_of_known_values():
    assert interval([0.3]) == {"mean": 0.3, "low": None, "high": None, "n": 1}
    v = interval([1.0, 2.0, 3.0])
    assert v["high"] - v["mean"] == pytest.approx(T_975_2 * 1.0 / math.sqrt(3))


def test_two_evaluations_of_one_coreset_are_neither_merged_nor_paired():
    """Two evaluations of the same coreset under one protocol label (e.g. another evaluation-time temperature)
    are not two coresets: both rows stay, and nothing is paired with them."""
    twice = [row("fkl", 0, 0.6), {**row("fkl", 0, 0.7), "run": "evals/fkl-T"}, row("random", 0, 0.5)]
    cells = [r for r in cell_rows(twice) if r["method"] == "fkl"]
    assert sorted(r["accuracy"]["mean"] for r in cells) == [0.6, 0.7] and all(r["coresets"] == 1 for r in cells)
    assert comparisons(twice) == {"differences": [], "gap_shares": []}
