"""The verdicts of experiments/table1/table1_quick.py on the paper's claims: a difference a - b is read with its
sign whichever way the report paired the two methods, and a claim holds only when every interval is above 0."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments" / "table1"))

import table1_quick as table1  # noqa: E402


def pair(a, b, mean, low, high, ipc=10, protocol="hmc", nll=None):
    out = {"ipc": ipc, "protocol": protocol, "a": a, "b": b, "accuracy": {"mean": mean, "low": low, "high": high}}
    if nll is not None:
        out["nll"] = dict(zip(("mean", "low", "high"), nll))
    return out


def test_a_difference_is_read_either_way_round():
    report = {"differences": [pair("random", "fkl", -0.05, -0.08, -0.02)]}
    d = table1.difference(report, 10, "hmc", "fkl", "random")
    assert (d["mean"], d["low"], d["high"]) == (0.05, 0.02, 0.08)
    d = table1.difference(report, 10, "hmc", "random", "fkl")
    assert (d["mean"], d["low"], d["high"]) == (-0.05, -0.08, -0.02)
    assert table1.difference(report, 1, "hmc", "fkl", "random") is None  # another ipc
    assert table1.difference(report, 10, "asghmc", "fkl", "random") is None  # another protocol
    assert table1.difference(report, 10, "hmc", "fkl", "random", "nll") is None  # a metric the pair lacks


def test_a_claim_holds_only_when_every_interval_is_above_zero():
    above, across, below = {"low": 0.01, "high": 0.05}, {"low": -0.01, "high": 0.03}, {"low": -0.05, "high": -0.01}
    assert table1.verdict([above, above]) == "holds"
    assert table1.verdict([above, across]) == "cannot tell"
    assert table1.verdict([above, below]) == "does not hold"
    assert table1.verdict([{"low": None, "high": None}]).startswith("cannot tell")


def test_the_claims_read_the_grid_the_paper_describes():
    diffs = [
        pair("rkl", "wasserstein", -0.03, -0.05, -0.01, ipc, protocol) for ipc in (1, 10, 20) for protocol in ("hmc",)
    ]
    diffs += [pair("rkl", "fkl", -0.02, -0.04, -0.005, ipc, "hmc") for ipc in (1, 10, 20)]
    diffs += [pair("wasserstein", "fkl", 0.001, -0.01, 0.012, 1, "hmc")]
    diffs += [pair("fkl", "wasserstein", 0.02, 0.01, 0.03, ipc, "hmc") for ipc in (10, 20)]
    checked = {c["claim"]: c["verdict"] for c in table1.claims({"differences": diffs}, "cifar10")}
    rkl = next(v for k, v in checked.items() if k.startswith("BPC-rKL"))
    assert rkl.startswith("so far holds")  # the HMC column measured, the +Aug columns not yet
    assert next(v for k, v in checked.items() if k.startswith("at ipc 1")).startswith("so far holds")
    assert next(v for k, v in checked.items() if "without test-time" in k).startswith("so far holds")
    assert next(v for k, v in checked.items() if "with test-time" in k) == "cannot tell (not measured yet)"
    diffs[-1] = pair("fkl", "wasserstein", -0.02, -0.03, -0.01, 20, "hmc")
    checked = {c["claim"]: c["verdict"] for c in table1.claims({"differences": diffs}, "cifar10")}
    assert next(v for k, v in checked.items() if "without test-time" in k).startswith("so far does not hold")


def test_beating_random_needs_higher_accuracy_and_lower_nll():
    columns = [("hmc", ""), ("hmc", "+aug"), ("asghmc", "+aug")]

    def diffs(nll):
        return [
            pair(m + aug, "random", 0.03, 0.01, 0.05, 10, protocol, nll)
            for protocol, aug in columns
            for m in ("rkl", "wasserstein", "fkl")
        ]

    def beat(d):
        verdicts = {c["claim"]: c["verdict"] for c in table1.claims({"differences": d}, "fashion-mnist")}
        return next(v for k, v in verdicts.items() if k.startswith("all pseudocoresets"))

    assert beat(diffs((-0.1, -0.2, -0.05))) == "holds"  # NLL of each method below Random's
    assert beat(diffs((0.1, 0.05, 0.2))) == "does not hold"  # accuracy above, NLL above as well
    assert beat(diffs(None)).startswith("so far holds")  # NLL not measured: half the comparisons missing


def test_comparable_at_ipc_1_fails_only_beyond_the_margin():
    def comparable(*intervals):
        d = [
            pair("wasserstein" + aug, "fkl" + aug, 0.0, lo, hi, 1, protocol) for (protocol, aug), (lo, hi) in intervals
        ]
        verdicts = {c["claim"]: c["verdict"] for c in table1.claims({"differences": d}, "cifar10")}
        return next(v for k, v in verdicts.items() if k.startswith("at ipc 1"))

    columns = [("hmc", ""), ("hmc", "+aug"), ("asghmc", "+aug")]
    assert comparable(*zip(columns, [(0.001, 0.019), (-0.01, 0.01), (-0.02, 0.0)])).startswith("holds")
    assert comparable(*zip(columns, [(0.001, 0.019), (-0.03, 0.01), (-0.01, 0.01)])).startswith("cannot tell")
    assert comparable(*zip(columns, [(0.025, 0.06), (-0.01, 0.01), (-0.01, 0.01)])).startswith("does not hold")
