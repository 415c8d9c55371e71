"""Runs that survive: SIGKILL at any point resumes to bit-identical artifacts, one process per run
directory, orphan temporary files cleaned, corrected re-runs after a failed stage, OS errors as one line."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pseudocoresets.errors import INTERRUPTED
from pseudocoresets.experts import ExpertConfig, sgd_trajectory
from pseudocoresets.models import FlatModel, ModelConfig, build_convnet
from pseudocoresets.pipeline.lock import RunDirectoryLock
from helpers import TINY, bpc

LONGER = [a for a in TINY] + [
    "--experts.epochs",
    "8",
    "--distill.iterations",
    "40",
    "--distill.checkpoint_every",
    "4",
    "--distill.max_start_epoch",
    "4",
    "--methods",
    "fkl",
]


def test_expert_resumes_bit_for_bit_from_any_epoch():
    torch.manual_seed(0)
    x, y = torch.randn(96, 1, 8, 8), torch.arange(96) % 3
    model = FlatModel(build_convnet(ModelConfig(width=4, depth=1), 1, 8, 3))
    cfg = ExpertConfig(epochs=4, batch_size=32, lr=0.05, momentum=0.9)
    states = []
    full = sgd_trajectory(model, model.init(0), x, y, cfg, 0, on_checkpoint=lambda s: states.append(s))
    assert len(states) == 3  # after epochs 1, 2, 3 (the finished trajectory is the last state)
    for state in states:
        resumed = sgd_trajectory(model, model.init(0), x, y, cfg, 0, resume=state)
        assert torch.equal(resumed, full)
    # without the momentum buffer the resume is not the same trajectory: the state is what makes it exact
    broken = dict(states[1], velocity=torch.zeros_like(states[1]["velocity"]))
    assert not torch.equal(sgd_trajectory(model, model.init(0), x, y, cfg, 0, resume=broken), full)


def _start(out: Path, data: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "bpc"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pseudocoresets.cli"]
    return subprocess.Popen(
        cmd + ["run", "--out", str(out), "--data.root", str(data), *LONGER],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "BPC_QUIET": "1"},
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; False if it finished first."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def artifacts(out: Path) -> dict:
    """Every tensor (as bytes) and metadata of every tensor file, and the results without timings: what a resume
    must reproduce. (Not the files' bytes: safetensors writes its metadata map in no fixed order.)"""
    from safetensors import safe_open

    files = {}
    for p in sorted(out.rglob("*.safetensors")):
        with safe_open(str(p), framework="pt") as f:
            files[str(p.relative_to(out))] = (f.metadata(), {k: f.get_tensor(k).numpy().tobytes() for k in f.keys()})
    for p in sorted(out.rglob("results.json")):
        r = json.loads(p.read_text())
        files[str(p.relative_to(out))] = json.dumps(r["summary"], sort_keys=True)
    return files


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    bpc("run", "--out", str(out), "--data.root", str(tiny_data), *LONGER)
    return out, artifacts(out)


def progress_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("point", ["expert epoch", "distill checkpoint", "evaluation"])
def test_sigkill_mid_stage_resumes_to_identical_artifacts(tiny_data, tmp_path, uninterrupted, point):
    out = tmp_path / "run"
    ready = {
        "expert epoch": lambda: any(out.glob("experts/*.partial.safetensors")),
        "distill checkpoint": lambda: (out / "coresets/fkl-ipc2/checkpoint.safetensors").exists(),
        "evaluation": lambda: (out / "evals/fkl-ipc2-hmc/repeats.partial.json").exists(),
    }[point]
    killed = _kill_when(_start(out, tiny_data), ready)
    assert killed, f"the run finished before reaching the {point}"
    bpc("run", "--out", str(out), "--data.root", str(tiny_data), *LONGER)
    assert artifacts(out) == uninterrupted[1]
    # the metric logs hold each epoch and iteration once, as an uninterrupted run's
    experts = progress_rows(out / "experts/progress.jsonl")
    assert sorted((r["expert"], r["epoch"]) for r in experts) == [(e, k) for e in range(2) for k in range(1, 9)]
    iterations = [r["iteration"] for r in progress_rows(out / "coresets/fkl-ipc2/progress.jsonl")]
    assert iterations == list(range(40))
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.partial.*"))


def test_second_process_on_the_same_out_is_refused_with_one_line(tiny_data, tmp_path):
    out = tmp_path / "locked"
    with RunDirectoryLock(out):
        proc = bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *TINY, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "in use by another bpc process" in proc.stderr and f"pid {os.getpid()}" in proc.stderr


def test_orphan_temp_files_are_removed_and_a_failed_start_leaves_no_directory(tiny_data, tmp_path):
    out = tmp_path / "o"
    orphan = out / "experts" / ".expert_000.safetensors.x1y2z3w4.bpc.tmp"
    orphan.parent.mkdir(parents=True)
    (out / ".bpc.lock").write_text("")  # a run directory that a killed bpc left
    orphan.write_bytes(b"half a file")
    bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert not orphan.exists() and (out / "experts/manifest.json").exists()
    missing = tmp_path / "never"
    proc = bpc("experts", "--out", str(missing), "--data.root", str(tmp_path / "nodata"), *TINY, check=False)
    assert proc.returncode == 2 and not missing.exists()


def test_failed_stage_can_be_rerun_with_the_corrected_option(tiny_data, tmp_path):
    out = tmp_path / "c"
    args = ["experts", "--out", str(out), "--data.root", str(tiny_data), *TINY]
    proc = bpc(*args, "--experts.lr", "1e9", check=False)
    assert proc.returncode == 2 and "diverged" in proc.stderr and "lower --experts.lr" in proc.stderr
    bpc(*args, "--experts.lr", "0.05")  # the advice, followed
    assert json.loads((out / "experts/config.json").read_text())["config"]["experts"]["lr"] == 0.05


def test_a_missing_promised_file_is_rebuilt_not_taken_as_complete(tiny_data, tmp_path):
    out = tmp_path / "m"
    args = ["distill", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--methods", "random"]
    bpc(*args)
    coreset = out / "coresets/random-ipc2/coreset.safetensors"
    before = artifacts(out)
    coreset.unlink()  # what "delete it and re-run the stage" asks for
    bpc(*args)
    assert coreset.exists() and artifacts(out) == before


@pytest.mark.parametrize("kind", ["regular file", "below a regular file", "/dev/null"])
def test_unusable_out_is_one_line(tiny_data, tmp_path, kind):
    plain = tmp_path / "plain"
    plain.write_text("not a directory")
    out = {"regular file": plain, "below a regular file": plain / "run", "/dev/null": Path("/dev/null")}[kind]
    proc = bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *TINY, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert plain.read_text() == "not a directory"


def test_evaluation_resumes_from_its_finished_repeats():
    from pseudocoresets.evaluation import EvalSettings, evaluate_coreset

    torch.manual_seed(0)
    model = FlatModel(build_convnet(ModelConfig(width=4, depth=1), 1, 8, 3))
    x, y = torch.randn(9, 1, 8, 8), torch.arange(9) % 3
    test = {"test": torch.randn(30, 1, 8, 8)}
    cfg = EvalSettings.build("hmc", chains=2, iterations=6, burn_in=2, thin=2, repeats=3)
    saved = []
    full = evaluate_coreset(
        model,
        x,
        y,
        test,
        torch.arange(30) % 3,
        cfg,
        quiet=True,
        on_repeat=lambda records: saved.append(json.loads(json.dumps(records))),
    )
    assert [len(s) for s in saved] == [1, 2, 3]
    calls = []
    resumed = evaluate_coreset(
        model,
        x,
        y,
        test,
        torch.arange(30) % 3,
        cfg,
        quiet=True,
        finished=saved[0],
        on_repeat=lambda records: calls.append(len(records)),
    )
    assert calls == [2, 3]  # only the missing repeats ran
    assert resumed["summary"] == full["summary"]
    # a record kept from another seed would change the result: the records are what is summarised
    wrong = json.loads(json.dumps(saved[0]))
    wrong[0]["sets"]["test"]["accuracy"] += 0.5
    assert (
        evaluate_coreset(model, x, y, test, torch.arange(30) % 3, cfg, quiet=True, finished=wrong)["summary"]
        != full["summary"]
    )


def test_report_draws_the_training_curves(uninterrupted):
    out = uninterrupted[0]
    proc = bpc("report", "--out", str(out))
    assert proc.returncode == 0
    assert (out / "figures/curves.svg").stat().st_size > 1000
    assert "curves" in (out / "report.html").read_text()


def test_snapshots_with_a_quick_score_leave_the_coreset_unchanged(tiny_data, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from pseudocoresets import cli  # in process: the three stages need no three interpreter starts

    monkeypatch.setenv("BPC_QUIET", "1")
    args = ["--data.root", str(tiny_data), *TINY, "--methods", "fkl"]
    assert cli.main(["experts", "--out", str(tmp_path / "a"), *args]) == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert cli.main(["distill", "--out", str(tmp_path / "a"), *args]) == 0
    assert cli.main(["distill", "--out", str(tmp_path / "b"), *args, "--distill.snapshot_every", "1"]) == 0
    a = load_file(str(tmp_path / "a/coresets/fkl-ipc2/coreset.safetensors"))["images"]
    b = load_file(str(tmp_path / "b/coresets/fkl-ipc2/coreset.safetensors"))["images"]
    assert torch.equal(a, b)
    snaps = sorted((tmp_path / "b/coresets/fkl-ipc2/snapshots").glob("*.safetensors"))
    assert [p.name for p in snaps] == [f"iter_{k:06d}.safetensors" for k in (1, 2, 3)]
    assert torch.equal(load_file(str(snaps[-1]))["images"], b)
    scores = [
        r["snapshot_accuracy"]
        for r in progress_rows(tmp_path / "b/coresets/fkl-ipc2/progress.jsonl")
        if "snapshot_accuracy" in r
    ]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("point", ["expert epoch", "evaluation"])
def test_sigterm_mid_stage_is_one_line_and_resumes(tiny_data, tmp_path, uninterrupted, point):
    """SIGTERM (as a scheduler or torchrun sends it) in the experts or the evaluation: one line, exit 130, and a
    re-run resumes to the uninterrupted run's artifacts."""
    out = tmp_path / "run"
    ready = {
        "expert epoch": lambda: any(out.glob("experts/*.partial.safetensors")),
        "evaluation": lambda: (out / "evals/fkl-ipc2-hmc/repeats.partial.json").exists(),
    }[point]
    proc = _start(out, tiny_data)
    end = time.time() + 120
    while time.time() < end and proc.poll() is None and not ready():
        time.sleep(0.005)
    assert proc.poll() is None, f"the run finished before reaching the {point}"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.decode().strip() == INTERRUPTED, err
    bpc("run", "--out", str(out), "--data.root", str(tiny_data), *LONGER)
    assert artifacts(out) == uninterrupted[1]
