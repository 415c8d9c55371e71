"""Split R-hat and effective sample size (evaluation/diagnostics.py) on chains whose answers are known."""

import pytest
import torch

from pseudocoresets.evaluation import diagnostics
from pseudocoresets.evaluation.diagnostics import effective_sample_size, predictive_diagnostics, split_rhat


def ar1(chains: int, n: int, phi: float, g: torch.Generator) -> torch.Tensor:
    """Stationary AR(1) chains x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t: unit variance, ESS = C n (1 - phi)/(1 + phi)."""
    x = torch.empty(chains, n, dtype=torch.float64)
    x[:, 0] = torch.randn(chains, generator=g, dtype=torch.float64)
    noise = torch.randn(chains, n, generator=g, dtype=torch.float64) * (1 - phi**2) ** 0.5
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def test_independent_draws(g):
    draws = torch.randn(4, 1000, 50, generator=g, dtype=torch.float64)
    rhat, ess = split_rhat(draws), effective_sample_size(draws)
    assert (rhat - 1).abs().max() < 0.02
    assert 3400 < float(ess.median()) < 4600


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_autocorrelated_draws_have_the_ar1_ess(g, phi):
    draws = torch.stack([ar1(4, 2000, phi, g) for _ in range(20)], dim=-1)
    expected = 4 * 2000 * (1 - phi) / (1 + phi)
    assert abs(float(effective_sample_size(draws).median()) / expected - 1) < 0.2


def test_chains_that_disagree_are_flagged(g):
    draws = torch.randn(4, 500, generator=g, dtype=torch.float64)
    draws[0] += 2.0  # one chain stuck elsewhere
    assert float(split_rhat(draws)) > 1.1
    drifting = torch.randn(4, 500, generator=g, dtype=torch.float64) + torch.linspace(-3, 3, 500)
    assert float(split_rhat(drifting)) > 1.1  # every chain drifts the same way: only the split sees it


def test_without_the_split_a_drift_goes_unseen(g, monkeypatch):
    """Mutant: R-hat on whole chains misses chains that drift alike (the reason for splitting)."""
    monkeypatch.setattr(diagnostics, "split_chains", lambda draws: draws)
    drifting = torch.randn(4, 500, generator=g, dtype=torch.float64) + torch.linspace(-3, 3, 500)
    assert float(split_rhat(drifting)) < 1.05


def test_predictive_summary(g):
    draws = torch.randn(3, 40, 10, generator=g)
    out = predictive_diagnostics(draws)
    assert set(out) == {"rhat_median", "rhat_max", "ess_median", "ess_min"}
    assert out["rhat_max"] >= out["rhat_median"] and out["ess_min"] <= out["ess_median"]
    assert predictive_diagnostics(draws[:, :3]) == {}  # too few draws to split


def test_an_evaluation_reports_its_diagnostics(one_thread):
    """HMC on a small logistic-regression coreset posterior: every repeat carries split R-hat and ESS of the log
    predictive probabilities of fixed test points, and the summary averages them."""
    from pseudocoresets.evaluation import EvalSettings, evaluate_coreset
    from pseudocoresets.models import ModelConfig, build_model

    gen = torch.Generator().manual_seed(1)
    model = build_model(ModelConfig(arch="linear"), (5,), 3)
    x = torch.randn(12, 5, generator=gen)
    y = torch.arange(12) % 3
    test_x, test_y = torch.randn(40, 5, generator=gen), torch.arange(40) % 3
    options = dict(chains=3, iterations=60, burn_in=20, thin=10, repeats=2, step_size=0.1)
    config = EvalSettings.build("hmc", **options, diagnostic_points=25)
    result = evaluate_coreset(model, x, y, {"test": test_x}, test_y, config, quiet=True)
    for run in result["repeats"]:
        assert 0.9 <= run["rhat_median"] <= run["rhat_max"] and 0 < run["ess_min"] <= run["ess_median"]
        assert run["rhat_max"] < 1.3  # a 15-weight posterior mixes in 40 HMC iterations
    assert set(result["summary"]) >= {"rhat_median", "rhat_max", "ess_median", "ess_min", "acceptance_rate"}
    off = evaluate_coreset(
        model, x, y, {"test": test_x}, test_y, EvalSettings.build("hmc", **options, diagnostic_points=0), quiet=True
    )
    assert "rhat_max" not in off["summary"]
    assert off["summary"]["accuracy"] == result["summary"]["accuracy"]  # observing changes no sample


def test_an_evaluation_with_a_diagonal_mass_matrix_records_it(one_thread):
    """``--evaluate.mass diagonal``: every chain's kept samples come from the metric of its burn-in windows, the
    evaluation says so, mixes as well, and an unknown mass matrix is refused."""
    from pseudocoresets.errors import UserError
    from pseudocoresets.evaluation import EvalSettings, evaluate_coreset
    from pseudocoresets.models import ModelConfig, build_model

    gen = torch.Generator().manual_seed(1)
    model = build_model(ModelConfig(arch="linear"), (5,), 3)
    x, y = torch.randn(12, 5, generator=gen), torch.arange(12) % 3
    test_x, test_y = torch.randn(40, 5, generator=gen), torch.arange(40) % 3
    options = dict(chains=3, iterations=80, burn_in=40, thin=10, repeats=1, step_size=0.1)
    config = EvalSettings.build("hmc", **options, mass="diagonal")
    config.validate()
    run = evaluate_coreset(model, x, y, {"test": test_x}, test_y, config, quiet=True)["repeats"][0]
    assert run["mass_matrix"] == "diagonal" and run["rhat_max"] < 1.3 and run["acceptance_rate"] > 0.5
    plain = EvalSettings.build("hmc", **options, mass="identity")
    assert evaluate_coreset(model, x, y, {"test": test_x}, test_y, plain, quiet=True)["repeats"][0]["mass_matrix"] == (
        "identity"
    )
    with pytest.raises(UserError, match="mass"):
        EvalSettings.build("hmc", mass="dense").validate()


def arviz_cases() -> list:
    """Draws of every shape the estimators branch on: few and many draws, one to four chains, positive and
    negative autocorrelation, chains offset from each other, a point whose draws do not vary, and (last) a slow
    drift under a period-8 oscillation, whose autocorrelation pair sums rise again while still positive, so
    Geyer's monotone step changes the answer."""
    g = torch.Generator().manual_seed(1)
    cases = []
    for chains, n, phi in [(1, 4, 0.3), (4, 9, 0.5), (2, 37, -0.6), (4, 200, 0.95), (3, 80, 0.0), (4, 500, 0.9)]:
        x = torch.stack([ar1(chains, n, phi, g) for _ in range(6)], dim=-1)
        x = x + torch.randn(chains, 1, 6, generator=g, dtype=torch.float64) * torch.linspace(0, 1, 6)
        cases.append(x)
    cases[-1][..., 0] = 1.5
    slow = torch.stack([ar1(4, 300, 0.97, g) for _ in range(3)], dim=-1) * 1.0
    phase = torch.rand(4, 1, 3, generator=g, dtype=torch.float64) * 6
    t = torch.arange(300, dtype=torch.float64).reshape(1, -1, 1)
    cases.append(slow + torch.sin(2 * torch.pi * t / 8 + phase))
    return cases


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # arviz on the draws that do not vary
def test_rhat_and_ess_equal_arviz_stats():
    """The project's split R-hat and ESS are arviz-stats' rhat(method="split") and ess(method="mean")."""
    from arviz_stats.base import array_stats

    for draws in arviz_cases():
        theirs = draws.movedim(-1, 0).numpy()  # [points, chains, draws]
        rhat, their_rhat = split_rhat(draws), torch.as_tensor(array_stats.rhat(theirs, method="split"))
        varies = torch.isfinite(their_rhat)  # arviz gives NaN where the draws do not vary
        assert torch.allclose(rhat[varies], their_rhat[varies], rtol=1e-10, atol=0)
        ess, their_ess = effective_sample_size(draws), torch.as_tensor(array_stats.ess(theirs, method="mean"))
        assert torch.allclose(ess, their_ess, rtol=1e-10, atol=0)


def test_the_monotone_step_matters_on_the_oscillating_case():
    """Without Geyer's monotone step the last case's ESS differs (so the arviz test above can see the mutant)."""
    wave = arviz_cases()[-1]
    kept = diagnostics.initial_monotone
    try:
        diagnostics.initial_monotone = lambda pairs, keep: pairs
        without = effective_sample_size(wave)
    finally:
        diagnostics.initial_monotone = kept
    assert (without / effective_sample_size(wave) - 1).abs().max() > 0.1


def test_draws_that_do_not_vary_have_no_rhat():
    """A point whose log predictive never changes (saturated at 0 in float32) has no R-hat (NaN, as arviz-stats
    gives), not 0: a 0 would pull the median under any threshold and stop the stopping rule at once."""
    g = torch.Generator().manual_seed(2)
    draws = torch.randn(4, 40, 5, generator=g, dtype=torch.float64).cumsum(1)  # drifting: R-hat well above 1
    draws[..., :3] = 0.0
    assert torch.isnan(split_rhat(draws)[:3]).all()
    summary = predictive_diagnostics(draws)
    assert summary["rhat_median"] > 1.1  # the median of the two points that vary
