"""Export a learnt coreset in the field's formats and import a distilled set made elsewhere (pipeline/interop.py)."""

import json
import pickle

import pytest
import numpy as np
import torch
from safetensors.torch import load_file

from helpers import TINY, bpc, reseal


def test_export_then_import_gives_the_same_coreset_and_the_same_evaluation(finished_run, tiny_data, tmp_path):
    src, _ = finished_run
    exported = tmp_path / "fkl-export"
    proc = bpc("export", "--out", str(src), "--coreset", "fkl-ipc2", "--to", str(exported))
    assert {"images_best.pt", "labels_best.pt", "coreset.npz", "grid.png"} <= {p.name for p in exported.iterdir()}
    images = torch.load(exported / "images_best.pt", weights_only=True)
    original = load_file(str(src / "coresets/fkl-ipc2/coreset.safetensors"))
    assert torch.equal(images, original["images"]) and "wrote" in proc.stdout
    with np.load(exported / "coreset.npz", allow_pickle=False) as z:
        assert z["pixels"].dtype == np.uint8 and z["pixels"].shape == tuple(original["images"].shape)

    out = tmp_path / "imported-run"
    proc = bpc("import", "--from", str(exported), "--out", str(out), "--data.root", str(tiny_data), *TINY)
    assert "imported ipc 2 hmc: accuracy" in proc.stdout
    mine = load_file(str(out / "coresets/imported-ipc2/coreset.safetensors"))
    assert torch.equal(mine["images"], original["images"]) and torch.equal(mine["labels"], original["labels"])
    # the same coreset under the same evaluation seeds: the same numbers as the fKL coreset's own evaluation
    a = json.loads((src / "evals/fkl-ipc2-hmc/results.json").read_text())["summary"]
    b = json.loads((out / "evals/imported-ipc2-hmc/results.json").read_text())["summary"]
    assert a["accuracy"] == b["accuracy"] and a["nll"] == b["nll"]

    npz_run = tmp_path / "npz-run"
    proc = bpc(
        "import", "--from", str(exported / "coreset.npz"), "--out", str(npz_run), "--data.root", str(tiny_data), *TINY
    )
    assert "imported ipc 2 hmc" in proc.stdout


def test_unsafe_or_mismatched_imports_are_refused_with_one_line(tiny_data, tmp_path):
    pickled = tmp_path / "set.pt"

    pickled.write_bytes(pickle.dumps({"images": np.zeros((2, 1, 28, 28)), "labels": [1]}))  # a plain pickle
    proc = bpc(
        "import",
        "--from",
        str(pickled),
        "--out",
        str(tmp_path / "o"),
        "--data.root",
        str(tiny_data),
        *TINY,
        check=False,
    )
    assert proc.returncode == 2 and "weights_only=True" in proc.stderr and proc.stderr.count("\n") == 1
    three = tmp_path / "three.pt"
    torch.save({"images": torch.zeros(3, 1, 28, 28), "labels": torch.tensor([0, 1, 2])}, three)
    proc = bpc(
        "import", "--from", str(three), "--out", str(tmp_path / "p"), "--data.root", str(tiny_data), *TINY, check=False
    )
    assert proc.returncode == 2 and "not ipc 2" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "p").exists()


def test_learnt_targets_are_loaded_exported_and_imported(finished_run, tiny_data, tmp_path):
    """A coreset with learnt real targets (VBPC's) carries them through load_coreset and bpc export."""

    from safetensors.torch import save_file

    from pseudocoresets import load_coreset

    src, file, tensors, meta, targets = _run_with_targets(finished_run, tmp_path, scale=1.0, noise="0.1")
    core = load_coreset(file.parent)
    assert torch.equal(core.targets, targets) and core.target_noise == 0.1
    bpc("export", "--out", str(src), "--coreset", "fkl-ipc2", "--to", str(tmp_path / "x"))
    assert torch.equal(torch.load(tmp_path / "x" / "targets_best.pt", weights_only=True), targets)
    assert np.array_equal(np.load(tmp_path / "x" / "coreset.npz")["targets"], targets.numpy())
    # and back in: bpc import reads them with the set
    run = tmp_path / "imp"
    bpc(
        "import",
        "--from",
        str(tmp_path / "x"),
        "--out",
        str(run),
        "--data.root",
        str(tiny_data),
        *TINY,
        "--protocols",
        "vbpc",
        "--evaluate.vbpc_steps",
        "3",
    )
    assert torch.equal(load_coreset(run / "coresets/imported-ipc2").targets, targets)
    save_file({**tensors, "targets": targets[:3]}, str(file), metadata=meta)
    reseal(file.parent)
    proc = bpc("export", "--out", str(src), "--coreset", "fkl-ipc2", "--to", str(tmp_path / "y"), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "targets of shape" in proc.stderr
    assert not (tmp_path / "y").exists()


def test_an_npz_that_would_inflate_to_gigabytes_is_refused_unread(tmp_path):
    """1.5 GiB of zero pixels compress to a few MB; the archive's directory says what they would take."""
    import zipfile

    from pseudocoresets import UserError
    from pseudocoresets.pipeline.interop import load_distilled

    path = tmp_path / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, dtype=np.uint8))
    header["shape"] = (3 * 2**29,)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("pixels.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(2**24)
            for _ in range(96):
                f.write(chunk)
        z.writestr("labels.npy", b"")
    assert path.stat().st_size < 2**23
    with pytest.raises(UserError, match="would inflate to 1.5 GiB"):
        load_distilled(path)


def test_hmc_samples_with_learnt_targets_when_asked(finished_run, tiny_data, tmp_path):
    """--evaluate.learnt_targets: HMC on a coreset with learnt targets samples their Gaussian likelihood, in an
    evaluation of its own; a coreset without targets is refused in one line, before anything is written."""

    src = _run_with_targets(finished_run, tmp_path, scale=0.1, noise="1.0")[0]  # near the tiny run's logits
    args = ("evaluate", "--out", str(src), "--data.root", str(tiny_data), *TINY, "--evaluate.learnt_targets")
    bpc(*args, "--methods", "fkl")
    results = json.loads((src / "evals/fkl-ipc2-hmc-eval-targets/results.json").read_text())
    assert np.isfinite(results["summary"]["nll"]["mean"])
    assert (src / "evals/fkl-ipc2-hmc/results.json").exists()  # the labels' evaluation stays as it was
    before = sorted(p.name for p in (src / "evals").iterdir())
    proc = bpc(*args, "--methods", "random", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no learnt targets" in proc.stderr
    assert sorted(p.name for p in (src / "evals").iterdir()) == before


def _run_with_targets(finished_run, tmp_path, scale: float, noise: str):
    """A copy of the finished run whose fkl coreset carries learnt targets (scale x N(0, 1), 10 per point) and their
    noise: (run, coreset file, its original tensors and metadata, the targets)."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    src = tmp_path / "run"
    shutil.copytree(finished_run[0], src)
    file = src / "coresets/fkl-ipc2/coreset.safetensors"
    tensors = load_file(str(file))
    with safe_open(str(file), framework="pt") as f:
        meta = f.metadata()
    targets = scale * torch.randn(len(tensors["labels"]), 10)
    save_file({**tensors, "targets": targets}, str(file), metadata={**meta, "target_noise": noise})
    reseal(file.parent)
    return src, file, tensors, meta, targets
