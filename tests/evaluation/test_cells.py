"""One resolution of an evaluation cell: its settings, its location and its identity follow from resolved values
only, and evaluations written before each protocol had its own section are still found."""

import json

import pytest

from pseudocoresets import UserError
from pseudocoresets.config import apply_overrides, from_dict, preset
from pseudocoresets.pipeline.workspace import Workspace

# The flat evaluation identities the version before protocol sections wrote for the quick preset at ipc 10, and
# for the paper preset at ipc 1 with three options set (recorded from that version's eval_for + identity_dict).
EARLIER = {
    ("quick", "hmc"): '{"adapt_step_size": true, "agreement": false, "augment_per_image": true, "burn_in": 20, '
    '"chains": 4, "coreset_weight": 0.0, "corruptions": [], "ece_bins": 15, "friction": 0.1, "init_std": 0.1, '
    '"iterations": 40, "leapfrog_steps": 5, "prior_std": 0.0, "protocol": "hmc", "repeats": 3, "seed": 0, '
    '"severities": [1, 2, 3, 4, 5], "sghmc_step_size": 0.0001, "step_size": 0.01, "target_accept": 0.75, '
    '"temperature": 0.0, "test_batch": 256, "thin": 10}',
    ("quick", "asghmc"): '{"adapt_step_size": true, "agreement": false, "augment_per_image": true, "burn_in": 500, '
    '"chains": 4, "coreset_weight": 0.0, "corruptions": [], "ece_bins": 15, "friction": 0.1, "init_std": 0.1, '
    '"iterations": 1000, "leapfrog_steps": 5, "prior_std": 0.0, "protocol": "asghmc", "repeats": 3, "seed": 0, '
    '"severities": [1, 2, 3, 4, 5], "sghmc_step_size": 0.0001, "step_size": 0.01, "target_accept": 0.75, '
    '"temperature": 0.01, "test_batch": 256, "thin": 5}',
    ("quick", "vbpc"): '{"adapt_step_size": true, "agreement": false, "augment_per_image": true, "burn_in": 20, '
    '"chains": 4, "coreset_weight": 0.0, "corruptions": [], "ece_bins": 15, "friction": 0.1, "init_std": 0.1, '
    '"iterations": 40, "leapfrog_steps": 5, "prior_std": 0.0, "protocol": "vbpc", "repeats": 3, "seed": 0, '
    '"severities": [1, 2, 3, 4, 5], "sghmc_step_size": 0.0001, "step_size": 0.01, "target_accept": 0.75, '
    '"temperature": 0.0, "test_batch": 256, "thin": 10}',
    ("paper", "hmc"): '{"adapt_step_size": true, "agreement": false, "augment_per_image": true, "burn_in": 10, '
    '"chains": 10, "coreset_weight": 0.0, "corruptions": [], "ece_bins": 15, "friction": 0.2, "init_std": 0.1, '
    '"iterations": 20, "leapfrog_steps": 20, "mass": "diagonal", "prior_std": 0.0, "protocol": "hmc", '
    '"repeats": 10, "seed": 0, "severities": [1, 2, 3, 4, 5], "sghmc_step_size": 0.0001, "step_size": 0.05, '
    '"target_accept": 0.75, "temperature": 0.0, "test_batch": 256, "thin": 1, "vbpc_steps": 50}',
}


def _workspace(tmp_path, name="quick", **overrides):
    cfg = apply_overrides(preset(name), overrides)
    return Workspace(cfg, tmp_path / "run", "cpu", quiet=True)


@pytest.mark.parametrize("name, protocol", list(EARLIER))
def test_earlier_evaluations_keep_their_identity(tmp_path, name, protocol):
    overrides = {}
    ipc = 10
    if name == "paper":  # the paper preset at ipc 1 (its official HMC schedule), with options in three sections
        ipc = 1
        overrides = {"evaluate.friction": 0.2, "evaluate.vbpc_steps": 50, "evaluate.mass": "diagonal"}
    if name == "quick":  # the fixed budgets and A-SGHMC's thinning the quick preset had then
        overrides = {"hmc.settle_rhat": 0, "asghmc.settle_tv": 0, "asghmc.thin": 5}
    ws = _workspace(tmp_path, name, **overrides)
    cell = ws.config.resolve("random", ipc, protocol)
    assert json.dumps(ws.earlier_evaluation_identity(cell), sort_keys=True) == EARLIER[(name, protocol)]


def test_the_old_option_names_set_the_new_sections(tmp_path):
    ws = _workspace(tmp_path, **{"evaluate.chains": 7, "evaluate.sghmc_step_size": 2e-4, "evaluate.vbpc_noise": 0.3})
    hmc, asghmc = (
        ws.config.resolve("random", 10, "hmc").evaluation,
        ws.config.resolve("random", 10, "asghmc").evaluation,
    )
    assert hmc.own.chains == asghmc.own.chains == 7 and asghmc.own.step_size == 2e-4
    assert hmc.common.target_noise == 0.3 and "hmc.chains" in ws.config.explicit
    # the new name given too wins over the old one, in either order
    for order in ((("hmc.chains", 5), ("evaluate.chains", 9)), (("evaluate.chains", 9), ("hmc.chains", 5))):
        cfg = apply_overrides(preset("quick"), dict(order))
        assert cfg.resolve("random", 10, "hmc").evaluation.own.chains == 5
        assert cfg.resolve("random", 10, "asghmc").evaluation.own.chains == 9
    # a configuration saved with the old names is read into the new sections
    saved = {"preset": "quick", "evaluate": {"chains": 6, "friction": 0.3, "repeats": 2}}
    cell = from_dict(saved).resolve("random", 10, "asghmc").evaluation
    assert (cell.own.chains, cell.own.friction, cell.common.repeats) == (6, 0.3, 2)


def test_a_typed_default_does_not_move_an_evaluation(tmp_path):
    """A-SGHMC's own temperature typed or not: the same value, the same identity, one directory."""
    plain = _workspace(tmp_path, protocols="asghmc")
    typed = _workspace(tmp_path, protocols="asghmc", **{"evaluate.temperature": 0.01})
    a, b = (ws.eval_dir(ws.config.resolve("random", 10, "asghmc")) for ws in (plain, typed))
    assert a.path == b.path and a.path.name == "random-ipc10-asghmc" and a.config == b.config
    other = _workspace(tmp_path, protocols="asghmc", **{"evaluate.temperature": 0.5})
    c = other.eval_dir(other.config.resolve("random", 10, "asghmc"))
    assert c.path.name == "random-ipc10-asghmc-eval-T0.5" and c.config != a.config
    # under HMC a typed temperature is a posterior of its own (the coreset's is the default)
    hmc = _workspace(tmp_path, **{"evaluate.temperature": 0.01})
    assert hmc.eval_dir(hmc.config.resolve("random", 10, "hmc")).path.name == "random-ipc10-hmc-eval-T0.01"


def test_an_options_typing_never_enters_an_identity(tmp_path):
    """The same values typed or taken from the preset: the same cells, the same identities."""
    typed = _workspace(tmp_path, **{"hmc.chains": 4, "hmc.iterations": 40, "asghmc.friction": 0.1})
    plain = _workspace(tmp_path)
    for protocol in ("hmc", "asghmc", "vbpc"):
        x, y = (ws.eval_dir(ws.config.resolve("fkl", 10, protocol)) for ws in (typed, plain))
        assert x.path == y.path and x.config == y.config and x.earlier == y.earlier


def test_an_hmc_option_does_not_touch_another_protocols_identity(tmp_path):
    base, changed = _workspace(tmp_path), _workspace(tmp_path, **{"hmc.chains": 8})
    for protocol, same in (("hmc", False), ("asghmc", True), ("vbpc", True)):
        x, y = (ws.eval_dir(ws.config.resolve("random", 10, protocol)).config for ws in (base, changed))
        assert (x == y) is same, protocol


def test_unknown_protocols_and_bad_protocol_options_are_refused(tmp_path):
    with pytest.raises(UserError, match="unknown protocol"):
        preset("quick").resolve("random", 10, "nuts")
    for key, value, word in (("hmc.mass", "dense", "hmc.mass"), ("asghmc.friction", 2.0, "asghmc.friction")):
        from pseudocoresets.config import validate_run

        with pytest.raises(UserError, match=word):
            validate_run(apply_overrides(preset("quick"), {key: value, "protocols": "hmc,asghmc"}))


def test_a_settled_evaluation_never_takes_a_fixed_budgets_earlier_identity(tmp_path):
    """The flat section predates the stopping rule: an evaluation it identifies ran a fixed budget, so a cell
    under the rule does not adopt it (the same cell with a fixed budget does)."""
    for protocol, rule in (("hmc", "hmc.settle_rhat"), ("asghmc", "asghmc.settle_tv")):
        fixed = _workspace(tmp_path, protocols=protocol, **{"hmc.settle_rhat": 0, "asghmc.settle_tv": 0})
        settled = _workspace(
            tmp_path,
            protocols=protocol,
            **{"hmc.settle_rhat": 0, "asghmc.settle_tv": 0, rule: 1.05 if protocol == "hmc" else 0.06},
        )
        cell_fixed, cell_settled = (ws.config.resolve("random", 10, protocol) for ws in (fixed, settled))
        flat = fixed.earlier_evaluation_identity(cell_fixed)
        assert flat == settled.earlier_evaluation_identity(cell_settled)  # the flat section cannot tell them apart
        assert any(e.get("evaluate") == flat for e in fixed.eval_dir(cell_fixed).earlier)
        assert not any(e.get("evaluate") == flat for e in settled.eval_dir(cell_settled).earlier)


def test_an_evaluation_at_its_earlier_location_is_moved_with_one_line(tmp_path, capsys):
    """Written where the earlier version put A-SGHMC's typed temperature (``-eval-T0.01``), with the earlier flat
    identity: found, moved to its location now, reused; one line says so."""
    from pseudocoresets.io import atomic_write_json

    ws = _workspace(tmp_path, protocols="asghmc", **{"evaluate.temperature": 0.01, "asghmc.settle_tv": 0})
    cell = ws.config.resolve("random", 10, "asghmc")
    art = ws.eval_dir(cell)
    old = art.moved_from[0]
    assert old.name == "random-ipc10-asghmc-eval-T0.01" and art.path.name == "random-ipc10-asghmc"
    atomic_write_json(old / "config.json", {"kind": "evaluation", "config": art.earlier[0]})
    atomic_write_json(old / "results.json", {"summary": {}})
    from pseudocoresets.pipeline.artifacts import ArtifactDir

    ArtifactDir(old, "evaluation", art.earlier[0], ("results.json",)).finish(0, {})
    assert art.is_complete() and not old.exists() and (art.path / "results.json").is_file()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moved" in err and old.name in err
    # an artifact of another identity at the earlier location stays where it is
    other = _workspace(
        tmp_path / "b", protocols="asghmc", **{"evaluate.temperature": 0.01, "asghmc.chains": 9, "asghmc.settle_tv": 0}
    )
    art2 = other.eval_dir(other.config.resolve("random", 10, "asghmc"))
    atomic_write_json(art2.moved_from[0] / "config.json", {"kind": "evaluation", "config": art.earlier[0]})
    assert not art2.is_complete() and art2.moved_from[0].exists() and not art2.path.exists()


def test_a_moved_option_read_from_the_shared_section_says_where_it_went():
    from pseudocoresets import EvalConfig

    with pytest.raises(AttributeError, match=r"hmc\.chains and asghmc\.chains"):
        EvalConfig().chains
    with pytest.raises(AttributeError, match=r"evaluate\.target_noise"):
        EvalConfig().vbpc_noise
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        EvalConfig().nonsense


def test_the_diagnostic_points_enter_the_identity_when_they_set_the_budget(tmp_path):
    """Under settle_rhat the diagnostic points decide how long the chains run, so two values are two evaluations;
    an evaluation written before they were recorded (at the default 100) is still found."""
    ws = _workspace(tmp_path)  # the quick preset: HMC with settle_rhat 1.1
    art = ws.eval_dir(ws.config.resolve("random", 10, "hmc"))
    assert art.config["hmc"]["diagnostic_points"] == 100
    before = {**art.config, "hmc": {k: v for k, v in art.config["hmc"].items() if k != "diagnostic_points"}}
    assert art._defines({"kind": "evaluation", "config": before})
    other = _workspace(tmp_path, **{"evaluate.diagnostic_points": 30})
    art30 = other.eval_dir(other.config.resolve("random", 10, "hmc"))
    assert art30.config["hmc"]["diagnostic_points"] == 30 and not art30._defines(
        {"kind": "evaluation", "config": before}
    )
    fixed = _workspace(tmp_path, **{"hmc.settle_rhat": 0})
    assert "diagnostic_points" not in fixed.eval_dir(fixed.config.resolve("random", 10, "hmc")).config["hmc"]


def test_what_reads_test_points_one_by_one_follows_the_test_order(tmp_path):
    """On an image folder (test split reordered when loaded) the reference and the evaluations are other artifacts
    than those made in the files' order; experts and coresets are the same ones."""
    folder = _workspace(tmp_path, **{"data.name": "imagefolder", "data.root": str(tmp_path / "tree")})
    fmnist = _workspace(tmp_path)
    cell = folder.config.resolve("fkl", 10, "hmc")
    assert folder.reference_dir().config["test_order"] == "seeded"
    assert folder.eval_dir(cell).config["test_order"] == "seeded"
    assert "test_order" not in folder.coreset_dir(cell).config and "test_order" not in folder.experts_dir().config
    fixed = folder.config.resolve("fkl", 10, "vbpc")  # no stopping rule: only the order keeps the flat identity out
    flat = folder.earlier_evaluation_identity(fixed)
    assert not any(e.get("evaluate") == flat for e in folder.eval_dir(fixed).earlier)
    f_fixed = fmnist.config.resolve("fkl", 10, "vbpc")
    assert any(
        e.get("evaluate") == fmnist.earlier_evaluation_identity(f_fixed) for e in fmnist.eval_dir(f_fixed).earlier
    )
    f_cell = fmnist.config.resolve("fkl", 10, "hmc")
    assert "test_order" not in fmnist.reference_dir().config and "test_order" not in fmnist.eval_dir(f_cell).config
