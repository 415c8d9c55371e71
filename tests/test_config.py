"""Presets (config.py): each one is a complete, valid run for every registered objective, and the demo preset is
the quick one made smaller (so `make demo` stays inside its time budget: README, "Quick start")."""

import pytest

from pseudocoresets.config import PRESETS, apply_overrides, preset, validate_run
from pseudocoresets.errors import UserError
from pseudocoresets.objectives import OBJECTIVES


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_validates_with_every_objective(name):
    config = preset(name)
    if config.data.name == "cifar10":
        config.data.root = "/users/own/cifar-10-batches-py"  # the one thing a user must add (checked when loading)
    methods = ["random", *OBJECTIVES]
    if not config.data.is_image:
        methods.remove("dc")  # image-only (refused with one line on tabular data)
    validate_run(apply_overrides(config, {"methods": methods}))
    assert config.preset == name


def test_demo_is_the_quick_model_with_smaller_budgets():
    quick, demo = preset("quick"), preset("demo")
    assert demo.model == quick.model and demo.experts == quick.experts
    assert 0 < demo.data.train_subset < 60000 and quick.data.train_subset == 0
    assert demo.distill.iterations * demo.distill.student_steps < quick.distill.iterations * quick.distill.student_steps
    assert demo.cell("fkl", 10)[1].num_samples < quick.cell("fkl", 10)[1].num_samples
    budget = lambda c: c.evaluation.own.chains * c.evaluation.own.iterations * c.evaluation.common.repeats  # noqa: E731
    for protocol in ("hmc", "asghmc"):  # chain iterations of one evaluation
        assert budget(demo.resolve("fkl", 10, protocol)) < budget(quick.resolve("fkl", 10, protocol))


@pytest.mark.parametrize("codec", ["utf-16", "utf-32", "utf-8-sig"])
def test_config_files_in_unicode_encodings_with_a_byte_order_mark(tmp_path, codec):
    from pseudocoresets.config import load_config_file

    path = tmp_path / "c.yaml"
    path.write_bytes("distill:\n  iterations: 3  # é\n".encode(codec))
    assert load_config_file(str(path)) == {"distill.iterations": 3}


def test_one_spelling_per_data_root():
    from pseudocoresets import make_config

    spellings = ("data/fm", "./data/fm", "data//fm/", "data/x/../fm")
    import os

    roots = {make_config("quick", overrides={"data.root": r}).data.root for r in spellings}
    assert roots == {os.path.join(os.getcwd(), "data", "fm")}


def test_zca_on_table_rows_is_refused():
    with pytest.raises(UserError, match="data.zca"):
        validate_run(apply_overrides(preset("blr"), {"data.zca": True}))


def test_a_relative_data_root_names_the_data_of_its_working_directory(tmp_path, monkeypatch):
    """data/fm typed in two working directories is two datasets: the root is made absolute, so the artifacts of
    one are never reused for the other."""
    roots = []
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        config = apply_overrides(preset("quick"), {"data.root": "data/fm/"})
        validate_run(config)
        roots.append(config.data.root)
    assert roots == [str(tmp_path / "a" / "data" / "fm"), str(tmp_path / "b" / "data" / "fm")]
