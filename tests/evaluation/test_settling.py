"""The stopping rule of sampled evaluations: chains continue, doubling their post-burn-in length, until the
predictive of the second half of their kept states is within a set total variation of the first half's."""

import pytest
import torch

from pseudocoresets import UserError
from pseudocoresets.evaluation import EvalSettings, evaluate_coreset
from pseudocoresets.evaluation.protocols.sampled import SettlePoints
from pseudocoresets.models import ModelConfig, build_model
from pseudocoresets.samplers import Chain


def _problem():
    gen = torch.Generator().manual_seed(1)
    model = build_model(ModelConfig(arch="linear"), (5,), 3)
    x, y = torch.randn(12, 5, generator=gen), torch.arange(12) % 3
    test_x, test_y = torch.randn(60, 5, generator=gen), torch.arange(60) % 3
    return model, x, y, {"test": test_x}, test_y


BASE = dict(chains=2, iterations=12, burn_in=4, thin=1, repeats=1, step_size=0.1, diagnostic_points=0)


def test_a_settled_predictive_stops_early_and_an_unsettled_one_runs_to_its_cap(one_thread):
    model, x, y, sets, test_y = _problem()
    loose = evaluate_coreset(model, x, y, sets, test_y, EvalSettings.build("hmc", **BASE, settle_tv=0.5), quiet=True)
    run = loose["repeats"][0]
    assert run["stopped"] == "settled" and run["iterations"] == 12 and run["halves_tv"] <= 0.5
    strict = EvalSettings.build("hmc", **BASE, settle_tv=1e-9, max_iterations=68)
    run = evaluate_coreset(model, x, y, sets, test_y, strict, quiet=True)["repeats"][0]
    # 12 -> 20 -> 36 -> 68: the post-burn-in length doubles (8, 16, 32, 64) up to the cap
    assert run["stopped"] == "cap" and run["iterations"] == 68 and run["samples"] == 2 * 64
    assert 0 < run["halves_tv"] < 0.5 and 0 < run["interleaved_tv"] < 0.5


def test_a_tighter_threshold_runs_longer(one_thread):
    model, x, y, sets, test_y = _problem()
    used = []
    for tv in (0.2, 0.01):
        settings = EvalSettings.build("hmc", **BASE, settle_tv=tv, max_iterations=400)
        used.append(evaluate_coreset(model, x, y, sets, test_y, settings, quiet=True)["repeats"][0]["iterations"])
    assert used[0] < used[1]


def test_without_the_rule_nothing_changes(one_thread):
    model, x, y, sets, test_y = _problem()
    fixed = evaluate_coreset(model, x, y, sets, test_y, EvalSettings.build("hmc", **BASE), quiet=True)
    assert "stopped" not in fixed["repeats"][0] and fixed["repeats"][0]["samples"] == 2 * 8


def test_halves_tv_is_the_total_variation_of_the_two_halves():
    """Two halves that predict opposite classes on every point differ by TV 1; identical halves by 0."""
    model = build_model(ModelConfig(arch="linear"), (2,), 2)

    class Ctx:
        test_sets = {"test": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
        prepare = None

        class common:
            test_batch, compile = 8, False

    Ctx.model, Ctx.test_y = model, torch.tensor([0, 1])
    big = torch.zeros(model.num_params)
    big[0], big[1] = 50.0, -50.0  # weight rows: class 0 <- +50 x_0, class 1 <- -50 x_0 (layout of nn.Linear)
    chain = Chain(samples=[big, -big])
    assert halves_tv(Ctx, [chain], 1) == pytest.approx(1.0, abs=1e-6)
    assert halves_tv(Ctx, [Chain(samples=[big, big])], 2) == pytest.approx(0.0, abs=1e-9)
    # the interleaved split pairs even with odd states: [big, big, -big, -big] differs in halves, not interleaved
    drifting = Chain(samples=[big, big, -big, -big])
    assert halves_tv(Ctx, [drifting], 1) == pytest.approx(1.0, abs=1e-6)
    assert halves_tv(Ctx, [drifting], 1, interleaved=True) == pytest.approx(0.0, abs=1e-6)


def test_the_rule_options_are_checked():
    for options, word in (
        ({"settle_tv": 1.5}, "settle_tv"),
        ({"settle_tv": 0.1, "max_iterations": 5}, "max_iterations"),
    ):
        with pytest.raises(UserError, match=word):
            EvalSettings.build("hmc", **{**BASE, **options}).validate()


def halves_tv(ctx, chains, points, interleaved=False):
    """(S1) by the stopping rule's own checks (the even/odd TV with ``interleaved``)."""
    return SettlePoints(ctx, points).check(chains)["interleaved_tv" if interleaved else "halves_tv"]


def _context():
    """(model, a protocol context with what the stopping rule's checks read)."""
    model, _, _, sets, test_y = _problem()

    class Ctx:
        test_sets, prepare = sets, None

        class common:
            test_batch, compile = 64, False

    Ctx.model, Ctx.test_y = model, test_y
    return model, Ctx


def test_checks_score_each_kept_state_once_and_agree_with_the_direct_computation(one_thread, monkeypatch):
    from pseudocoresets.evaluation.protocols import sampled

    model, Ctx = _context()
    g = torch.Generator().manual_seed(0)
    chains = [Chain(samples=[torch.randn(model.num_params, generator=g) for _ in range(6)]) for _ in range(2)]
    calls = []
    original = sampled.predictive_average
    monkeypatch.setattr(sampled, "predictive_average", lambda *a, **k: calls.append(1) or original(*a, **k))
    points = sampled.SettlePoints(Ctx, 40)
    points.check(chains)
    assert len(calls) == 12
    for chain in chains:
        chain.samples += [torch.randn(model.num_params, generator=g) for _ in range(6)]
    second = points.check(chains)
    assert len(calls) == 24  # only the 12 new states were scored
    fresh = sampled.SettlePoints(Ctx, 40).check(chains)  # every state scored at once
    for key in ("halves_tv", "interleaved_tv", "accuracy", "nll"):
        assert second[key] == pytest.approx(fresh[key], abs=1e-6)


def test_a_check_before_any_state_is_kept_does_not_settle():
    from pseudocoresets.evaluation.protocols import sampled

    _, Ctx = _context()
    check = sampled.SettlePoints(Ctx, 40).check([Chain(), Chain()])
    assert check["kept"] == 0 and "accuracy" not in check

    class Rule:
        settle_tv, settle_rhat = 0.5, 1.1

    assert not sampled.criteria_met(Rule, {**check, "settle_rhat": 1.0})


def test_the_checks_score_compiled_when_the_kept_states_make_it_pay(monkeypatch):
    """The stopping rule's points are scored by the same compiled network as the final scoring when the states
    kept up to the cap give it enough forwards (evaluation/scoring.py compile_pays), eagerly otherwise."""
    from pseudocoresets.evaluation import scoring
    from pseudocoresets.evaluation.protocols import sampled
    from pseudocoresets.models import compiling

    model, Ctx = _context()
    Ctx.common.compile = True
    monkeypatch.setattr(compiling, "can_compile", lambda module, device: True)
    assert sampled.SettlePoints(Ctx, 40, states=scoring.COMPILE_MIN_FORWARDS).compile
    assert not sampled.SettlePoints(Ctx, 40, states=1).compile
    Ctx.common.compile = False  # --no-evaluate.compile
    assert not sampled.SettlePoints(Ctx, 40, states=scoring.COMPILE_MIN_FORWARDS).compile
    seen = []
    points = sampled.SettlePoints(Ctx, 40, states=scoring.COMPILE_MIN_FORWARDS)
    points.compile = True
    eager = sampled.predictive_average
    monkeypatch.setattr(sampled, "predictive_average", lambda *a: seen.append(a[-1]) or eager(*a[:-1], False))
    points.check([Chain(samples=[torch.zeros(model.num_params)] * 4) for _ in range(2)])
    assert seen == [True] * 8
