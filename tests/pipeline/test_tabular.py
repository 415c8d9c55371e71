"""Tabular data (CSV, NPZ, synthetic regression) and Bayesian linear regression through the ``bpc`` pipeline:
regression metrics, exact divergences, the full-data reference posterior, and clear errors on bad tables."""

import json

import numpy as np
import pytest
import torch

from pseudocoresets.data import FeatureScaler, load_tabular, synthetic_regression
from pseudocoresets.errors import UserError
from pseudocoresets.evaluation.metrics import gaussian_predictive_metrics, regression_metrics

from helpers import bpc

BLR_TINY = [
    "--preset",
    "blr",
    "--data.synthetic_train",
    "300",
    "--data.synthetic_test",
    "200",
    "--data.synthetic_dim",
    "3",
    "--experts.num_experts",
    "2",
    "--experts.epochs",
    "12",
    "--distill.iterations",
    "40",
    "--ipcs",
    "6",
    "--evaluate.chains",
    "2",
    "--evaluate.iterations",
    "150",
    "--evaluate.burn_in",
    "50",
    "--evaluate.repeats",
    "2",
    "--reference.chains",
    "2",
    "--reference.iterations",
    "300",
    "--reference.burn_in",
    "100",
    "--quiet",
]


def test_csv_with_header_target_by_name_and_split(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["a,target,b"] + [f"{i},{2 * i + 0.5},{i % 3}" for i in range(50)]
    path.write_text("\n".join(rows) + "\n")
    data = load_tabular(path, target="target", test_fraction=0.2, seed=1)
    assert data.features == ["a", "b"] and data.input_shape == (2,)
    assert len(data.train_y) == 40 and len(data.test_y) == 10
    # the target column is the one named, and rows stay intact through the split
    assert torch.allclose(data.train_y, 2 * data.train_x[:, 0].double() + 0.5)
    same = load_tabular(path, target="1", test_fraction=0.2, seed=1)
    assert torch.equal(same.train_y, data.train_y)


def test_npz_with_given_split_and_synthetic_data(tmp_path):
    path = tmp_path / "t.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        train_x=rng.normal(size=(30, 4)),
        train_y=rng.normal(size=30),
        test_x=rng.normal(size=(7, 4)),
        test_y=rng.normal(size=7),
    )
    data = load_tabular(path)
    assert data.train_x.shape == (30, 4) and data.test_x.shape == (7, 4)
    a, b = synthetic_regression(100, 20, 5, 0.5, seed=3), synthetic_regression(100, 20, 5, 0.5, seed=3)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, synthetic_regression(100, 20, 5, 0.5, seed=4).train_x)


def test_feature_scaler_standardises_on_the_train_split_and_appends_an_intercept():
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])
    scaler = FeatureScaler.fit(x, standardize=True, intercept=True)
    z = scaler(x)
    assert z.shape == (3, 3) and torch.allclose(z[:, 2], torch.ones(3))
    assert torch.allclose(z[:, :2].mean(0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(z[:, :2].std(0), torch.ones(2), atol=1e-6)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a text CSV"),
        (b"a,b\n1,2\n3,x\n", "not a table of numbers"),
        (b"a,b\n1,nan\n3,4\n5,6\n7,8\n9,1\n", "NaN or infinite"),
        (b"", "empty"),
        (b"1\n2\n3\n", "at least two columns"),
    ],
)
def test_bad_csv_gives_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_tabular(path)


def test_bad_npz_and_targets_give_clear_errors(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.zeros(2))
    with pytest.raises(UserError, match="object arrays are refused"):
        load_tabular(tmp_path / "obj.npz")
    np.savez(tmp_path / "keys.npz", features=np.zeros((3, 2)))
    with pytest.raises(UserError, match="needs arrays x and y"):
        load_tabular(tmp_path / "keys.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match="not a readable .npz"):
        load_tabular(tmp_path / "garbage.npz")
    with pytest.raises(UserError, match="no column|no target column"):
        (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n5,6\n7,8\n9,0\n")
        load_tabular(tmp_path / "t.csv", target="price")
    data = synthetic_regression(20, 5, 2, 1.0, 0)
    with pytest.raises(UserError, match="integer class targets"):
        data.for_likelihood("bernoulli")


def test_regression_metrics_match_the_exact_gaussian_predictive():
    """S identical samples make the mixture a single Gaussian N(f, s^2): both metric functions must agree; a
    spread of samples widens the predictive (coverage up) and changes the mixture NLL."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(50, generator=g, dtype=torch.float64)
    y = f + 0.7 * torch.randn(50, generator=g, dtype=torch.float64)
    mixture = regression_metrics(f.expand(4, -1), y, 0.7)
    exact = gaussian_predictive_metrics(f, torch.full_like(f, 0.49), y)
    for k in ("rmse", "nll", "coverage_95"):
        assert mixture[k] == pytest.approx(exact[k], rel=1e-12)
    spread = regression_metrics(f + torch.randn(40, 50, generator=g, dtype=torch.float64), y, 0.7)
    assert spread["coverage_95"] > mixture["coverage_95"] and spread["nll"] != pytest.approx(mixture["nll"])


@pytest.fixture(scope="module")
def blr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("blr")
    proc = bpc("run", "--out", str(out), "--methods", "random,fkl_mcmc", *BLR_TINY)
    return out, proc


def test_blr_pipeline_reports_regression_metrics_exact_divergences_and_the_reference(blr_run):
    out, proc = blr_run
    assert "| synthetic-regression | 6 | fkl_mcmc | hmc |" in proc.stdout and "full data" in proc.stdout
    random_res = json.loads((out / "evals/random-ipc6-hmc/results.json").read_text())
    learnt = json.loads((out / "evals/fkl_mcmc-ipc6-hmc/results.json").read_text())
    assert set(random_res["summary"]) == {"rmse", "nll", "coverage_95", "acceptance_rate"}
    # HMC on the coreset posterior agrees with that posterior's exact predictive (a sampler check)
    for res in (random_res, learnt):
        assert res["summary"]["nll"]["mean"] == pytest.approx(res["exact"]["coreset_predictive"]["nll"], abs=0.05)
    # the learnt coreset is closer to the full-data posterior in the divergence it minimises
    assert learnt["exact"]["forward_kl"] < 0.8 * random_res["exact"]["forward_kl"]
    # the reference (full-batch HMC on all data) reproduces the exact full-data predictive
    ref = json.loads((out / "reference/results.json").read_text())
    assert ref["summary"]["nll"]["mean"] == pytest.approx(learnt["exact"]["full_predictive"]["nll"], abs=0.02)
    assert (out / "reference/samples.safetensors").exists()
    table = (out / "table.md").read_text() if (out / "table.md").exists() else ""
    assert "RMSE" in (out / "report.md").read_text() or "RMSE" in table


def test_blr_refuses_image_only_options(tmp_path, capsys, monkeypatch):
    from pseudocoresets import cli  # in process: four refusals need no four interpreter starts

    monkeypatch.setenv("BPC_QUIET", "1")
    for extra, message in (
        (["--methods", "random,fkl+aug"], "images only"),
        (["--protocols", "asghmc", "--methods", "random"], "hmc for tabular"),
        (["--methods", "dc"], "needs class labels"),
        (["--evaluate.agreement", "--methods", "random"], "exact divergences"),
    ):
        code = cli.main(["run", "--out", str(tmp_path / "x"), *BLR_TINY, *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "x").exists()  # refused before any work: no run directory left
