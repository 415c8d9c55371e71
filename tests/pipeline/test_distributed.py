"""Scale-out under torchrun (parallel.py): 2 processes on gloo against 1 process, stage by stage.

Experts are split by rank and must be identical; fKL and rKL split their S sample terms, DC its classes, and all
all-reduce the pixel gradients (DSA on, so the ranks' augmentation draws must stay in step), so their coresets
equal the single-process ones up to float summation order (allclose); evaluation
repeats are split and gathered, so a coreset's results are the same numbers. Rank 0 alone writes.
Mutant evidence: without the all-reduce of the pixel gradients in fkl.py each rank moves the pixels by its own
share only, and the fKL coreset test fails; the same for dc.py's all-reduce, or its skipped classes not drawing
their augmentation (the ranks' generators drift apart), and the DC test fails.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import TINY, bpc

ARGS = [
    *TINY,
    "--methods",
    "random,fkl,rkl,dc",
    "--distill.augment",
    "--dc.real_batch",
    "20",
    "--experts.num_experts",
    "3",
    "--rkl.num_samples",
    "3",
    "--rkl.real_batch",
    "40",
    "--fkl.num_samples",
    "3",
    "--evaluate.repeats",
    "3",
    "--evaluate.agreement",
    "--reference.chains",
    "3",
    "--reference.batch_size",
    "50",
    "--reference.epochs_per_cycle",
    "4",
    "--reference.samples_per_cycle",
    "2",
    "--reference.sample_spacing",
    "2",
]


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "pseudocoresets.cli",
        *args,
    ]
    env = {**os.environ, "BPC_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    bpc("run", "--out", str(root / "one"), "--data.root", str(tiny_data), *ARGS, "--threads", "1")
    proc = torchrun(2, "run", "--out", str(root / "two"), "--data.root", str(tiny_data), *ARGS)
    return root / "one", root / "two", proc


def test_two_processes_train_the_same_experts(runs):
    one, two, _ = runs
    for e in range(3):
        a = load_file(str(one / f"experts/expert_{e:03d}.safetensors"))["trajectory"]
        b = load_file(str(two / f"experts/expert_{e:03d}.safetensors"))["trajectory"]
        assert torch.equal(a, b)
    assert json.loads((two / "experts/manifest.json").read_text())["processes"] == 2
    # the expert trained by rank 1 logged its epochs in its own file
    assert {json.loads(line)["expert"] for line in (two / "experts/progress-rank1.jsonl").read_text().splitlines()} == {
        1
    }


@pytest.mark.parametrize("method", ["fkl", "rkl", "dc"])
def test_split_sample_terms_give_the_single_process_coreset(runs, method):
    one, two, _ = runs
    a = load_file(str(one / f"coresets/{method}-ipc2/coreset.safetensors"))
    b = load_file(str(two / f"coresets/{method}-ipc2/coreset.safetensors"))
    assert not torch.equal(a["images"], a["init_images"])  # it learnt something
    assert torch.allclose(a["images"], b["images"], rtol=1e-4, atol=1e-5)
    assert json.loads((two / f"coresets/{method}-ipc2/manifest.json").read_text())["processes"] == 2


def test_split_reference_chains_give_the_same_samples(runs):
    one, two, _ = runs
    a = load_file(str(one / "reference/samples.safetensors"))["samples"]
    b = load_file(str(two / "reference/samples.safetensors"))["samples"]
    assert len(a) > 0 and torch.equal(a, b)
    ra = json.loads((one / "evals/random-ipc2-hmc/results.json").read_text())["summary"]["agreement"]
    rb = json.loads((two / "evals/random-ipc2-hmc/results.json").read_text())["summary"]["agreement"]
    assert ra == rb


def test_split_repeats_give_the_same_results(runs):
    one, two, _ = runs
    a = json.loads((one / "evals/random-ipc2-hmc/results.json").read_text())
    b = json.loads((two / "evals/random-ipc2-hmc/results.json").read_text())
    keys = ("accuracy", "nll", "ece", "brier", "acceptance_rate")
    assert {k: a["summary"][k] for k in keys} == {k: b["summary"][k] for k in keys}
    assert [r["seed"] for r in b["repeats"]] == [0, 1, 2]


def test_only_rank_0_prints_and_writes(runs):
    _, two, proc = runs
    assert proc.stdout.count("| fashion-mnist | 2 | fkl | hmc |") == 1
    assert not list(Path(two).rglob("*.tmp"))
