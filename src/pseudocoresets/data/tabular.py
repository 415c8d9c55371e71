"""Tabular data: feature matrices with a target column, from CSV or NPZ files, or a synthetic regression.

- CSV: comma-separated numbers, an optional header line; the target is a column named or numbered by
  ``--data.target`` (default: the last column), every other column is a feature.
- NPZ (read with ``allow_pickle=False``): arrays ``x`` and ``y`` (split by ``--data.test_fraction``), or
  ``train_x``, ``train_y``, ``test_x``, ``test_y``.
- ``synthetic-regression``: y = x^T theta* + N(0, s^2) with theta* ~ N(0, I) and correlated Gaussian inputs
  x = z L (z ~ N(0, I), L = I + G / sqrt(d), G ~ N(0, 1)), so the posterior covariance is not diagonal.

Targets stay real numbers here; :meth:`TabularData.for_likelihood` checks and converts them for the model's
likelihood (real targets for ``gaussian``; integer classes for ``bernoulli`` and ``categorical``).
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


@dataclass
class TabularData:
    """A train/test split of float32 features [N, D] with targets [N] (float64, or int64 class labels)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]  # empty for real-valued targets
    features: list[str]

    is_image = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (int(self.train_x.shape[1]),)

    @property
    def num_classes(self) -> int:
        """Number of classes; 0 for real-valued targets (regression)."""
        return len(self.classes)

    def for_likelihood(self, likelihood: str) -> "TabularData":
        """The targets checked and typed for ``likelihood``: real (gaussian) or integer classes 0..K-1."""
        if likelihood == "gaussian":
            return dataclasses.replace(self, train_y=self.train_y.double(), test_y=self.test_y.double(), classes=[])
        ys = torch.cat([self.train_y, self.test_y]).double()
        if not torch.equal(ys, ys.round()) or (len(ys) and float(ys.min()) < 0):
            raise UserError(
                f"{self.name}: --model.likelihood {likelihood} needs integer class targets 0..K-1; "
                "use --model.likelihood gaussian for real-valued targets"
            )
        k = int(ys.max()) + 1 if len(ys) else 0
        if k > len(ys):  # before a list of k class names is built (a target of 1e9 would exhaust memory)
            raise UserError(
                f"{self.name}: class targets reach {k - 1} for {len(ys)} rows, so most classes 0..{k - 1} would "
                "have no row; number the classes 0..K-1"
            )
        if likelihood == "bernoulli" and k > 2:
            raise UserError(f"{self.name}: --model.likelihood bernoulli needs targets 0/1, found classes up to {k - 1}")
        k = max(k, 2)
        return dataclasses.replace(
            self, train_y=self.train_y.long(), test_y=self.test_y.long(), classes=[str(c) for c in range(k)]
        )


def synthetic_regression(n_train: int, n_test: int, dim: int, noise_std: float, seed: int) -> TabularData:
    """A Bayesian-linear-regression data set with correlated inputs (see the module docstring)."""
    if n_train < 1 or n_test < 1 or dim < 1 or not noise_std > 0:
        raise UserError(
            "synthetic data needs --data.synthetic_train, synthetic_test, synthetic_dim >= 1 and synthetic_noise > 0"
        )
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(dim, generator=g, dtype=torch.float64)
    mix = torch.eye(dim, dtype=torch.float64) + torch.randn(dim, dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
    x = torch.randn(n_train + n_test, dim, generator=g, dtype=torch.float64) @ mix
    y = x @ theta + noise_std * torch.randn(n_train + n_test, generator=g, dtype=torch.float64)
    return TabularData(
        "synthetic-regression",
        x[:n_train].float(),
        y[:n_train],
        x[n_train:].float(),
        y[n_train:],
        [],
        [f"x{i}" for i in range(dim)],
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read_csv(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline().strip()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text CSV file; pass a comma-separated file or an .npz") from None
    if not first:
        raise UserError(f"{path} is empty; a CSV needs at least one row of numbers")
    fields = [c.strip() for c in first.split(",")]
    header = not all(_is_number(c) for c in fields)
    names = fields if header else [str(i) for i in range(len(fields))]
    try:
        table = np.loadtxt(
            path, delimiter=",", skiprows=1 if header else 0, dtype=np.float64, ndmin=2, encoding="utf-8"
        )
    except ValueError as exc:
        raise UserError(
            f"{path}: not a table of numbers ({str(exc).splitlines()[0]}); every row needs "
            f"{len(fields)} comma-separated numbers"
        ) from None
    if table.shape[1] != len(names) or table.shape[1] < 2:
        raise UserError(f"{path}: needs at least two columns (features and a target), found {table.shape[1]}")
    if target == "":
        col = len(names) - 1
    elif target in names:
        col = names.index(target)
    elif target.lstrip("-").isdigit() and -len(names) <= int(target) < len(names):
        col = int(target) % len(names)
    else:
        raise UserError(f"{path}: no target column {target!r}; columns are {', '.join(names)} (or a column number)")
    features = [n for i, n in enumerate(names) if i != col]
    return np.delete(table, col, axis=1), table[:, col], features


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise ValueError("a single array, not an archive")
        with archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path}: not a readable .npz archive ({reason}); write it with numpy.savez (object arrays are refused)"
        ) from None


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    if not 0 < test_fraction < 1:
        raise UserError(f"--data.test_fraction must be in (0, 1) (got {test_fraction})")
    n_test = int(round(len(y) * test_fraction))
    if n_test < 1 or n_test >= len(y):
        raise UserError(f"{len(y)} rows cannot be split with test_fraction {test_fraction}; provide more rows")
    perm = np.random.default_rng(seed).permutation(len(y))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def load_tabular(path: Path, target: str = "", test_fraction: float = 0.2, seed: int = 0) -> TabularData:
    """Read a CSV or NPZ table (see the module docstring); a file without a test split is split at random."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no tabular data file at {path}: pass --data.root pointing to a .csv or .npz file")
    if path.suffix.lower() == ".npz":
        arrays = _read_npz(path)
        if {"train_x", "train_y", "test_x", "test_y"} <= arrays.keys():
            parts = [arrays[k] for k in ("train_x", "train_y", "test_x", "test_y")]
        elif {"x", "y"} <= arrays.keys():
            parts = list(_split(arrays["x"], arrays["y"], test_fraction, seed))
        else:
            raise UserError(
                f"{path} holds {sorted(arrays)}; it needs arrays x and y, or train_x, train_y, test_x, test_y"
            )
        features = None
    elif path.suffix.lower() in (".csv", ".txt"):
        x, y, features = _read_csv(path, target)
        parts = list(_split(x, y, test_fraction, seed))
    else:
        raise UserError(f"{path}: tabular data must be a .csv or .npz file")
    try:
        train_x, train_y, test_x, test_y = (np.asarray(p, dtype=np.float64) for p in parts)
    except (TypeError, ValueError):
        raise UserError(f"{path}: features and targets must be numbers") from None
    if train_x.ndim != 2 or test_x.ndim != 2 or train_y.ndim != 1 or test_y.ndim != 1:
        raise UserError(f"{path}: features must be 2-D [rows, columns] and targets 1-D")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y) or train_x.shape[1] != test_x.shape[1]:
        raise UserError(f"{path}: row counts of features and targets (or train and test columns) differ")
    if len(train_y) == 0 or len(test_y) == 0:
        raise UserError(f"{path}: the train and the test split each need at least one row")
    if not all(np.isfinite(a).all() for a in (train_x, train_y, test_x, test_y)):
        raise UserError(f"{path}: contains NaN or infinite values; clean or drop those rows first")
    features = features or [f"x{i}" for i in range(train_x.shape[1])]
    return TabularData(
        path.name,
        torch.from_numpy(train_x).float(),
        torch.from_numpy(train_y),
        torch.from_numpy(test_x).float(),
        torch.from_numpy(test_y),
        [],
        features,
    )
