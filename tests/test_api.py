"""The public Python API: every public name importable from the package root and documented; the quickstart
example runs as written; a Run gives the same artifacts as the command line."""

import ast
import inspect
import math
import sys
from pathlib import Path

import pytest
import torch

import pseudocoresets
from helpers import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_is_importable_and_documented():
    assert len(pseudocoresets.__all__) == len(set(pseudocoresets.__all__))
    for name in pseudocoresets.__all__:
        obj = getattr(pseudocoresets, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
    for name in ("Run", "make_config", "load_coreset", "Coreset", "RunConfig", "OBJECTIVES", "PROTOCOLS"):
        assert name in pseudocoresets.__all__


def test_the_quickstart_uses_only_the_public_api():
    tree = ast.parse((ROOT / "examples" / "quickstart.py").read_text())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "pseudocoresets" in modules
    assert not [m for m in modules if m and m.startswith("pseudocoresets.")]
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "bpc"
    }
    assert used and used <= set(pseudocoresets.__all__)


def test_the_quickstart_runs(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BPC_QUIET", "1")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import quickstart

    accuracy = quickstart.main(
        [
            "--data-root",
            str(tiny_data),
            "--out",
            str(tmp_path / "q"),
            "--train-subset",
            "0",
            "--iterations",
            "2",
            "--width",
            "4",
        ]
    )
    assert set(accuracy) == {"random", "fkl"} and all(0 <= a <= 1 for a in accuracy.values())
    out = capsys.readouterr().out
    assert "fkl: 20 images" in out and "HMC accuracy" in out
    sys.modules.pop("quickstart", None)


def test_a_run_gives_the_command_lines_artifacts(finished_run, tiny_data, tmp_path):
    config = pseudocoresets.make_config("quick", overrides={**tiny_overrides(), "data.root": str(tiny_data)})
    run = pseudocoresets.Run(config, tmp_path / "api", device="cpu", quiet=True)
    run.experts()
    coreset = run.distill("fkl", 2)
    cli = pseudocoresets.load_coreset(finished_run[0] / "coresets" / "fkl-ipc2")
    assert coreset.method == "fkl" and coreset.ipc == 2 and len(coreset) == 20
    assert torch.equal(coreset.images, cli.images) and torch.equal(coreset.labels, cli.labels)
    assert coreset.posterior == cli.posterior
    result = run.evaluate("fkl", 2)
    assert result.path.name == "fkl-ipc2-hmc" and math.isfinite(result.summary["nll"]["mean"])
    cli_results = (finished_run[0] / "evals" / "fkl-ipc2-hmc" / "results.json").read_text()
    import json

    assert json.loads(cli_results)["summary"]["accuracy"] == result.summary["accuracy"]


def test_a_run_refuses_what_the_command_line_refuses(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    run = pseudocoresets.Run(pseudocoresets.make_config("blr"), mine, device="cpu", quiet=True)
    with pytest.raises(pseudocoresets.UserError, match="did not make"):
        run.experts()
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    with pytest.raises(pseudocoresets.UserError, match="unknown option"):
        pseudocoresets.make_config("quick", overrides={"distill.nope": 1})
    with pytest.raises(pseudocoresets.UserError, match="empty"):
        pseudocoresets.Run("quick", "", device="cpu")


def test_the_lock_is_reentrant_and_exclusive(tmp_path):
    from pseudocoresets.pipeline.lock import RunDirectoryLock

    run = pseudocoresets.Run(pseudocoresets.make_config("blr"), tmp_path / "r", device="cpu", quiet=True)
    with run.lock():
        with run.lock():  # the stage methods take it again inside the CLI's hold
            assert (tmp_path / "r" / ".bpc.lock").is_file()
        with pytest.raises(pseudocoresets.UserError, match="in use"):
            with RunDirectoryLock(tmp_path / "r"):
                pass
