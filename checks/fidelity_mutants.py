"""Mutation check of the posterior-fidelity tests: deliberately broken objectives must fail their checks.

Each mutant patches one piece of an objective (a deleted term, a flipped sign, a mean/sum or weight mix-up),
runs the same bench check as tests/fidelity/test_fidelity_blr.py (``fidelity.blr.run_check``, 300 steps; the family's
checks of tests/fidelity/test_fidelity_family.py for the family mutants) and records the share of the exact
reduction it reaches against the threshold of ``fidelity.blr.CHECKS`` (``FAMILY_CHECKS``). Every mutant must
come out below its threshold ("caught"); a mutant that raises (its patch no longer fits the code's signatures)
is reported as not caught, so the script fails until the mutant is mended.

    python checks/fidelity_mutants.py      # about 5 minutes on 2 cores

Writes checks/results/fidelity_mutants.{json,md} (fidelity_mutants_partial.* when a name filter is given).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.experts import ExpertPool  # noqa: E402
from pseudocoresets.fidelity.blr import CHECKS, FAMILY_CHECKS, run_check, run_family_check  # noqa: E402
from pseudocoresets.objectives import chains, fkl, fkl_mcmc, rkl, wasserstein  # noqa: E402
from pseudocoresets import reference  # noqa: E402
from pseudocoresets.evaluation import diagnostics  # noqa: E402
from pseudocoresets.models import last_layer  # noqa: E402
from pseudocoresets.objectives import vbpc  # noqa: E402
from pseudocoresets.distill import watch  # noqa: E402
from pseudocoresets.samplers import CoresetPosterior, MassAdapter, mass as mass_matrix, sghmc  # noqa: E402

THRESHOLD = {(label, weight): least for label, weight, least in CHECKS}
FAMILY_THRESHOLD = {(label, weight): (member, least) for member, label, weight, least in FAMILY_CHECKS}
original_rkl = rkl.rkl_surrogate
original_contrastive = fkl_mcmc.contrastive_backward
original_fkl = fkl.fkl_surrogate
original_w_step = wasserstein.Wasserstein.step


def rkl_without_coreset_term(core_ll, data_ll, thetas, m, n, posterior, **shares):
    """c = -f_x: Eq. 4's -f_u term deleted (the defect the old test could not see)."""
    with torch.no_grad():
        full = torch.stack([data_ll(t, s).detach() for s, t in enumerate(thetas)])
    weights = -n * full - (-n * full).mean()
    for s in range(len(thetas)):
        ((weights[s] * m / (len(thetas) * n)) * core_ll(thetas[s].detach(), s)).backward()
    return weights.mean()


def rkl_flipped(core_ll, data_ll, thetas, m, n, posterior, **shares):
    return original_rkl(lambda t, s: -core_ll(t, s), data_ll, thetas, m, n, posterior, **shares)


def rkl_unweighted(core_ll, data_ll, thetas, m, n, posterior, **shares):
    """The coreset weight dropped (w = 1 whatever the posterior says): a mean/sum mix-up of the coreset term."""
    return original_rkl(core_ll, data_ll, thetas, m, n, dataclasses.replace(posterior, weight=1.0), **shares)


def contrastive_flipped(log_lik, thetas_u, thetas_x):
    return original_contrastive(lambda t: -log_lik(t), thetas_u, thetas_x)


def contrastive_without_x(log_lik, thetas_u, thetas_x):
    return original_contrastive(log_lik, thetas_u, thetas_u[:0].new_zeros((0, thetas_u.shape[1])))


def contrastive_summed_u(log_lik, thetas_u, thetas_x):
    """The pi_u term summed over its samples instead of averaged (the pi_x term still averaged)."""
    total = torch.zeros((), dtype=thetas_u.dtype)
    for theta in thetas_u:
        term = log_lik(theta.detach())
        term.backward()
        total = total + term.detach()
    for theta in thetas_x:
        term = -log_lik(theta.detach()) / len(thetas_x)
        term.backward()
        total = total + term.detach()
    return total


def fkl_flipped(log_lik, thetas_u, thetas_x, backward=True, **shares):
    return original_fkl(lambda t, s: -log_lik(t, s), thetas_u, thetas_x, backward, **shares)


def fkl_without_x(log_lik, thetas_u, thetas_x, backward=True, **shares):
    return original_fkl(log_lik, thetas_u, thetas_u, backward, **shares)  # both terms on q_u: the x-term cancels


def w_flipped(self, images, labels, g):
    out = original_w_step(self, images, labels, g)
    images.grad = -images.grad
    return out


def segment_without_target(self, max_start, length, g):
    """W's target is the start snapshot itself (L_x = 0)."""
    theta0, _, info = ExpertPool.__dict__["_original_sample_segment"](self, max_start, length, g)
    return theta0, theta0.clone() + 1e-3, info


def chains_ignore_weight(self, images, labels, g, *args, **kwargs):
    ctx = self.ctx
    self.ctx = dataclasses.replace(ctx, posterior=dataclasses.replace(ctx.posterior, weight=1.0))
    try:
        return ORIGINAL_ADVANCE(self, images, labels, g, *args, **kwargs)
    finally:
        self.ctx = ctx


def chains_do_not_move(self, images, labels, g, point_weights=None, starts=None):
    """CD-k with k = 0: the pi_u samples are the pi_x samples themselves."""
    if starts is None:
        return ORIGINAL_ADVANCE(self, images, labels, g, point_weights, starts)
    return starts.detach().clone()


ORIGINAL_ADVANCE = chains.PersistentChains.advance
CD = "fkl_mcmc, chains from pi_x (CD-k)"
MUTANTS = [
    # at w = 1 the coreset term of c is M/N of the full-data term, so deleting it hardly moves the exact gradient
    # either; at w = N/M the two terms balance and the deletion must show
    (
        "rkl: -f_u term of Eq. 4 deleted",
        "rkl, samples gaussian (paper)",
        "N/M",
        mock.patch.object(rkl, "rkl_surrogate", rkl_without_coreset_term),
    ),
    ("rkl: sign flipped", "rkl, samples gaussian (paper)", "N/M", mock.patch.object(rkl, "rkl_surrogate", rkl_flipped)),
    (
        "rkl: coreset weight dropped (mean/sum mix-up)",
        "rkl, samples gaussian (paper)",
        "N/M",
        mock.patch.object(rkl, "rkl_surrogate", rkl_unweighted),
    ),
    (
        "fkl_mcmc: sign flipped",
        "fkl_mcmc",
        "1",
        mock.patch.object(fkl_mcmc, "contrastive_backward", contrastive_flipped),
    ),
    (
        "fkl_mcmc: pi_x term deleted",
        "fkl_mcmc",
        "1",
        mock.patch.object(fkl_mcmc, "contrastive_backward", contrastive_without_x),
    ),
    (
        "fkl_mcmc: pi_u term summed, not averaged",
        "fkl_mcmc",
        "1",
        mock.patch.object(fkl_mcmc, "contrastive_backward", contrastive_summed_u),
    ),
    (
        "fkl_mcmc: chains ignore the coreset weight",
        "fkl_mcmc",
        "N/M",
        mock.patch.object(chains.PersistentChains, "advance", chains_ignore_weight),
    ),
    ("fkl_mcmc CD-k: sign flipped", CD, "1", mock.patch.object(fkl_mcmc, "contrastive_backward", contrastive_flipped)),
    (
        "fkl_mcmc CD-k: chains not moved (k = 0)",
        CD,
        "1",
        mock.patch.object(chains.PersistentChains, "advance", chains_do_not_move),
    ),
    (
        "fkl: sign flipped",
        "fkl (Algorithm 1), lr_student 0.03",
        "N/M",
        mock.patch.object(fkl, "fkl_surrogate", fkl_flipped),
    ),
    (
        "fkl: pi_x term deleted",
        "fkl (Algorithm 1), lr_student 0.03",
        "N/M",
        mock.patch.object(fkl, "fkl_surrogate", fkl_without_x),
    ),
    (
        "wasserstein: sign flipped",
        "wasserstein (MTT)",
        "N/M",
        mock.patch.object(wasserstein.Wasserstein, "step", w_flipped),
    ),
    (
        "wasserstein: target = start snapshot",
        "wasserstein (MTT)",
        "N/M",
        mock.patch.object(ExpertPool, "sample_segment", segment_without_target),
    ),
]


def potential_untempered(self, theta):
    """U(theta) instead of U(theta) / T: HMC samples the T = 1 posterior whatever T says."""
    theta = theta.detach().requires_grad_(True)
    u = self.energy(theta)
    (grad,) = torch.autograd.grad(u, theta)
    return u.detach(), grad


ORIGINAL_SGHMC_BUILD = sghmc.build


def sghmc_untempered(grad_fn, eta, friction, temperature=1.0, *args, **kwargs):
    """SGHMC's injected noise without the temperature."""
    return ORIGINAL_SGHMC_BUILD(grad_fn, eta, friction, 1.0, *args, **kwargs)


def kinetic_without_metric(self, p):
    """K(p) = p^T p / 2 whatever the mass matrix."""
    return 0.5 * (p * p).sum()


def momentum_without_metric(self, like, g):
    """p ~ N(0, I) whatever the mass matrix."""
    return torch.randn(like.shape, generator=g, device=like.device, dtype=like.dtype)


def window_without_metric(self, iteration, position):
    """The burn-in window records positions but never hands the kernel its metric."""
    ORIGINAL_OBSERVE(self, iteration, position)
    return None


ORIGINAL_OBSERVE = MassAdapter.observe
ORIGINAL_MEMBER = reference.train_member


def member_prior_not_per_point(model, x, y, prior_std, *args, **kwargs):
    """The ensemble member's weight decay 1 / sigma^2 on the mean loss, not 1 / (sigma^2 N)."""
    return ORIGINAL_MEMBER(model, x, y, prior_std / len(y) ** 0.5, *args, **kwargs)


def member_without_prior(model, x, y, prior_std, *args, **kwargs):
    """The ensemble member trained on the likelihood alone (its mode the MLE)."""
    return ORIGINAL_MEMBER(model, x, y, 1e12, *args, **kwargs)


ORIGINAL_LAST_LAYER = last_layer.last_layer_posterior
ORIGINAL_OUTER = vbpc.outer_loss


def last_layer_without_noise(phi, targets, prior_std=1.0, weight=1.0, temperature=1.0, noise=1.0):
    """The last-layer posterior with the coreset's noise ignored (taken as 1, the model's in the tests)."""
    return ORIGINAL_LAST_LAYER(phi, targets, prior_std, weight, temperature, 1.0)


def outer_loss_over_batch(post, model, phi_x, y, num_data):
    """(V5) with the KL divided by the real mini-batch's size instead of N."""
    return ORIGINAL_OUTER(post, model, phi_x, y, len(y))


# Mutants of the samplers' coreset posterior: no bench check sees them (the bench runs at T = 1), so each is held
# against the suite's test of the tempered posterior; caught = that test fails with the mutant in place.
TEMPERED = "tests/samplers/test_tempered_posterior.py"
REFERENCE = "tests/reference/test_reference.py"
METRIC = "tests/samplers/test_mass.py"
DIAGNOSTICS = "tests/evaluation/test_diagnostics.py"
compare_original = watch.compare
FLIP = {"higher": "lower", "lower": "higher"}
VBPC_TESTS = "tests/objectives/test_vbpc.py"
WATCH_TESTS = "tests/objectives/test_watch.py"
TEST_MUTANTS = [
    (
        "watch: the better direction flipped",
        f"{WATCH_TESTS}::test_the_loop_says_once_when_the_watched_metric_got_worse",
        mock.patch.object(watch, "compare", lambda values, better: compare_original(values, FLIP[better])),
    ),
    (
        "watch: rKL watches its covariance monitor instead of the real data's log-likelihood",
        f"{WATCH_TESTS}::test_rkl_chains_going_the_wrong_way_are_caught",
        mock.patch.object(rkl.ReverseKL, "watch", dataclasses.replace(rkl.ReverseKL.watch, metric="covariance")),
    ),
    (
        "watch: standard errors of independent values (no batch means)",
        f"{WATCH_TESTS}::test_correlated_values_without_a_trend_are_rarely_called_worse",
        mock.patch.object(watch, "mean_variance", lambda values: statistics.variance(values) / len(values)),
    ),
    (
        "VBPC: no guard against a diverging loss",
        f"{WATCH_TESTS}::test_vbpc_with_the_image_defaults_diverges_on_blr_and_is_refused",
        mock.patch.object(vbpc.VBPC, "loss_is_divergence", False),
    ),
    (
        "VBPC: the coreset's noise ignored in the last-layer posterior",
        f"{VBPC_TESTS}::test_the_coreset_noise_is_the_one_of_the_coresets_likelihood",
        mock.patch.object(vbpc, "last_layer_posterior", last_layer_without_noise),
    ),
    (
        "VBPC: the objective passes the model's noise, not the coreset's",
        f"{VBPC_TESTS}::test_the_coreset_noise_is_the_one_of_the_coresets_likelihood",
        mock.patch.object(
            vbpc.VBPC,
            "_posterior",
            lambda self, phi, t: last_layer_without_noise(
                phi, t, self.ctx.posterior.prior_std, self.ctx.posterior.weight, self.ctx.posterior.temperature
            ),
        ),
    ),
    (
        "VBPC: KL divided by the real mini-batch's size, not N",
        f"{VBPC_TESTS}::test_the_kl_is_scaled_by_the_whole_data_set_on_a_mini_batch",
        mock.patch.object(vbpc, "outer_loss", outer_loss_over_batch),
    ),
    (
        "ESS without Geyer's monotone step",
        f"{DIAGNOSTICS}::test_rhat_and_ess_equal_arviz_stats",
        mock.patch.object(diagnostics, "initial_monotone", lambda pairs, kept: pairs),
    ),
    (
        "HMC potential without the temperature",
        f"{TEMPERED}::test_hmc_samples_the_tempered_coreset_posterior",
        mock.patch.object(CoresetPosterior, "potential_and_grad", potential_untempered),
    ),
    (
        "SGHMC noise without the temperature",
        f"{TEMPERED}::test_sghmc_samples_the_tempered_coreset_posterior",
        mock.patch.object(sghmc, "build", sghmc_untempered),
    ),
    (
        "HMC kinetic energy without the mass matrix",
        f"{METRIC}::test_hmc_with_a_metric_samples_the_target",
        mock.patch.object(mass_matrix.Metric, "kinetic_energy", kinetic_without_metric),
    ),
    (
        "HMC momentum without the mass matrix",
        f"{METRIC}::test_hmc_with_a_metric_samples_the_target",
        mock.patch.object(mass_matrix.Metric, "sample_momentum", momentum_without_metric),
    ),
    (
        "burn-in window's mass matrix never used",
        f"{METRIC}::test_burn_in_window_finds_a_diagonal_metric_that_mixes_a_badly_scaled_target",
        mock.patch.object(MassAdapter, "observe", window_without_metric),
    ),
    (
        "ensemble member: prior's weight decay not divided by N",
        f"{REFERENCE}::test_an_ensemble_member_ends_at_the_posterior_mode",
        mock.patch.object(reference, "train_member", member_prior_not_per_point),
    ),
    (
        "ensemble member without the prior",
        f"{REFERENCE}::test_an_ensemble_member_ends_at_the_posterior_mode",
        mock.patch.object(reference, "train_member", member_without_prior),
    ),
]


def chosen(name: str, only: str) -> bool:
    """Whether the mutant ``name`` runs: ``only`` is comma-separated pieces of names ("" runs every mutant)."""
    return not only or any(piece in name for piece in only.split(","))


def test_mutant_rows(only: str) -> list[dict]:
    rows = []
    for name, node, patch in TEST_MUTANTS:
        if not chosen(name, only):
            continue
        t0 = time.perf_counter()
        with patch:
            code = pytest.main([str(ROOT / node), "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-x"])
        caught = code == pytest.ExitCode.TESTS_FAILED
        rows.append(
            {
                "mutant": name,
                "test": node,
                "exit_code": int(code),
                "caught": caught,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(rows[-1], flush=True)
    return rows


# the same mutants held against the suite's checks on the family's medium problem (tests/fidelity/test_fidelity_family.py)
FAMILY_MUTANTS = [
    (
        "fkl_mcmc: sign flipped (medium family problem)",
        "fkl_mcmc",
        "1",
        mock.patch.object(fkl_mcmc, "contrastive_backward", contrastive_flipped),
    ),
    (
        "rkl chains: sign flipped (medium family problem)",
        "rkl, samples chains",
        "1",
        mock.patch.object(rkl, "rkl_surrogate", rkl_flipped),
    ),
]


def check(label: str, weight: str, family: bool) -> tuple[float, float]:
    """(share, threshold) of the bench's check, or of the family's (``family``)."""
    if not family:
        return run_check(label, weight)["share"], THRESHOLD[(label, weight)]
    member, least = FAMILY_THRESHOLD[(label, weight)]
    return run_family_check(member, label, weight)["share"], least


def main() -> None:
    only = (
        sys.argv[1] if len(sys.argv) > 1 else ""
    )  # only the mutants whose name contains one of these comma-separated texts
    torch.set_num_threads(1)
    ExpertPool._original_sample_segment = ExpertPool.sample_segment
    test_rows = test_mutant_rows(only)
    rows = []
    runs = [(*m, False) for m in MUTANTS] + [(*m, True) for m in FAMILY_MUTANTS]
    for name, label, weight, patch, family in runs:
        if not chosen(name, only):
            continue
        least = FAMILY_THRESHOLD[(label, weight)][1] if family else THRESHOLD[(label, weight)]
        t0 = time.perf_counter()
        with patch:
            try:
                share = check(label, weight, family)[0]
            except Exception as exc:  # noqa: BLE001 - a crash is not evidence: the mutant no longer fits the code
                share = float("nan")
                name += f" (raised {type(exc).__name__}: {exc}; fix the mutant)"
        caught = share < least  # NaN (the mutant raised) counts as not caught
        rows.append(
            {
                "mutant": name,
                "check": label,
                "weight": weight,
                "share": share,
                "threshold": least,
                "caught": caught,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(rows[-1], flush=True)
    lines = [
        "| mutant | check (coreset weight) | share of exact reduction | threshold | caught |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['mutant']} | {r['check']} (w = {r['weight']}) | {100 * r['share']:.1f}% | {100 * r['threshold']:.0f}% | "
        f"{'yes' if r['caught'] else 'NO'} |"
        for r in rows
    ]
    caught = sum(r["caught"] for r in rows)
    lines += ["", "| mutant held against a test | test it must fail | caught |", "|---|---|---|"]
    lines += [f"| {r['mutant']} | `{r['test']}` | {'yes' if r['caught'] else 'NO'} |" for r in test_rows]
    test_caught = sum(r["caught"] for r in test_rows)
    write_results(
        "fidelity_mutants" + ("_partial" if only else ""),
        {"machine": machine(), "rows": rows, "test_rows": test_rows},
        "\n".join(lines) + f"\n\n{caught} of {len(rows)} objective mutants caught (share below the test's threshold); "
        f"{test_caught} of {len(test_rows)} mutants held against a test caught (their test fails).\n",
        RESULTS,
    )
    sys.exit(0 if caught + test_caught == len(rows) + len(test_rows) else 1)


if __name__ == "__main__":
    main()
