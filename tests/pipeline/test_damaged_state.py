"""Damaged or hand-edited resume state (a distillation checkpoint, an expert's partial file, an evaluation's
finished repeats) is refused in one line naming the file, exit 2, the file left as it was; a well-formed one
resumes. Each damaged file starts from a well-formed state and breaks one thing."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers import TINY, bpc


def _run_copy(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    return out


def _checkpoint(out) -> dict:
    """A well-formed fKL checkpoint at iteration 1 of the tiny run (the coreset's own images)."""
    images = load_file(str(out / "coresets/fkl-ipc2/coreset.safetensors"))["images"]
    return {
        "iteration": torch.tensor([1]),
        "images": images.float(),
        "generator": torch.Generator().get_state(),
        "elapsed": torch.tensor([0.5], dtype=torch.float64),
    }


DISTILL_DAMAGE = {
    "iteration past the end": lambda s: s.update(iteration=torch.tensor([999999])),
    "negative iteration": lambda s: s.update(iteration=torch.tensor([-5])),
    "fractional iteration": lambda s: s.update(iteration=torch.tensor([3.5])),
    "images of another shape": lambda s: s.update(images=s["images"][:3]),
    "non-finite images": lambda s: s["images"].view(-1).__setitem__(0, float("nan")),
    "random generator state": lambda s: s.update(generator=torch.randint(0, 255, (17,), dtype=torch.uint8)),
    "optimiser entry of another shape": lambda s: s.update({"optimiser.0.0.exp_avg": torch.zeros(3)}),
    "optimiser entry for no parameter": lambda s: s.update({"optimiser.0.7.exp_avg": torch.zeros(3)}),
    "a second optimiser": lambda s: s.update({"optimiser.4.0.step": torch.tensor(1.0)}),
    "negative elapsed time": lambda s: s.update(elapsed=torch.tensor([-1.0], dtype=torch.float64)),
}


@pytest.mark.parametrize("case", DISTILL_DAMAGE)
def test_damaged_distillation_checkpoint_is_refused(finished_run, tiny_data, tmp_path, case):
    out = _run_copy(finished_run, tmp_path)
    cell = out / "coresets/fkl-ipc2"
    state = _checkpoint(out)
    for name in ("coreset.safetensors", "summary.json", "manifest.json"):
        (cell / name).unlink()
    DISTILL_DAMAGE[case](state)
    save_file(state, str(cell / "checkpoint.safetensors"))
    before = (cell / "checkpoint.safetensors").read_bytes()
    proc = bpc("distill", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--methods", "fkl", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "checkpoint.safetensors does not fit this run" in proc.stderr and "delete it" in proc.stderr
    assert (cell / "checkpoint.safetensors").read_bytes() == before
    assert not (cell / "coreset.safetensors").exists()


def test_well_formed_checkpoint_resumes(finished_run, tiny_data, tmp_path):
    out = _run_copy(finished_run, tmp_path)
    cell = out / "coresets/fkl-ipc2"
    state = _checkpoint(out)
    for name in ("coreset.safetensors", "summary.json", "manifest.json"):
        (cell / name).unlink()
    save_file(state, str(cell / "checkpoint.safetensors"))
    bpc("distill", "--out", str(out), "--data.root", str(tiny_data), *TINY, "--methods", "fkl")
    assert json.loads((cell / "manifest.json").read_text())["resumed_at"] == 1
    assert not (cell / "checkpoint.safetensors").exists()


def _partial(out) -> dict:
    """A well-formed partial state of expert 0 after one epoch (its first two snapshots)."""
    snaps = load_file(str(out / "experts/expert_000.safetensors"))
    trajectory = next(v for v in snaps.values() if v.dim() == 2)
    return {
        "snapshots": trajectory[:2].clone(),
        "velocity": torch.zeros(trajectory.shape[1]),
        "generator_state": torch.Generator().get_state(),
        "losses": torch.tensor([1.0]),
    }


EXPERT_DAMAGE = {
    "snapshots of another width": lambda s: s.update(snapshots=s["snapshots"][:, :-1].clone()),
    "more snapshots than epochs": lambda s: s.update(snapshots=s["snapshots"][[0] * 45].clone()),
    "momentum of another shape": lambda s: s.update(velocity=torch.zeros(5)),
    "random generator state": lambda s: s.update(generator_state=torch.randint(0, 255, (9,), dtype=torch.uint8)),
    "losses that do not match the epochs": lambda s: s.update(losses=torch.tensor([1.0, 2.0, 3.0])),
    "non-finite snapshots": lambda s: s["snapshots"].view(-1).__setitem__(3, float("inf")),
}


@pytest.mark.parametrize("case", EXPERT_DAMAGE)
def test_damaged_expert_partial_file_is_refused(finished_run, tiny_data, tmp_path, case):
    out = _run_copy(finished_run, tmp_path)
    (out / "experts/expert_000.safetensors").unlink()
    (out / "experts/manifest.json").unlink()
    state = _partial(finished_run[0])
    EXPERT_DAMAGE[case](state)
    partial = out / "experts/expert_000.partial.safetensors"
    save_file(state, str(partial))
    before = partial.read_bytes()
    proc = bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *TINY, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "expert_000.partial.safetensors does not fit this run" in proc.stderr and "delete it" in proc.stderr
    assert partial.read_bytes() == before and not (out / "experts/expert_000.safetensors").exists()


def test_well_formed_expert_partial_file_resumes(finished_run, tiny_data, tmp_path):
    out = _run_copy(finished_run, tmp_path)
    (out / "experts/expert_000.safetensors").unlink()
    (out / "experts/manifest.json").unlink()
    save_file(_partial(finished_run[0]), str(out / "experts/expert_000.partial.safetensors"))
    bpc("experts", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert (out / "experts/expert_000.safetensors").exists()
    assert not (out / "experts/expert_000.partial.safetensors").exists()
