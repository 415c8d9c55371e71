"""The full-data reference posterior (reference/sampler.py): cyclical SGHMC and full-batch HMC against the exact
posterior of Bayesian linear regression, bit-identical resume, and the agreement metrics it feeds."""

import dataclasses

import pytest
import torch

from pseudocoresets.evaluation.gaussian import linear_gaussian_posterior
from pseudocoresets.evaluation.metrics import agreement_metrics
from pseudocoresets.models import ModelConfig, build_model
from pseudocoresets.reference import CSGHMCState, ReferenceConfig, cyclical_lr, sample_csghmc, sample_hmc
from pseudocoresets.reference import sampler as reference_sampler
from pseudocoresets.samplers import PosteriorSpec


def blr(n=500, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.randn(d, generator=g, dtype=torch.float64) + torch.randn(n, generator=g, dtype=torch.float64)
    model = build_model(ModelConfig(arch="linear", likelihood="gaussian", noise_std=1.0), (d,), 1, torch.float64)
    mean, cov = linear_gaussian_posterior(x, y, 1.0, PosteriorSpec(1.0, 1.0, 1.0))
    return model, x, y, mean, cov


CSGHMC = ReferenceConfig(
    cycles=6, epochs_per_cycle=10, batch_size=50, lr=0.02, exploration=0.3, samples_per_cycle=10, sample_spacing=5
)


def start_state(d: int, seed: int = 1) -> CSGHMCState:
    g = torch.Generator().manual_seed(seed)
    return CSGHMCState(torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64), 0, g.get_state(), [])


def matches_posterior(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> bool:
    """Mean within one posterior sd per coordinate, and the spread pooled over coordinates (sqrt of the mean
    variance ratio) within a factor 1.6: 60 correlated samples give per-coordinate sds too noisy to test alone.
    (At lr 0.05 mini-batch noise inflates the spread to about 1.7x, which this check rejects.)"""
    sd = cov.diagonal().sqrt()
    pooled = float(((samples.var(0) / cov.diagonal()).mean()).sqrt())
    return bool(((samples.mean(0) - mean).abs() < sd).all() and 1 / 1.6 < pooled < 1.6)


def test_cyclical_schedule_restarts_every_cycle():
    assert cyclical_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cyclical_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cyclical_lr(0.1, 99, 100) < 1e-4


def test_csghmc_samples_the_full_data_posterior_and_a_mean_gradient_does_not(monkeypatch):
    model, x, y, mean, cov = blr()
    state = sample_csghmc(model, x, y, 1.0, CSGHMC, start_state(3))
    samples = torch.stack(state.samples)
    assert len(samples) == CSGHMC.cycles * CSGHMC.samples_per_cycle
    assert matches_posterior(samples, mean, cov), (samples.mean(0) - mean, samples.std(0) / cov.diagonal().sqrt())

    # mutant: the potential's likelihood as a mean over the batch instead of N/B times its sum (posterior N x wider)
    real = reference_sampler.minibatch_energy_grad

    def mean_gradient(model, x, y, prior_std, batch):
        grad = real(model, x, y, prior_std, batch)
        return lambda theta, g: grad(theta, g) / len(y)

    monkeypatch.setattr(reference_sampler, "minibatch_energy_grad", mean_gradient)
    wrong = torch.stack(sample_csghmc(model, x, y, 1.0, CSGHMC, start_state(3)).samples)
    assert not matches_posterior(wrong, mean, cov)


def test_csghmc_without_injected_noise_collapses():
    """Exploration over the whole cycle (no noise) is SGD with momentum: its spread is not the posterior's."""
    model, x, y, mean, cov = blr()
    cfg = dataclasses.replace(CSGHMC, exploration=0.0)
    noisy = torch.stack(sample_csghmc(model, x, y, 1.0, cfg, start_state(3)).samples)
    assert matches_posterior(noisy, mean, cov)
    no_noise = dataclasses.replace(CSGHMC, exploration=0.95, samples_per_cycle=3, sample_spacing=1)
    collapsed = torch.stack(sample_csghmc(model, x, y, 1.0, no_noise, start_state(3)).samples)
    assert not matches_posterior(collapsed, mean, cov)


def test_csghmc_resumes_bit_for_bit_after_any_cycle():
    model, x, y, _, _ = blr(n=100)
    cfg = dataclasses.replace(CSGHMC, cycles=3, epochs_per_cycle=2, samples_per_cycle=2, sample_spacing=3)
    saved = []
    full = sample_csghmc(
        model,
        x,
        y,
        1.0,
        cfg,
        start_state(3),
        on_cycle=lambda s: saved.append(dataclasses.replace(s, samples=list(s.samples))),
    )
    resumed = sample_csghmc(model, x, y, 1.0, cfg, saved[0])
    assert len(full.samples) == len(resumed.samples) == 6
    assert all(torch.equal(a, b) for a, b in zip(full.samples, resumed.samples))


def test_full_batch_hmc_reference_matches_the_exact_posterior():
    model, x, y, mean, cov = blr()
    cfg = ReferenceConfig(sampler="hmc", iterations=400, burn_in=100, thin=5, step_size=0.01)
    samples, accept = sample_hmc(
        model, x, y, 1.0, cfg, torch.zeros(3, dtype=torch.float64), torch.Generator().manual_seed(0)
    )
    assert 0.5 < accept < 0.95
    assert matches_posterior(torch.stack(samples), mean, cov)


def test_agreement_metrics():
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    assert agreement_metrics(p, p) == {"agreement": 1.0, "tv": 0.0, "predictive_kl": 0.0}
    q = torch.tensor([[0.4, 0.6], [0.2, 0.8]])
    out = agreement_metrics(p, q)
    assert out["agreement"] == 0.5
    assert out["tv"] == pytest.approx(0.15)  # (0.3 + 0) / 2 points
    kl = 0.4 * torch.log(torch.tensor(0.4 / 0.7)) + 0.6 * torch.log(torch.tensor(0.6 / 0.3))
    assert out["predictive_kl"] == pytest.approx(float(kl) / 2)


def test_an_ensemble_member_ends_at_the_posterior_mode():
    """Bayesian linear regression on 20 points (the prior matters): a member trained on (R1) ends at the mode of
    pi_x, the exact posterior mean, from any initialisation; without the prior's weight decay (the MLE) or with
    it not divided by N, it would miss by a tenth of a posterior sd or more."""
    from pseudocoresets.reference import train_member

    model, x, y, mean, cov = blr(n=20)
    cfg = ReferenceConfig(sampler="ensemble", epochs=400, lr=0.1, batch_size=20, momentum=0.9)
    members = torch.stack([train_member(model, x, y, 1.0, cfg, c) for c in range(2)])
    sd = cov.diagonal().sqrt()
    assert ((members - mean).abs() < 1e-3 * sd).all(), (members, mean)
    mle = torch.linalg.lstsq(x, y).solution
    assert ((mle - mean).abs() > 0.1 * sd).any()  # the check can tell the mode from the MLE


def test_the_ensemble_reference_resumes_per_member(tiny_data, tmp_path):
    """``bpc reference --reference.sampler ensemble``: K distinct members, each its own file, so a lost member is
    trained again alone, bit for bit, and the others are kept."""
    from safetensors.torch import load_file

    from helpers import TINY, bpc

    out = tmp_path / "run"
    args = ("--reference.sampler", "ensemble", "--reference.chains", "3", "--reference.epochs", "2")
    args += ("--reference.batch_size", "64", "--methods", "random")
    bpc("reference", "--out", str(out), "--data.root", str(tiny_data), *TINY, *args)
    ref = out / "reference"
    samples = load_file(str(ref / "samples.safetensors"))["samples"]
    assert samples.shape[0] == 3 and not torch.equal(samples[0], samples[1])
    assert not (out / "experts").exists()  # an ensemble shares nothing with the experts
    kept = {c: (ref / f"chain_{c:03d}.safetensors").stat().st_mtime_ns for c in (0, 1)}
    for name in ("chain_002.safetensors", "samples.safetensors", "results.json", "manifest.json"):
        (ref / name).unlink()
    bpc("reference", "--out", str(out), "--data.root", str(tiny_data), *TINY, *args)
    assert torch.equal(load_file(str(ref / "samples.safetensors"))["samples"], samples)
    assert {c: (ref / f"chain_{c:03d}.safetensors").stat().st_mtime_ns for c in (0, 1)} == kept


def test_bpc_reference_writes_its_ceiling_against_independent_references(tiny_data, tmp_path):
    """``--reference.compare ensemble,csghmc``: the run's reference checked against one of each kind, sampled
    with seeds that share no generator with it; their agreement, TV and KL are written beside it and printed,
    the run's own reference is the one it would be without the option, and a re-run recomputes nothing."""
    import json

    from helpers import TINY, bpc

    out = tmp_path / "run"
    args = ("--reference.sampler", "ensemble", "--reference.chains", "2", "--reference.epochs", "1")
    args += ("--reference.batch_size", "64", "--reference.cycles", "1", "--reference.samples_per_cycle", "2")
    args += ("--reference.sample_spacing", "2", "--reference.epochs_per_cycle", "2")
    plain = tmp_path / "plain"
    bpc("reference", "--out", str(plain), "--data.root", str(tiny_data), *TINY, *args)
    proc = bpc(
        "reference",
        "--out",
        str(out),
        "--data.root",
        str(tiny_data),
        *TINY,
        *args,
        "--reference.compare",
        "ensemble,csghmc",
    )
    ceiling = json.loads((out / "references" / "ceiling.json").read_text())
    assert [(r["sampler"], r["seed"]) for r in ceiling["against"]] == [("ensemble", 2), ("csghmc", 2)]
    from safetensors.torch import load_file

    ours = load_file(str(out / "reference" / "predictive" / "test.safetensors"))["probs"]
    for row in ceiling["against"]:
        theirs = load_file(str(out / row["directory"] / "predictive" / "test.safetensors"))["probs"]
        expected = agreement_metrics(theirs, ours)  # the companion's predictive against the run's own, not itself
        assert all(row[k] == pytest.approx(v, abs=1e-6) for k, v in expected.items()), (row, expected)
        assert row["tv"] > 0 and not torch.equal(theirs, ours)
        assert f"against {row['sampler']} (seed 2): agreement {row['agreement']:.4f}" in proc.stdout
    same = (out / "reference" / "samples.safetensors").read_bytes()
    assert same == (plain / "reference" / "samples.safetensors").read_bytes()
    assert json.loads((out / "reference/config.json").read_text()) == json.loads(
        (plain / "reference/config.json").read_text()
    )
    stamp = (out / "references" / "ensemble-seed2" / "samples.safetensors").stat().st_mtime_ns
    bpc(
        "reference",
        "--out",
        str(out),
        "--data.root",
        str(tiny_data),
        *TINY,
        *args,
        "--reference.compare",
        "ensemble,csghmc",
    )
    assert (out / "references" / "ensemble-seed2" / "samples.safetensors").stat().st_mtime_ns == stamp


def test_the_reference_reports_its_own_convergence(tiny_data, tmp_path):
    """cSGHMC's kept samples per chain give split R-hat and ESS in function space in the reference's results."""
    import json

    from helpers import TINY, bpc

    out = tmp_path / "run"
    args = ("--reference.cycles", "2", "--reference.samples_per_cycle", "2", "--reference.sample_spacing", "2")
    args += ("--reference.epochs_per_cycle", "2", "--reference.batch_size", "64", "--evaluate.diagnostic_points", "30")
    bpc("reference", "--out", str(out), "--data.root", str(tiny_data), *TINY, *args)
    convergence = json.loads((out / "reference" / "results.json").read_text())["convergence"]
    assert convergence["draws_per_chain"] == 4
    assert 0.5 < convergence["rhat_median"] <= convergence["rhat_max"] and 0 < convergence["ess_min"]
    # the draws behind them are saved: the same numbers follow from the file
    from pseudocoresets.evaluation.diagnostics import predictive_diagnostics
    from pseudocoresets.io import load_tensors

    draws = load_tensors(out / "reference" / "diagnostic_draws.safetensors")["log_predictive"]
    assert draws.shape[1:] == (4, 30)
    again = predictive_diagnostics(draws)
    assert all(abs(again[k] - convergence[k]) < 1e-9 * max(1.0, abs(convergence[k])) for k in again)


@pytest.mark.parametrize("threshold, cycles, stopped", [(9.9, 2, "settled"), (1.0001, 4, "cap")])
def test_csghmc_cycles_double_until_its_own_rhat_settles(tiny_data, tmp_path, threshold, cycles, stopped):
    """--reference.settle_rhat: the reference's budget set by its own diagnostics (cycles double up to the cap)."""
    import json

    from helpers import TINY, bpc

    out = tmp_path / "run"
    args = ("--reference.cycles", "2", "--reference.samples_per_cycle", "2", "--reference.sample_spacing", "2")
    args += ("--reference.epochs_per_cycle", "2", "--reference.batch_size", "64", "--evaluate.diagnostic_points", "30")
    args += ("--reference.settle_rhat", str(threshold), "--reference.max_cycles", "4")
    bpc("reference", "--out", str(out), "--data.root", str(tiny_data), *TINY, *args)
    convergence = json.loads((out / "reference" / "results.json").read_text())["convergence"]
    assert convergence["settling"]["cycles"] == cycles and convergence["settling"]["stopped"] == stopped
    assert convergence["draws_per_chain"] == 2 * cycles  # two kept states per cycle
    assert [t["cycles"] for t in convergence["settling"]["trace"]] == [2, 4][: len(convergence["settling"]["trace"])]
