"""Checksums of finished artifacts: every stage records the SHA-256 of what it wrote, every read checks it, and
a damaged, replaced or edited file is refused in one line with the command that rebuilds it; ``bpc verify``
checks a whole run directory."""

import json
import shutil

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from helpers import TINY, bpc, reseal
from pseudocoresets import UserError, integrity, load_coreset


@pytest.fixture
def run(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run[0], out)
    return out


def test_every_stage_records_its_files_and_verify_passes(run):
    for stage in ("experts", "coresets/fkl-ipc2", "evals/fkl-ipc2-hmc"):
        files = json.loads((run / stage / "manifest.json").read_text())["files"]
        assert "config.json" in files and "manifest.json" not in files
        for rel, digest in files.items():
            assert integrity.sha256(run / stage / rel) == digest
    assert "coreset.safetensors" in json.loads((run / "coresets/fkl-ipc2/manifest.json").read_text())["files"]
    proc = bpc("verify", "--out", str(run))
    assert proc.returncode == 0 and "evals/fkl-ipc2-hmc: ok (" in proc.stdout


def test_edited_results_are_not_reported(run):
    path = run / "evals/fkl-ipc2-hmc/results.json"
    results = json.loads(path.read_text())
    results["summary"]["accuracy"]["mean"] = 0.99
    path.write_text(json.dumps(results))
    edited = path.read_bytes()
    for command in (("report", "--out", str(run)), ("verify", "--out", str(run))):
        proc = bpc(*command, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "evals/fkl-ipc2-hmc" in proc.stderr
    proc = bpc("report", "--out", str(run), check=False)
    assert "results.json was changed after bpc wrote it" in proc.stderr and "re-run 'bpc evaluate'" in proc.stderr
    assert path.read_bytes() == edited and not (run / "report.md").read_text().count("0.9900")


def test_swapped_coreset_is_refused(run, tiny_data):
    shutil.copy(run / "coresets/random-ipc2/coreset.safetensors", run / "coresets/fkl-ipc2/coreset.safetensors")
    shutil.rmtree(run / "evals")
    proc = bpc("evaluate", "--out", str(run), "--data.root", str(tiny_data), *TINY, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "coreset.safetensors was changed after bpc wrote it" in proc.stderr and "'bpc distill'" in proc.stderr
    with pytest.raises(UserError, match="changed after bpc wrote it"):
        load_coreset(run / "coresets/fkl-ipc2")
    assert not (run / "evals/fkl-ipc2-hmc/results.json").exists()


def test_edited_expert_and_missing_file_are_refused(run, tiny_data):
    path = run / "experts/expert_001.safetensors"
    tensors = load_file(str(path))
    tensors["trajectory"][1, 0] += 1.0
    save_file(tensors, str(path), metadata={"seed": "1"})
    shutil.rmtree(run / "coresets")
    shutil.rmtree(run / "evals")
    proc = bpc("distill", "--out", str(run), "--data.root", str(tiny_data), *TINY, check=False)
    assert (
        proc.returncode == 2 and "expert_001.safetensors was changed" in proc.stderr and "'bpc experts'" in proc.stderr
    )
    path.unlink()
    proc = bpc("verify", "--out", str(run), check=False)
    assert proc.returncode == 2 and "experts: expert_001.safetensors is missing" in proc.stdout


def _strip(manifest_path, *keys) -> None:
    record = json.loads(manifest_path.read_text())
    for key in keys:
        record.pop(key, None)
    manifest_path.write_text(json.dumps(record))


def test_artifacts_from_before_checksums_are_read_as_before_and_reported_unverified(run):
    for manifest in run.glob("**/manifest.json"):  # a run written before checksums: no manifest records them
        _strip(manifest, "files", "format")
    bpc("report", "--out", str(run), "--no-figures")
    proc = bpc("verify", "--out", str(run))
    assert proc.returncode == 0 and "evals/fkl-ipc2-hmc: unverified (no checksums" in proc.stdout
    assert ": ok" not in proc.stdout


def test_a_manifest_that_lost_its_checksums_is_damaged(run, tiny_data):
    """A manifest written with checksums (format 2) without its file list, or one without them in a run whose
    other artifacts record theirs: refused everywhere, never read as an old manifest."""
    path = run / "evals/fkl-ipc2-hmc/results.json"
    results = json.loads(path.read_text())
    results["summary"]["accuracy"]["mean"] = 0.99
    path.write_text(json.dumps(results))
    _strip(run / "evals/fkl-ipc2-hmc/manifest.json", "files")  # the format stays
    for command in (("report", "--out", str(run), "--no-figures"), ("verify", "--out", str(run))):
        proc = bpc(*command, check=False)
        assert proc.returncode == 2 and "lost its checksums" in proc.stdout + proc.stderr
    _strip(run / "evals/fkl-ipc2-hmc/manifest.json", "format")  # now it looks old, but its run is not
    proc = bpc("verify", "--out", str(run), check=False)
    assert proc.returncode == 2 and "though the other artifacts of its run do" in proc.stdout
    _strip(run / "coresets/fkl-ipc2/manifest.json", "files", "format")
    with pytest.raises(UserError, match="though the other artifacts of its run do"):
        load_coreset(run / "coresets/fkl-ipc2")


@pytest.mark.parametrize("weight, temperature", [("-1", "1"), ("1", "0")])
def test_coreset_with_an_impossible_posterior_is_refused(run, weight, temperature):
    file = run / "coresets/fkl-ipc2/coreset.safetensors"
    with safe_open(str(file), framework="pt") as f:
        meta = f.metadata()
    posterior = {**json.loads(meta["posterior"]), "weight": float(weight), "temperature": float(temperature)}
    save_file(load_file(str(file)), str(file), metadata={**meta, "posterior": json.dumps(posterior)})
    reseal(file.parent)
    with pytest.raises(UserError, match="each must be a finite number > 0"):
        load_coreset(file.parent)


def test_unrecorded_names(tmp_path):
    for name in (
        "manifest.json",
        "progress.jsonl",
        "checkpoint.safetensors",
        "expert_000.partial.safetensors",
        ".x.abcd1234.bpc.tmp",
    ):
        (tmp_path / name).write_text("x")
    (tmp_path / "predictive").mkdir()
    (tmp_path / "predictive" / "test.safetensors").write_text("x")
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "it10.safetensors").write_text("x")
    (tmp_path / "results.json").write_text("{}")
    assert set(integrity.digests(tmp_path)) == {"results.json", "snapshots/it10.safetensors"}


def test_an_edited_expert_without_its_manifest_is_trained_again(run, tiny_data):
    """The experts' manifest deleted and an expert file edited: the file is not one the stage recorded as
    finished, so it is trained again, never trusted, and the new manifest records the retrained file."""
    path = run / "experts/expert_001.safetensors"
    original = load_file(str(path))["trajectory"]
    tensors = {"trajectory": original.clone()}
    tensors["trajectory"][1, 0] += 1.0
    save_file(tensors, str(path), metadata={"seed": "1"})
    (run / "experts/manifest.json").unlink()
    shutil.rmtree(run / "coresets")
    shutil.rmtree(run / "evals")
    bpc("experts", "--out", str(run), "--data.root", str(tiny_data), *TINY)
    retrained = load_file(str(path))["trajectory"]
    assert retrained[1, 0] != tensors["trajectory"][1, 0]
    files = json.loads((run / "experts/manifest.json").read_text())["files"]
    assert files["expert_001.safetensors"] == integrity.sha256(path)
    assert not list((run / "experts").glob("*.partial.*"))  # resume state gone once the manifest holds the checksums
