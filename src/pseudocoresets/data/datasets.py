"""Dataset selection and the in-memory representation: images (classification) or tables (tabular.py)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io import check_path_kind
from .cifar import find_cifar_root, load_cifar10
from .idx import load_idx_split
from .imagefolder import load_imagefolder
from .tabular import TabularData, load_tabular, synthetic_regression

DATASETS = ("fashion-mnist", "cifar10", "imagefolder", "tabular", "synthetic-regression")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DEFAULT_ROOTS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}


def default_cache_dir() -> str:
    return os.environ.get("BPC_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "pseudocoresets"))


@dataclass
class DataConfig:
    """Which dataset to read and from where. Nothing is ever downloaded."""

    name: str = field(default="fashion-mnist", metadata={"help": f"dataset, one of {DATASETS}"})
    root: str = field(
        default="",
        metadata={
            "help": "where the data is: IDX directory (fashion-mnist; default the Debian location), "
            "cifar-10-batches-py/ or an image-folder tree/.tar.gz (cifar10), tree or archive (imagefolder), "
            ".csv or .npz file (tabular)"
        },
    )
    target: str = field(
        default="", metadata={"help": "tabular CSV: target column, by name or number (default: the last)"}
    )
    test_fraction: float = field(
        default=0.2, metadata={"help": "tabular: share of rows held out as the test split when the file has none"}
    )
    standardize: bool = field(
        default=True, metadata={"help": "tabular: standardise features with the train split's mean and std"}
    )
    intercept: bool = field(
        default=False, metadata={"help": "tabular: append a constant-1 feature (a bias weight for --model.arch linear)"}
    )
    synthetic_train: int = field(default=2000, metadata={"help": "synthetic-regression: training rows"})
    synthetic_test: int = field(default=1000, metadata={"help": "synthetic-regression: test rows"})
    synthetic_dim: int = field(default=10, metadata={"help": "synthetic-regression: number of features"})
    synthetic_noise: float = field(default=1.0, metadata={"help": "synthetic-regression: noise std of the targets"})
    seed: int = field(
        default=0, metadata={"help": "seed of the tabular train/test split, the synthetic data and the train subset"}
    )
    train_subset: int = field(
        default=0,
        metadata={
            "help": "keep a random subset of this many training examples "
            "(0: all); the full-data posterior is then the subset's",
            "identity": "unless-set",
        },
    )
    zca: bool = field(default=False, metadata={"help": "ZCA-whiten images (fitted on the train split)"})
    zca_reg: float = field(default=0.1, metadata={"help": "ZCA regularisation eps (kornia convention)"})
    cache_dir: str = field(
        default="", metadata={"help": "cache for decoded image folders (default $BPC_CACHE or ~/.cache/pseudocoresets)"}
    )

    def validate(self) -> None:
        if self.name not in DATASETS:
            raise UserError(f"unknown dataset {self.name!r}; choose one of {', '.join(DATASETS)}")
        if self.name in ("cifar10", "imagefolder") and not self.root:
            raise UserError(f"--data.root is required for {self.name} (a cifar-10-batches-py/ dir, tree or .tar.gz)")
        if self.name == "tabular" and not self.root:
            raise UserError("--data.root is required for tabular data (a .csv or .npz file)")
        if not 0 < self.test_fraction < 1:
            raise UserError(f"--data.test_fraction must be in (0, 1) (got {self.test_fraction})")
        if self.train_subset < 0:
            raise UserError(f"--data.train_subset must be >= 0 (0: all training examples; got {self.train_subset})")
        if self.zca and not self.is_image:
            raise UserError(f"--data.zca whitens images; {self.name} holds table rows: drop --data.zca")

    @property
    def is_image(self) -> bool:
        return self.name not in ("tabular", "synthetic-regression")


@dataclass
class ImageData:
    """A train/test split of uint8 images [N, C, H, W] with int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]

    is_image = True

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.train_x.shape[1:])

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _check(name: str, arrays, classes: list[str]) -> ImageData:
    train_x, train_y, test_x, test_y = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    k = len(classes)
    for split, y in (("train", train_y), ("test", test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
            raise UserError(f"{name}: {split} labels outside 0..{k - 1}; the label files are garbled")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise UserError(f"{name}: train images {tuple(train_x.shape[1:])} and test {tuple(test_x.shape[1:])} differ")
    if train_x.shape[2] != train_x.shape[3]:
        raise UserError(f"{name}: images must be square, got {tuple(train_x.shape[2:])}")
    return ImageData(name, train_x, train_y, test_x, test_y, list(classes))


def load_dataset(config: DataConfig) -> ImageData | TabularData:
    """Read the dataset named by ``config`` from local files, or generate the synthetic one (see :class:`DataConfig`),
    keeping ``train_subset`` training examples when it is set."""
    if config.root:
        check_path_kind(config.root, "--data.root")
    return train_subset(_load(config), config.train_subset, config.seed)


def train_subset(data: ImageData | TabularData, size: int, seed: int) -> ImageData | TabularData:
    """``data`` with ``size`` training examples drawn without replacement (seeded, in their original order);
    ``size`` 0 keeps them all."""
    if size == 0:
        return data
    n = len(data.train_y)
    if size > n:
        raise UserError(
            f"--data.train_subset {size} exceeds the {n} training examples of {data.name}; lower it or use 0 (all)"
        )
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values
    return dataclasses.replace(data, train_x=data.train_x[keep], train_y=data.train_y[keep])


TEST_ORDER_SEED = 0


def test_order(config: DataConfig) -> str:
    """How the test split is ordered: ``"file"`` (as the files hold it: the IDX files and CIFAR-10's batches are
    already in mixed class order) or ``"seeded"`` for image folders, whose files come class by class and whose
    test split is therefore put in a fixed random order (:data:`TEST_ORDER_SEED`) when loaded. The first n test
    points (the diagnostic points, the stopping rule's points, a corrupted subset, a snapshot's quick score) are
    then a sample of every class, not of the first class listed. Only the test split is reordered: the training
    split, and with it experts and coresets, are as before."""
    if config.name == "imagefolder":
        return "seeded"
    if config.name == "cifar10":
        root = Path(config.root or DEFAULT_ROOTS.get(config.name, ""))
        if not (root.is_dir() and find_cifar_root(root) is not None):
            return "seeded"
    return "file"


def _seeded_test_order(data: ImageData) -> ImageData:
    order = torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(TEST_ORDER_SEED))
    return dataclasses.replace(data, test_x=data.test_x[order].contiguous(), test_y=data.test_y[order].contiguous())


def _load(config: DataConfig) -> ImageData | TabularData:
    config.validate()
    if config.name == "synthetic-regression":
        return synthetic_regression(
            config.synthetic_train, config.synthetic_test, config.synthetic_dim, config.synthetic_noise, config.seed
        )
    if config.name == "tabular":
        return load_tabular(Path(config.root), config.target, config.test_fraction, config.seed)
    root = Path(config.root or DEFAULT_ROOTS.get(config.name, ""))
    cache = Path(config.cache_dir or default_cache_dir())
    if config.name == "fashion-mnist":
        return _check(config.name, load_idx_split(root), FASHION_MNIST_CLASSES)
    if config.name == "cifar10" and root.is_dir() and find_cifar_root(root) is not None:
        *arrays, classes = load_cifar10(root)
        return _check(config.name, arrays, classes)
    if config.name == "cifar10" and not root.exists():
        raise UserError(
            f"no CIFAR-10 at {root}: pass --data.root pointing to cifar-10-batches-py/ (extracted "
            "cifar-10-python.tar.gz) or to an image-folder tree/.tar.gz"
        )
    *arrays, classes = load_imagefolder(root, cache)
    return _seeded_test_order(_check(config.name, arrays, classes))  # test_order(config) == "seeded"
