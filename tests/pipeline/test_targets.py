"""Learnt targets, imported images and VBPC's numerical options are refused in one line where they enter a run.

One targets check (pipeline/coreset.check_targets) guards import, load, export and the evaluation: [M, K] real
numbers with K the data's classes, finite, at most TARGETS_MAX. Imported images are uint8 pixels or real floats.
VBPC's noises, step sizes and pool have ranges, and a singular last-layer solve is one line naming the options.
"""

import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import pseudocoresets
from pseudocoresets import UserError
from pseudocoresets.pipeline.coreset import load_coreset
from pseudocoresets.pipeline.interop import export_coreset, load_distilled, load_distilled_targets

from helpers import TINY, bpc, reseal, tiny_overrides

M, K = 20, 10  # the finished tiny run's fkl coreset: ipc 2 of Fashion-MNIST's 10 classes

BAD_TARGETS = {
    "too few classes": (torch.zeros(M, 7), "7 columns for data of 10 classes"),
    "too many classes": (torch.zeros(M, 11), "11 columns for data of 10 classes"),
    "zero classes": (torch.zeros(M, 0), r"shape \(20, 0\), without a column per class"),
    "3e38": (torch.full((M, K), 3e38), "targets as large as 3e\\+38"),
    "2e6 (above 1e6)": (torch.full((M, K), 2e6), "targets as large as 2e\\+06"),
    "integers": (torch.zeros(M, K, dtype=torch.int64), "not real numbers"),
}


def _with_targets(finished_run, tmp_path, targets):
    """A copy of the finished run whose fkl coreset carries ``targets``: (run, coreset directory)."""
    src = tmp_path / "run"
    shutil.copytree(finished_run[0], src)
    file = src / "coresets/fkl-ipc2/coreset.safetensors"
    tensors = load_file(str(file))
    with safe_open(str(file), framework="pt") as f:
        meta = f.metadata()
    save_file({**tensors, "targets": targets}, str(file), metadata={**meta, "target_noise": "0.1"})
    reseal(file.parent)
    return src, file.parent


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_load_refuses_targets_that_do_not_fit_the_data(finished_run, tmp_path, case):
    targets, match = BAD_TARGETS[case]
    directory = _with_targets(finished_run, tmp_path, targets)[1]
    with pytest.raises(UserError, match=match):
        load_coreset(directory)


def test_export_refuses_huge_targets_and_writes_nothing(finished_run, tmp_path):
    directory = _with_targets(finished_run, tmp_path, torch.full((M, K), 3e38))[1]
    with pytest.raises(UserError, match="targets as large as"):
        export_coreset(directory, tmp_path / "exported")
    assert not (tmp_path / "exported").exists()


def test_the_evaluation_refuses_targets_of_another_number_of_classes(finished_run, tiny_data, tmp_path):
    src = _with_targets(finished_run, tmp_path, torch.zeros(M, 7))[0]
    config = pseudocoresets.make_config("quick", overrides={**tiny_overrides(), "data.root": str(tiny_data)})
    run = pseudocoresets.Run(config, src, device="cpu", quiet=True)
    with pytest.raises(UserError, match="7 columns for data of 10 classes"):
        run.evaluate("fkl", 2, protocol="vbpc")


def _npz(path, targets=None, **arrays):
    """An importable .npz of M uint8 pixels, labels 0..9 and ``targets``; ``arrays`` replace or add members (None
    drops one)."""
    members = {"pixels": np.zeros((M, 1, 28, 28), np.uint8), "labels": np.arange(M) % K, "targets": targets}
    members.update(arrays)
    np.savez(path, **{name: value for name, value in members.items() if value is not None})
    return path


@pytest.mark.parametrize(
    "targets, match",
    [
        (np.zeros((M, 5), np.float32), "5 columns for labels up to 9"),
        (np.zeros((M, 0), np.float32), "without a column per class"),
        (np.full((M, K), 1e300), "targets as large as 1e\\+300"),
        (np.full((M, K), 3e38, np.float32), "targets as large as 3e\\+38"),
        (np.array([[{"a": 1}] * K] * M, dtype=object), "not a readable .npz without pickled objects"),
    ],
    ids=["fewer columns than labels", "zero classes", "1e300", "3e38", "pickled objects"],
)
def test_import_refuses_targets_that_do_not_fit(tmp_path, targets, match):
    path = _npz(tmp_path / "set.npz", targets)
    with pytest.raises(UserError, match=match):
        load_distilled_targets(path, M)


def test_import_checks_the_number_of_classes_when_it_is_given(tmp_path):
    path = _npz(tmp_path / "set.npz", np.zeros((M, K + 2), np.float32))
    with pytest.raises(UserError, match="12 columns for data of 10 classes"):
        load_distilled_targets(path, M, classes=K)
    assert load_distilled_targets(_npz(tmp_path / "ok.npz", np.ones((M, K))), M, classes=K).dtype == torch.float32


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"pixels": np.random.default_rng(0).random((M, 1, 28, 28))}, r"'pixels' must be uint8 .* \(got torch.float64"),
        ({"pixels": np.full((M, 1, 28, 28), 1000, np.int64)}, r"'pixels' must be uint8 .* \(got torch.int64"),
        ({"pixels": None, "images": np.ones((M, 1, 28, 28), np.complex64)}, r"images must be real floats"),
        ({"pixels": None, "images": np.ones((M, 1, 28, 28), np.int32)}, r"images must be real floats"),
        ({"labels": (np.arange(M) % K).astype(np.complex64)}, r"labels must be whole class indices"),
    ],
    ids=["float pixels in [0, 1]", "integer pixels up to 1000", "complex images", "integer images", "complex labels"],
)
def test_import_refuses_pixels_and_images_outside_the_documented_formats(tmp_path, arrays, match):
    with pytest.raises(UserError, match=match):
        load_distilled(_npz(tmp_path / "set.npz", **arrays))


def test_integer_images_in_a_pt_are_refused(tmp_path):
    path = tmp_path / "set.pt"
    torch.save({"images": torch.full((M, 1, 28, 28), 200, dtype=torch.uint8), "labels": torch.arange(M) % K}, path)
    with pytest.raises(UserError, match=r"images must be real floats .* \(got torch.uint8\)"):
        load_distilled(path)


def test_the_documented_formats_still_import(tmp_path):
    pixels = load_distilled(_npz(tmp_path / "pixels.npz"))
    images = load_distilled(_npz(tmp_path / "images.npz", pixels=None, images=np.ones((M, 1, 28, 28), np.float16)))
    assert pixels[2] and pixels[0].dtype == torch.uint8 and not images[2] and images[0].is_floating_point()


def test_complex_images_are_refused_in_one_line_without_a_warning(tiny_data, tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, images=np.ones((M, 1, 28, 28), np.complex64), labels=np.arange(M) % K)
    proc = bpc(
        "import", "--from", str(path), "--out", str(tmp_path / "o"), "--data.root", str(tiny_data), *TINY, check=False
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Warning" not in proc.stderr
    assert proc.stderr.startswith("bpc: error:") and "images must be real floats" in proc.stderr


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"methods": "vbpc", "vbpc.coreset_noise": 1e-30}, r"--vbpc.coreset_noise must be 0 .* or in 0.001..1000"),
        ({"evaluate.target_noise": 1e-300}, r"--evaluate.target_noise must be 0 .* or in 0.001..1000"),
        ({"evaluate.vbpc_noise": 1e-300}, r"--evaluate.target_noise must be 0"),
        ({"vbpc_eval.lr": 1e12}, r"--vbpc_eval.lr must be at most 10"),
        ({"evaluate.vbpc_lr": 1e12}, r"--vbpc_eval.lr must be at most 10"),
        ({"methods": "vbpc", "vbpc.pool_size": 10**8}, r"--vbpc.pool_size must be at most 64"),
        ({"methods": "vbpc", "vbpc.pool_lr": 1e6}, r"--vbpc.pool_lr must be at most 10"),
    ],
    ids=["coreset_noise", "target_noise", "vbpc_noise", "vbpc_eval.lr", "vbpc_lr", "pool_size", "pool_lr"],
)
def test_vbpc_options_outside_their_range_are_refused(overrides, match):
    with pytest.raises(UserError, match=match):
        pseudocoresets.make_config("quick", overrides=overrides)


@pytest.mark.parametrize(
    "phi, noise",
    [
        (torch.ones(6, 3), 1e-300),  # noise**2 underflows to 0: a division by zero
        (torch.ones(6, 3), 1e-30),  # a rank-one kernel with a ridge of 1e-60: no Cholesky factor
        (torch.full((6, 3), float("nan")), 0.1),  # diverged features
    ],
    ids=["noise underflow", "singular kernel", "nan features"],
)
def test_a_singular_last_layer_solve_is_one_line_naming_the_options(phi, noise):
    from pseudocoresets.models.last_layer import last_layer_posterior

    with pytest.raises(UserError, match=r"numerically singular.*--vbpc.coreset_noise.*--vbpc_eval.lr"):
        last_layer_posterior(phi, torch.zeros(6, 2), noise=noise)
