"""``--distill.seeds K``: K coresets per cell, each evaluated; a run that grows from one keeps its work."""

import json
import shutil

from helpers import TINY, bpc


def test_several_coresets_per_cell_are_learnt_evaluated_and_compared(finished_run, tiny_data, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    first = out / "evals/fkl-ipc2-hmc/results.json"
    stamp = first.stat().st_mtime_ns
    proc = bpc("run", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--distill.seeds", "2")
    assert first.stat().st_mtime_ns == stamp  # the first coreset of each cell is the one the run had
    for method in ("random", "fkl"):
        again = json.loads((out / f"coresets/{method}-ipc2-seed1/config.json").read_text())["config"]
        assert again["distill"]["seed"] == 1 and "seeds" not in again["distill"]
        results = json.loads((out / f"evals/{method}-ipc2-seed1-hmc/results.json").read_text())
        assert (results["coreset_seed"], results["replicate"]) == (1, 1)
    from safetensors.torch import load_file

    a = load_file(str(out / "coresets/random-ipc2/coreset.safetensors"))["images"]
    b = load_file(str(out / "coresets/random-ipc2-seed1/coreset.safetensors"))["images"]
    assert not (a == b).all()  # another seed, other real images
    report = json.loads((out / "report.json").read_text())
    cells = {(r["method"], r["protocol"]): r for r in report["rows"] if r["ipc"] == 2}
    assert cells[("fkl", "hmc")]["coresets"] == 2 and cells[("fkl", "hmc")]["coreset_seeds"] == [0, 1]
    assert len(report["evaluations"]) == 4
    (diff,) = report["differences"]
    assert (diff["a"], diff["b"], diff["seeds"]) == ("fkl", "random", [0, 1])
    assert diff["accuracy"]["low"] <= diff["accuracy"]["mean"] <= diff["accuracy"]["high"]
    assert "| fashion-mnist | 2 | hmc | fkl − random | 2 |" in proc.stdout


def test_a_coreset_beyond_the_seeds_is_refused(tiny_data, tmp_path):
    import pytest

    import pseudocoresets as bpcs
    from pseudocoresets import UserError

    run = bpcs.Run(bpcs.make_config("quick", overrides={"distill.seeds": 2}), tmp_path / "r", quiet=True)
    with pytest.raises(UserError, match="choose one of 0 to 1"):
        run.distill("random", 1, replicate=2)
    proc = bpc(
        "distill",
        "--out",
        str(tmp_path / "r2"),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--distill.seeds",
        "0",
        check=False,
    )
    assert proc.returncode == 2 and "--distill.seeds must be in 1..1000" in proc.stderr


def test_independent_expert_sets_give_each_coreset_its_own_experts(finished_run, tiny_data, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    args = ("--methods", "fkl", "--distill.seeds", "2", "--distill.expert_sets", "independent")
    bpc("run", "--out", str(out), "--data.root", str(tiny_data), *TINY, *args)
    own = json.loads((out / "experts-set1/config.json").read_text())["config"]["experts"]
    assert own["seed"] == 2  # TINY's 2 experts: set 1 takes seeds 2 and 3
    coreset = json.loads((out / "coresets/fkl-ipc2-seed1/config.json").read_text())["config"]
    assert coreset["experts"]["seed"] == 2 and coreset["distill"]["seed"] == 1
    first = json.loads((out / "coresets/fkl-ipc2/config.json").read_text())["config"]
    assert first["experts"]["seed"] == 0  # the first coreset keeps the run's experts
    proc = bpc("verify", "--out", str(out))
    assert "experts-set1" in proc.stdout and proc.returncode == 0
    # shared (the default) and independent second coresets are different coresets, refused in one place
    proc = bpc(
        "distill",
        "--out",
        str(out),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--methods",
        "fkl",
        "--distill.seeds",
        "2",
        check=False,
    )
    assert proc.returncode == 2 and "different configuration" in proc.stderr
