"""What is not a result is never saved as one: non-finite metrics, chains that never moved, and an evaluation's
finished-repeats file edited by hand are refused in one line (exit 2) with advice, and no results.json is
written."""

import json
import shutil

import pytest

from helpers import TINY, bpc


@pytest.fixture
def run_without_random_eval(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    shutil.rmtree(out / "evals/random-ipc2-hmc")
    return out


def _evaluate(out, tiny_data, *extra):
    return bpc(
        "evaluate", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--methods", "random", *extra, check=False
    )


@pytest.mark.parametrize(
    "options, expected",
    [
        (("--evaluate.init_std", "1e11"), "never left their starting points"),
        (("--evaluate.step_size", "1e4", "--no-evaluate.adapt_step_size"), "never left their starting points"),
    ],
    ids=["a start too far out", "steps too large"],
)
def test_non_results_are_refused(run_without_random_eval, tiny_data, options, expected):
    out = run_without_random_eval
    proc = _evaluate(out, tiny_data, *options)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert expected in proc.stderr and "not saved" in proc.stderr
    assert not (out / "evals/random-ipc2-hmc/results.json").exists()
    assert not (out / "evals/random-ipc2-hmc/manifest.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None])
def test_non_finite_metrics_are_not_results(value):
    from pseudocoresets import UserError
    from pseudocoresets.evaluation.checks import check_result

    check_result("hmc repeat 0", {"test": {"accuracy": 0.5, "nll": 1.2}}, acceptance=0.7)  # a result
    with pytest.raises(UserError, match="nll = .* on the fog/3 set: the posterior samples' predictions are not"):
        check_result("hmc repeat 0", {"test": {"accuracy": 0.5}, "fog/3": {"accuracy": 0.1, "nll": value}}, 0.7)


@pytest.mark.parametrize("value", ["0.9", "NaN", None, True])
def test_edited_finished_repeats_are_refused(run_without_random_eval, tiny_data, value):
    out = run_without_random_eval
    cell = out / "evals/random-ipc2-hmc"
    cell.mkdir()
    metrics = {"accuracy": value, "nll": 1.0, "ece": 0.1, "brier": 0.5}
    text = json.dumps([{"sets": {"test": metrics}, "stats": {"seed": 0}}]).replace('"NaN"', "NaN")
    (cell / "repeats.partial.json").write_text(text)
    proc = _evaluate(out, tiny_data)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "repeats.partial.json does not hold this evaluation's finished repeats" in proc.stderr
    assert (cell / "repeats.partial.json").read_text() == text and not (cell / "results.json").exists()


GOOD = {"accuracy": 0.5, "nll": 1.0, "ece": 0.1, "brier": 0.5}


@pytest.mark.parametrize(
    "records",
    [
        [{"sets": {"test": {**GOOD, "accuracy": 7.5}}, "stats": {"seed": 0}}],  # out of its range
        [{"sets": {"test": {**GOOD, "brier": -0.1}}, "stats": {"seed": 0}}],
        [{"sets": {"test": {k: v for k, v in GOOD.items() if k != "nll"}}, "stats": {"seed": 0}}],  # a field missing
        [{"sets": {"test": {**GOOD, "bogus": 1.0}}, "stats": {"seed": 0}}],  # a field bpc never writes
        [{"sets": {"test": GOOD}, "stats": {"seed": 0}}, {"sets": {"test": GOOD}, "stats": {"seed": 0}}],  # twice
        [{"sets": {"test": GOOD}, "stats": {}}],  # no seed
    ],
)
def test_finished_repeats_with_impossible_or_missing_values_are_refused(run_without_random_eval, tiny_data, records):
    out = run_without_random_eval
    cell = out / "evals/random-ipc2-hmc"
    cell.mkdir()
    text = json.dumps(records)
    (cell / "repeats.partial.json").write_text(text)
    proc = _evaluate(out, tiny_data)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "repeats.partial.json does not hold this evaluation's finished repeats" in proc.stderr
    assert (cell / "repeats.partial.json").read_text() == text and not (cell / "results.json").exists()
