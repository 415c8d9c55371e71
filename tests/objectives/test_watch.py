"""The outer loop's watch (distill/watch.py): a run that makes its coreset worse says so, a diverging VBPC run is
refused, and the blr preset's VBPC values descend on every problem of the closed-form family."""

from __future__ import annotations

import pytest
import torch

from pseudocoresets.config import preset
from pseudocoresets.distill import loop
from pseudocoresets.distill import watch as watching
from pseudocoresets.distill.loop import DistillConfig, distill
from pseudocoresets.errors import ResumeMismatch, UserError
from pseudocoresets.evaluation.gaussian import kl_gaussian, linear_gaussian_posterior
from pseudocoresets.fidelity.blr import FAMILY, family_cases, family_problem, run_family_check
from pseudocoresets.models import ModelConfig, build_model
from pseudocoresets.objectives import DistillContext, ObjectiveBase, Watch

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_compare_calls_a_clear_fall_worse_and_noise_or_a_rise_not():
    g = torch.Generator().manual_seed(0)
    noise = (0.1 * torch.randn(200, generator=g)).tolist()
    falling = [-0.01 * k + e for k, e in enumerate(noise)]
    assert watching.compare(falling, "higher")["worse"]
    assert not watching.compare(falling, "lower")["worse"]
    assert not watching.compare(noise, "higher")["worse"]
    assert watching.compare(noise[:9], "higher") is None  # too short for two windows
    verdict = watching.compare(falling, "higher")
    assert verdict["window"] == 20 and verdict["worse_by"] == pytest.approx(verdict["first"] - verdict["last"])


def test_correlated_values_without_a_trend_are_rarely_called_worse():
    """Stationary AR(1) values with lag-one correlation 0.9 (persistent chains): the variance of a window mean is
    about 19 x var / n, so a standard error of independent values calls 54 of these 200 trendless runs worse; the
    batch means call 9 (with ~8 effective values per window no estimate gets to the nominal 0.1%). A trend of twice
    the noise's spread over the run is still caught."""
    g = torch.Generator().manual_seed(1)
    alarms, caught = 0, 0
    for _ in range(200):
        e = torch.randn(1500, generator=g).tolist()
        x = [e[0]]
        for k in range(1, 1500):
            x.append(0.9 * x[-1] + (1 - 0.9**2) ** 0.5 * e[k])
        alarms += watching.compare(x, "higher")["worse"]
        caught += watching.compare([v - 2.0 * k / 1500 for k, v in enumerate(x)], "higher")["worse"]
    assert alarms <= 16 and caught >= 180, (alarms, caught)


def test_diverging_is_a_rise_of_ten_times_the_first_value_or_a_non_finite_loss():
    assert not watching.diverging(2.0, 21.9) and watching.diverging(2.0, 22.1)
    assert not watching.diverging(0.1, 10.0) and watching.diverging(0.1, 10.2)  # at least 10 x 1 above
    assert watching.diverging(2.0, float("nan")) and not watching.diverging(2.0, -50.0)


class Drifting(ObjectiveBase):
    """A stand-in objective: no gradient signal, a watched metric that falls by ``slope`` per step."""

    name = "drifting"
    watch = Watch("fit", "higher", "the fit fell", ("drifting.option",))

    def __init__(self, slope: float):
        self.slope, self.k = slope, 0

    def step(self, images, labels, g):
        images.grad = torch.zeros_like(images)
        self.k += 1
        return {"fit": -self.slope * self.k + 0.01 * float(torch.randn((), generator=g))}

    def state_dict(self):
        return {"k": torch.tensor([self.k])}

    def load_state_dict(self, state):
        self.k = int(state["k"][0])


def run_drifting(monkeypatch, slope, objective=Drifting, **kw):
    monkeypatch.setattr(loop, "build_objective", lambda method, cfg, ctx: objective(slope))
    monkeypatch.setattr(loop, "has_objective", lambda method: True)
    x = torch.randn(20, 3)
    model = build_model(ModelConfig(arch="linear", likelihood="gaussian"), (3,), 1)
    ctx = DistillContext(model, None, x, x[:, 0], 0, None, torch.device("cpu"))
    cfg = DistillConfig(method="fkl", ipc=2, iterations=60, checkpoint_every=0)
    return distill(cfg, None, ctx, torch.zeros(2, 3), torch.zeros(2), quiet=True, **kw)


def test_the_loop_says_once_when_the_watched_metric_got_worse(monkeypatch, capsys):
    _, summary = run_drifting(monkeypatch, 0.01)
    err = capsys.readouterr().err
    assert summary["watch"]["worse"] and err.count("\n") == 1 and "--drifting.option" in err
    _, summary = run_drifting(monkeypatch, -0.01)
    assert not summary["watch"]["worse"] and capsys.readouterr().err == ""


def test_a_resumed_run_watches_the_whole_run(monkeypatch):
    _, whole = run_drifting(monkeypatch, 0.01)
    saved, calls = {}, []
    with pytest.raises(KeyboardInterrupt):
        run_drifting(
            monkeypatch, 0.01, on_checkpoint=saved.update, stop_requested=lambda: calls.append(1) or len(calls) == 7
        )
    _, resumed = run_drifting(monkeypatch, 0.01, resume=saved)
    assert resumed["watch"] == whole["watch"]


def test_rkl_chains_going_the_wrong_way_are_caught():
    """M < d at the full data's scale: with its default chains, rKL raises its reverse KL, and the loop says so."""
    r = run_family_check("wide", "rkl, samples chains (defaults)", "N/M")
    assert r["objective"] > r["start"] and r["warned"], r


def blr_vbpc(member, weight, **changes):
    """VBPC through the outer loop with the blr preset's settings (``changes`` replace its options); returns the
    exact KL(q_u || pi_x) at the start and at the end (the learnt targets and the coreset noise included)."""
    problem = family_problem(member, 0, weight)
    config = preset("blr")
    distill_cfg, own = config.cell("vbpc", len(problem.u0))
    for key, value in changes.items():
        setattr(own, key, value)
    distill_cfg.checkpoint_every = 0
    ctx = DistillContext(
        problem.model(), None, problem.x, problem.y, 0, None, torch.device("cpu"), posterior=problem.posterior
    )
    images, summary = distill(distill_cfg, own, ctx, problem.u0, problem.v, quiet=True)
    mx, cx = problem.full_posterior()

    def kl(u, t, noise):
        mu, cu = linear_gaussian_posterior(u, t, noise, problem.posterior)
        return float(kl_gaussian(mu, cu, mx, cx))

    targets = torch.tensor(summary["label_targets"], dtype=images.dtype).reshape(-1)
    return kl(problem.u0, problem.v, summary["target_noise"]), kl(images, targets, summary["target_noise"])


@pytest.mark.parametrize("member", FAMILY, ids=[m.name for m in FAMILY])
@pytest.mark.parametrize("weight", ["1", "N/M"])
def test_the_blr_preset_vbpc_descends_on_every_family_problem(member, weight):
    start, end = blr_vbpc(member, weight)
    assert end < 0.5 * start, (start, end)


def test_vbpc_with_the_image_defaults_diverges_on_blr_and_is_refused():
    small = FAMILY[0]
    with pytest.raises(UserError, match="diverges.*--vbpc.lr_targets"):
        blr_vbpc(small, "1", coreset_noise=0.1, lr_targets=10.0)


@pytest.mark.parametrize(
    "method, label",
    [
        ("rkl", "rkl, samples chains"),
        ("fkl_mcmc", "fkl_mcmc"),
        ("fkl", "fkl (Algorithm 1)"),
        ("wasserstein", "wasserstein (MTT)"),
    ],
)
def test_the_blr_preset_is_the_family_benchs_case(method, label):
    """The family bench's numbers (experiments/blr_fidelity/results/fidelity_family.md) are the blr preset's for
    these objectives: the same objective options and the same student."""
    (case,) = [c for c in family_cases() if c[0] == label]
    distill, own = preset("blr").cell(method, 20)
    assert own == case[3]
    keys = ("lr_student", "student_steps", "expert_epochs", "max_start_epoch", "batch_syn")
    assert {k: getattr(distill, k) for k in keys} == {k: getattr(case[2], k) for k in keys}


class Rising(Drifting):
    """A divergence loss that rises by 3 per step from 1: refused once it is 10 above the first value."""

    loss_is_divergence = True
    guard_options = ("rising.option",)

    def step(self, images, labels, g):
        metrics = super().step(images, labels, g)
        return {**metrics, "loss": 1.0 + 3.0 * (self.k - 1)}


def test_a_resumed_run_keeps_the_guards_first_loss(monkeypatch):
    def run(**kw):
        return run_drifting(monkeypatch, 0.0, Rising, **kw)

    with pytest.raises(UserError, match=r"from 1 to 13 by iteration 4.*--rising.option"):
        run()
    saved, calls = {}, []
    with pytest.raises(KeyboardInterrupt):
        run(on_checkpoint=saved.update, stop_requested=lambda: calls.append(1) or len(calls) == 3)
    with pytest.raises(UserError, match=r"from 1 to 13 by iteration 4"):
        run(resume=saved)
    saved["watch"] = torch.tensor([float("nan")], dtype=torch.float64)
    with pytest.raises(ResumeMismatch, match="watched values"):
        run(resume=saved)
