"""Helpers shared by the test modules: tiny run options, a ``bpc`` subprocess, data files in the real formats."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: options of a tiny run (seconds on a CPU): every stage, two methods, two repeats
TINY = [
    "--model.width",
    "4",
    "--experts.num_experts",
    "2",
    "--experts.epochs",
    "3",
    "--experts.batch_size",
    "64",
    "--distill.iterations",
    "3",
    "--distill.max_start_epoch",
    "1",
    "--distill.student_steps",
    "2",
    "--fkl.num_samples",
    "2",
    "--distill.lr_images",
    "10",
    "--ipcs",
    "2",
    "--evaluate.chains",
    "2",
    "--evaluate.iterations",
    "4",
    "--evaluate.burn_in",
    "2",
    "--evaluate.thin",
    "1",
    "--evaluate.repeats",
    "2",
    "--hmc.settle_rhat",
    "0",
    "--quiet",
]


def tiny_overrides() -> dict:
    """TINY's command-line options as the ``overrides`` of ``pseudocoresets.make_config``."""
    pairs = [a for a in TINY if a != "--quiet"]
    return {pairs[i].lstrip("-"): pairs[i + 1] for i in range(0, len(pairs), 2)}


def bpc(*args, check=True, timeout=None):
    """The installed ``bpc`` script (or ``python -m pseudocoresets.cli``) in a subprocess (``timeout`` seconds at
    most: a command that hangs fails the test instead of stalling the suite)."""
    exe = Path(sys.executable).parent / "bpc"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pseudocoresets.cli"]
    env = {**os.environ, "BPC_QUIET": "1"}
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def write_idx(path, array, compress=True):
    """``array`` (uint8) as an IDX file, gzip-compressed unless ``compress`` is false."""
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_fashion_dir(root, n_train=40, n_test=20, seed=0):
    """A Fashion-MNIST directory of random pixels (10 classes in turn)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return root


def reseal(directory) -> None:
    """Record a hand-edited artifact's files in its manifest again, as if its stage had written them: for tests
    that edit an artifact on purpose to reach the checks behind the checksums."""
    import json

    from pseudocoresets import integrity

    manifest = Path(directory) / "manifest.json"
    record = json.loads(manifest.read_text())
    record["files"] = integrity.digests(Path(directory))
    manifest.write_text(json.dumps(record))
