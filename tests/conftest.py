"""Fixtures shared by the test modules (helpers they import live in tests/helpers.py).

Under pytest-xdist (``make test`` runs two workers, one per core) every worker and every ``bpc`` it starts uses one
torch thread: two workers of two threads each on two cores spend their time waiting for each other.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import TINY, bpc, write_idx

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the bpc subprocesses
    torch.set_num_threads(1)


@pytest.fixture
def one_thread():
    """Run a test on one torch thread (3-weight models and tiny Gaussian problems: more threads only add overhead)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A Fashion-MNIST directory of class-dependent blobs (300 train, 100 test), so that a network learns something."""
    root = tmp_path_factory.mktemp("fm")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 * c : 2 * c + 6, 4:24] = 220
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def finished_run(tiny_data, tmp_path_factory):
    """A finished tiny ``bpc run`` (random and fkl at ipc 2, HMC), shared by every test: copy it before changing it."""
    out = tmp_path_factory.mktemp("run")
    proc = bpc("run", "--out", str(out), "--data.root", str(tiny_data), *TINY)
    return out, proc


@pytest.fixture(scope="module")
def blr_bench():
    """A Bayesian linear regression problem and a distillation context with exact pi_x samples, on one thread."""
    from pseudocoresets.fidelity.blr import BLRProblem, weights_context

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    problem = BLRProblem.synthetic()
    with tempfile.TemporaryDirectory() as tmp:
        yield problem, weights_context(problem, Path(tmp))
    torch.set_num_threads(threads)
