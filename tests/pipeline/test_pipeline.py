"""A tiny end-to-end run through the ``bpc`` command: artifacts, resume, refusals, clear errors."""

import json

import numpy as np
import pytest

from helpers import TINY, bpc, reseal


def test_run_writes_self_describing_artifacts(finished_run):
    out, proc = finished_run
    assert "| fashion-mnist | 2 | fkl | hmc |" in proc.stdout
    assert "| fashion-mnist | 2 | random | hmc |" in proc.stdout
    for d in ["experts", "coresets/fkl-ipc2", "coresets/random-ipc2", "evals/fkl-ipc2-hmc"]:
        manifest = json.loads((out / d / "manifest.json").read_text())
        assert manifest["status"] == "complete" and "torch" in manifest["versions"]
        assert json.loads((out / d / "config.json").read_text())["config"]["model"]["width"] == 4
    results = json.loads((out / "evals/fkl-ipc2-hmc/results.json").read_text())
    assert len(results["repeats"]) == 2
    for key in ("accuracy", "nll", "ece", "brier", "acceptance_rate"):
        assert np.isfinite(results["summary"][key]["mean"])
    assert (out / "report.md").exists() and json.loads((out / "report.json").read_text())["rows"]
    from safetensors.torch import load_file

    core = load_file(str(out / "coresets/fkl-ipc2/coreset.safetensors"))
    assert core["images"].shape == (20, 1, 28, 28) and sorted(core["labels"].tolist()) == sorted(list(range(10)) * 2)
    assert not np.allclose(core["images"].numpy(), core["init_images"].numpy())  # fKL moved the pixels
    rand = load_file(str(out / "coresets/random-ipc2/coreset.safetensors"))
    assert np.array_equal(rand["images"].numpy(), rand["init_images"].numpy())
    traj = load_file(str(out / "experts/expert_000.safetensors"))["trajectory"]
    assert traj.shape[0] == 4 and all(not np.array_equal(traj[i].numpy(), traj[i + 1].numpy()) for i in range(3))


def test_rerun_skips_finished_work(finished_run, tiny_data):
    out, _ = finished_run
    files = [
        out / "experts/expert_001.safetensors",
        out / "coresets/fkl-ipc2/coreset.safetensors",
        out / "evals/fkl-ipc2-hmc/results.json",
    ]
    before = [f.stat().st_mtime_ns for f in files]
    proc = bpc("run", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert [f.stat().st_mtime_ns for f in files] == before
    assert "| fashion-mnist | 2 | fkl | hmc |" in proc.stdout


def test_options_added_later_keep_old_run_directories_valid(finished_run, tiny_data):
    """A run directory written before ``--data.train_subset`` existed has no such key in its config.json; at its
    default (0) the option is not part of the identity, so the directory is reused, and set it is refused."""
    out, _ = finished_run
    cfg = out / "experts/config.json"
    saved = json.loads(cfg.read_text())
    assert "train_subset" not in saved["config"]["data"]
    proc = bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--data.train_subset", "0")
    assert proc.returncode == 0
    proc = bpc(
        "experts", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--data.train_subset", "200", check=False
    )
    assert proc.returncode == 2 and "different configuration" in proc.stderr
    assert "(differs in data.train_subset)" in proc.stderr  # the line names what differs


def test_an_objective_version_bump_refuses_its_older_coresets(finished_run, tiny_data, monkeypatch, capsys):
    """A fix that changes what an objective computes raises its module's VERSION (rkl.py is at 2): coresets learnt
    before are then a different configuration, refused with one line instead of silently reused."""
    from pseudocoresets import cli
    from pseudocoresets.objectives import fkl

    out, _ = finished_run
    monkeypatch.setenv("BPC_QUIET", "1")
    monkeypatch.setattr(fkl, "VERSION", 2, raising=False)
    assert cli.main(["distill", "--out", str(out), "--data.root", str(tiny_data), *TINY]) == 2
    assert "different configuration" in capsys.readouterr().err
    monkeypatch.setattr(fkl, "VERSION", 1, raising=False)
    assert cli.main(["distill", "--out", str(out), "--data.root", str(tiny_data), *TINY]) == 0


def test_other_config_in_same_dir_is_refused(finished_run, tiny_data):
    out, _ = finished_run
    args = [a if a != "4" else "8" for a in TINY]  # width 8 instead of 4
    proc = bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *args, check=False)
    assert proc.returncode == 2
    assert "different configuration" in proc.stderr and proc.stderr.count("\n") == 1


def test_corrupt_coreset_is_reported(finished_run, tiny_data, tmp_path):
    out, _ = finished_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "coresets/fkl-ipc2/coreset.safetensors").write_bytes(b"garbage")
    shutil.rmtree(copy / "evals")
    proc = bpc("evaluate", "--out", str(copy), "--data.root", str(tiny_data), *TINY, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "coreset.safetensors was changed after bpc wrote it" in proc.stderr and "re-run 'bpc distill'" in proc.stderr
    reseal(copy / "coresets/fkl-ipc2")  # behind the checksum, the file's own check
    proc = bpc("evaluate", "--out", str(copy), "--data.root", str(tiny_data), *TINY, check=False)
    assert proc.returncode == 2 and "not a valid safetensors file" in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--distill.ipc", "x"], "expects a int"),
        (["--methods", "nope"], "unknown method"),
        (["--evaluate.burn_in", "10", "--evaluate.iterations", "5"], "burn_in"),
        (["--distill.max_start_epoch", "9"], "exceeds the experts"),
        (["--posterior.weight", "abc"], "number or n/m"),
        (["--posterior.temperature", "0"], "must be > 0"),
        (["--methods", "rkl", "--rkl.samples", "exact"], "gaussian or chains"),
        (["--methods", "fkl_mcmc", "--fkl_mcmc.chain_thin", "5", "--fkl_mcmc.chain_steps", "2"], "chain_thin"),
        (["--methods", "fkl_mcmc", "--fkl_mcmc.learn_weights", "--fkl_mcmc.lr_weights", "0"], "lr_weights"),
    ],
)
def test_impossible_options_give_one_clear_line(tiny_data, tmp_path, args, needle):
    proc = bpc("run", "--out", str(tmp_path / "o"), "--data.root", str(tiny_data), *TINY, *args, check=False)
    assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.count("\n") == 1


def test_coreset_posterior_is_recorded_and_used_by_its_evaluation(tiny_data, tmp_path):
    out = tmp_path / "w"
    bpc(
        "run",
        "--out",
        str(out),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--methods",
        "random",
        "--posterior.weight",
        "n/m",
        "--posterior.prior_std",
        "0.5",
    )
    # a non-default coreset posterior is named in the directories (-wnm: w = N/M; prior 0.5)
    summary = json.loads((out / "coresets/random-ipc2-wnm-prior0.5/summary.json").read_text())
    assert summary["posterior"] == {"weight": 300 / 20, "temperature": 1.0, "prior_std": 0.5}  # N = 300, M = 20
    results = json.loads((out / "evals/random-ipc2-hmc-wnm-prior0.5/results.json").read_text())
    assert results["posterior"] == summary["posterior"]
    # an evaluation option replaces the recorded value (here in a fresh run directory)
    other = tmp_path / "w2"
    bpc(
        "run",
        "--out",
        str(other),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--methods",
        "random",
        "--posterior.weight",
        "n/m",
        "--evaluate.coreset_weight",
        "2",
    )
    path = other / "evals/random-ipc2-hmc-wnm-eval-w2/results.json"
    assert json.loads(path.read_text())["posterior"]["weight"] == 2.0


def test_learnt_point_weights_reach_the_artifact_and_the_evaluation(tiny_data, tmp_path):
    out = tmp_path / "lw"
    bpc(
        "run",
        "--out",
        str(out),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--methods",
        "fkl_mcmc",
        "--fkl_mcmc.learn_weights",
        "--fkl_mcmc.chain_burn_in",
        "2",
    )
    summary = json.loads((out / "coresets/fkl_mcmc-ipc2/summary.json").read_text())
    weights = summary["posterior"]["point_weights"]
    assert len(weights) == 20 and min(weights) > 0 and max(weights) != min(weights)  # learnt, one per point
    results = json.loads((out / "evals/fkl_mcmc-ipc2-hmc/results.json").read_text())
    assert results["posterior"] == summary["posterior"]
    saved = json.loads((out / "coresets/fkl_mcmc-ipc2/config.json").read_text())["config"]
    assert saved["objective"]["learn_weights"] is True


def test_objective_sections_come_from_yaml(tiny_data, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("wasserstein: {checkpoint_every: 1, lr_lr: 0.001}\nmethods: [wasserstein]\n")
    out = tmp_path / "y"
    bpc("run", "--config", str(cfg), "--out", str(out), "--data.root", str(tiny_data), *TINY)
    saved = json.loads((out / "coresets/wasserstein-ipc2/config.json").read_text())["config"]
    assert saved["objective"] == {"checkpoint_every": 1, "lr_lr": 0.001}


def test_missing_dataset_message(tmp_path):
    proc = bpc("experts", "--out", str(tmp_path / "o"), "--data.root", str(tmp_path / "none"), check=False)
    assert proc.returncode == 2 and "apt-get install dataset-fashion-mnist" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_help_explains_every_option():
    out = bpc("run", "--help").stdout
    assert "--fkl.noise_u" in out and "Sigma_u" in out and "--evaluate.temperature" in out


def test_augmented_zca_asghmc_and_corruptions(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = bpc(
        "run",
        "--out",
        str(out),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--methods",
        "random,fkl+aug",
        "--protocols",
        "hmc,asghmc",
        "--data.zca",
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--evaluate.corruptions",
        "gaussian_noise,fog",
        "--evaluate.severities",
        "1,5",
    )
    assert "| fashion-mnist | 2 | fkl+aug | asghmc |" in proc.stdout
    res = json.loads((out / "evals/fkl+aug-ipc2-asghmc/results.json").read_text())
    assert set(res["sets"]) == {"gaussian_noise/1", "gaussian_noise/5", "fog/1", "fog/5"}
    assert set(res["severity_mean"]) == {"1", "5"} and np.isfinite(res["corrupted_mean"]["nll"]["mean"])
    cfg = json.loads((out / "coresets/fkl+aug-ipc2/config.json").read_text())["config"]
    assert cfg["distill"]["augment"] is True and cfg["distill"]["method"] == "fkl"
    from safetensors.torch import load_file

    core = load_file(str(out / "coresets/random-ipc2/coreset.safetensors"))
    assert "zca_eigenvectors" in core  # saved so pictures can invert the whitening
    assert len(list((tmp_path / "cache" / "corruptions").glob("*.safetensors"))) == 4


def test_corrupted_sets_on_a_subset_of_the_test_split(finished_run, tiny_data, tmp_path, monkeypatch):
    """--evaluate.corruption_subset N corrupts and scores only the first N test images, each scored against
    its own label; the clean test set stays whole."""
    import shutil

    from safetensors.torch import load_file

    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    shutil.rmtree(out / "evals/random-ipc2-hmc")  # evaluated without corrupted sets
    cache = tmp_path / "cache"
    monkeypatch.setenv("BPC_CACHE", str(cache))  # the corrupted sets' cache (--data.cache_dir would be a new run)
    args = ("--out", str(out), "--data.root", str(tiny_data), *TINY)
    extra = ("--evaluate.corruptions", "fog", "--evaluate.severities", "2", "--evaluate.corruption_subset", "7")
    bpc("evaluate", *args, *extra, "--methods", "random")
    res = json.loads((out / "evals/random-ipc2-hmc/results.json").read_text())
    assert set(res["sets"]) == {"fog/2"} and np.isfinite(res["corrupted_mean"]["nll"]["mean"])
    (cached,) = cache.glob("corruptions/*.safetensors")
    assert load_file(str(cached))["images"].shape[0] == 7
    whole = json.loads((finished_run[0] / "evals/random-ipc2-hmc/results.json").read_text())
    assert res["summary"]["accuracy"] == whole["summary"]["accuracy"]  # the clean set is unchanged
    proc = bpc("evaluate", *args, "--evaluate.corruption_subset", "-1", check=False)
    assert proc.returncode == 2 and "--evaluate.corruption_subset must be >= 0" in proc.stderr


def test_table_resumes_without_recomputing_and_report_renders(finished_run, tiny_data):
    out, _ = finished_run
    results = out / "evals/fkl-ipc2-hmc/results.json"
    before = results.stat().st_mtime_ns
    bpc("table", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert results.stat().st_mtime_ns == before  # finished cells are reused
    table = (out / "table.md").read_text()
    assert "| 2 | random |" in table and "| 2 | fkl |" in table and "hmc Acc" in table
    assert (out / "table.csv").read_text().count("\n") == 3  # header + 2 rows
    bpc("report", "--out", str(out))
    page = (out / "report.html").read_text()
    assert "<table>" in page and "<svg" in page and "fig1_fkl-ipc2" in page
    for name in ("fig1_fkl-ipc2.png", "fig1_random-ipc2.svg", "fig2_fourier_ipc2.png"):
        assert (out / "figures" / name).stat().st_size > 1000


def test_interrupted_table_resumes(tiny_data, tmp_path, finished_run):
    """A table whose evaluation of one cell was lost is completed by re-running only that cell."""
    import shutil

    src, _ = finished_run
    out = tmp_path / "t"
    shutil.copytree(src, out)
    shutil.rmtree(out / "evals/random-ipc2-hmc")
    kept = (out / "evals/fkl-ipc2-hmc/results.json").stat().st_mtime_ns
    bpc("table", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert (out / "evals/random-ipc2-hmc/results.json").exists()
    assert (out / "evals/fkl-ipc2-hmc/results.json").stat().st_mtime_ns == kept


@pytest.mark.parametrize("content", [b"garbage, not safetensors", "incomplete"])
def test_bad_distill_checkpoint_is_one_line_and_its_advice_works(finished_run, tiny_data, tmp_path, content):
    """A garbled or incomplete checkpoint.safetensors stops `bpc distill` with one line; following the advice
    (delete it) rebuilds the coreset, identical to the uninterrupted run's."""
    import shutil

    from safetensors.numpy import save_file
    from safetensors.torch import load_file

    src, _ = finished_run
    out = tmp_path / "ck"
    shutil.copytree(src / "experts", out / "experts")
    shutil.copy(src / ".bpc.lock", out / ".bpc.lock")  # a run directory: bpc made it
    checkpoint = out / "coresets/fkl-ipc2/checkpoint.safetensors"
    checkpoint.parent.mkdir(parents=True)
    if content == "incomplete":
        save_file({"images": np.zeros((20, 1, 28, 28), np.float32)}, str(checkpoint))
    else:
        checkpoint.write_bytes(content)
    args = ("distill", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--methods", "fkl")
    proc = bpc(*args, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "checkpoint.safetensors" in proc.stderr and "delete it" in proc.stderr
    checkpoint.unlink()
    bpc(*args)
    new = load_file(str(out / "coresets/fkl-ipc2/coreset.safetensors"))["images"]
    old = load_file(str(src / "coresets/fkl-ipc2/coreset.safetensors"))["images"]
    assert np.array_equal(new.numpy(), old.numpy())
    assert not checkpoint.exists() and (out / "coresets/fkl-ipc2/progress.jsonl").read_text().count("\n") == 3


def test_a_terminal_that_cannot_print_the_table_gets_escapes(finished_run):
    """PYTHONIOENCODING=ascii: the report still prints (± as \\xb1), exit 0, no UnicodeEncodeError."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "bpc"
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "BPC_QUIET": "1"}
    proc = subprocess.run(
        [str(exe), "report", "--out", str(finished_run[0]), "--no-figures"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "\\xb1" in proc.stdout and "| fkl | hmc |" in proc.stdout


def test_the_reference_identity_follows_its_resolved_chain_starts(finished_run, tiny_data, tmp_path):
    """Where the reference chains start follows from the configuration alone (--reference.start), never from
    whether experts happen to be on disk: an empty run directory and a finished one give the same identity, and
    so do runs with other methods; random starts are another artifact."""
    import shutil

    import pseudocoresets

    from helpers import tiny_overrides

    def reference(out, **more):
        overrides = {**tiny_overrides(), "data.root": str(tiny_data), **more}
        run = pseudocoresets.Run(
            pseudocoresets.make_config("quick", overrides=overrides), out, device="cpu", quiet=True
        )
        return run.workspace.reference_dir().config

    with_experts = tmp_path / "b"
    shutil.copytree(finished_run[0], with_experts)
    assert reference(tmp_path / "a") == reference(with_experts) == reference(tmp_path / "a", methods="random")
    assert "chain_starts" not in reference(tmp_path / "a")  # the experts' snapshots: the identity it always had
    assert reference(with_experts, **{"reference.start": "random"})["chain_starts"] == "random"
    with pytest.raises(pseudocoresets.UserError, match="reference.start"):
        reference(tmp_path / "a", **{"reference.start": "elsewhere"})
