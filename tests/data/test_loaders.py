"""Loaders on small files in the real formats, and on broken ones."""

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from pseudocoresets.data import DataConfig, Normalizer, load_dataset
from pseudocoresets.data import datasets, imagefolder
from pseudocoresets.data.idx import read_idx
from pseudocoresets.errors import UserError
from helpers import make_fashion_dir, write_idx


def test_idx_roundtrip_plain_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "a", a, compress=False)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    assert np.array_equal(read_idx(tmp_path / "a"), a)


def test_fashion_mnist_layout(tmp_path):
    root = make_fashion_dir(tmp_path / "fm")
    data = load_dataset(DataConfig(name="fashion-mnist", root=str(root)))
    assert data.train_x.shape == (40, 1, 28, 28) and data.train_x.dtype == torch.uint8
    assert data.test_y.tolist() == [i % 10 for i in range(20)]
    assert data.num_classes == 10


def test_train_subset_keeps_seeded_rows_of_the_train_split_only(tmp_path):
    root = make_fashion_dir(tmp_path / "fm")
    full = load_dataset(DataConfig(name="fashion-mnist", root=str(root)))
    sub = load_dataset(DataConfig(name="fashion-mnist", root=str(root), train_subset=15))
    again = load_dataset(DataConfig(name="fashion-mnist", root=str(root), train_subset=15))
    other = load_dataset(DataConfig(name="fashion-mnist", root=str(root), train_subset=15, seed=1))
    assert sub.train_x.shape == (15, 1, 28, 28) and torch.equal(sub.train_x, again.train_x)
    assert not torch.equal(sub.train_x, other.train_x)
    # every kept row is a row of the full split with its own label, in the original order, none twice
    rows = [int(torch.nonzero((full.train_x == x).flatten(1).all(1))[0]) for x in sub.train_x]
    assert rows == sorted(set(rows)) and torch.equal(full.train_y[rows], sub.train_y)
    assert torch.equal(sub.test_x, full.test_x)  # the test split is untouched
    with pytest.raises(UserError, match="exceeds the 40 training"):
        load_dataset(DataConfig(name="fashion-mnist", root=str(root), train_subset=41))


@pytest.mark.parametrize("damage", ["truncate", "magic", "missing", "labels"])
def test_fashion_mnist_broken(tmp_path, damage):
    root = make_fashion_dir(tmp_path / "fm")
    target = root / "train-images-idx3-ubyte.gz"
    if damage == "truncate":
        target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes())[:-100]))
    elif damage == "magic":
        target.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + gzip.decompress(target.read_bytes())[4:]))
    elif damage == "missing":
        target.unlink()
    else:
        write_idx(root / "train-labels-idx1-ubyte.gz", np.full(40, 200, dtype=np.uint8))
    with pytest.raises(UserError) as exc:
        load_dataset(DataConfig(name="fashion-mnist", root=str(root)))
    assert "\n" not in str(exc.value)


def make_cifar_dir(root, per_batch=6, seed=0):
    rng = np.random.default_rng(seed)
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": list(range(per_batch)),
            b"batch_label": name.encode(),
        }
        with (base / name).open("wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    with (base / "batches.meta").open("wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)
    return root


def test_cifar10_python_layout(tmp_path):
    root = make_cifar_dir(tmp_path)
    data = load_dataset(DataConfig(name="cifar10", root=str(root)))
    assert data.train_x.shape == (30, 3, 32, 32) and data.test_x.shape == (6, 3, 32, 32)
    assert data.classes[3] == "c3"
    # The channel-major 3072 layout: first 1024 bytes are the red plane of image 0.
    with (root / "cifar-10-batches-py" / "data_batch_1").open("rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    assert np.array_equal(data.train_x[0, 0].numpy().ravel(), raw[0, :1024])


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar10_refuses_code_in_pickles(tmp_path):
    root = make_cifar_dir(tmp_path)
    with (root / "cifar-10-batches-py" / "data_batch_2").open("wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": []}, fh)
    with pytest.raises(UserError, match="refusing"):
        load_dataset(DataConfig(name="cifar10", root=str(root)))


def test_cifar10_garbled_and_missing(tmp_path):
    root = make_cifar_dir(tmp_path)
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="test_batch"):
        load_dataset(DataConfig(name="cifar10", root=str(root)))
    with pytest.raises(UserError, match="no CIFAR-10"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "nowhere")))


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_tree(root, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.png").write_bytes(_png(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)))
    return root


def test_imagefolder_tree_and_tar_agree(tmp_path):
    tree = make_tree(tmp_path / "tree")
    tar_path = tmp_path / "data.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(tree, arcname="imgs")
    cfg_tree = DataConfig(name="imagefolder", root=str(tree), cache_dir=str(tmp_path / "cache"))
    cfg_tar = DataConfig(name="imagefolder", root=str(tar_path), cache_dir=str(tmp_path / "cache"))
    a, b = load_dataset(cfg_tree), load_dataset(cfg_tar)
    assert a.classes == b.classes == ["cat", "dog"]
    assert a.train_x.shape == (6, 3, 8, 8)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    # the image bytes survive decoding exactly (PNG is lossless)
    first = np.asarray(Image.open(tree / "train" / "cat" / "0.png"))
    assert np.array_equal(a.train_x[0].permute(1, 2, 0).numpy(), first)


def test_imagefolder_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "tree")
    tar_path = tmp_path / "d.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(tree, arcname=".")
    cfg = DataConfig(name="imagefolder", root=str(tar_path), cache_dir=str(tmp_path / "cache"))
    first = load_dataset(cfg)
    calls = []
    real = imagefolder.decode_imagefolder
    monkeypatch.setattr(imagefolder, "decode_imagefolder", lambda s: calls.append(s) or real(s))
    assert torch.equal(load_dataset(cfg).train_x, first.train_x)
    assert calls == []  # served from the cache
    with tarfile.open(tar_path, "w") as tar:  # a changed source is decoded again
        tar.add(tree / "train", arcname="train")
        tar.add(tree / "test", arcname="test")
    import os
    import time

    os.utime(tar_path, (time.time() + 5, time.time() + 5))
    load_dataset(cfg)
    assert len(calls) == 1


def test_imagefolder_broken(tmp_path):
    tree = make_tree(tmp_path / "tree")
    (tree / "train" / "cat" / "0.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot decode"):
        load_dataset(DataConfig(name="imagefolder", root=str(tree), cache_dir=str(tmp_path / "c")))
    bad_tar = tmp_path / "bad.tar.gz"
    bad_tar.write_bytes(b"\x1f\x8b" + b"\x00" * 50)
    with pytest.raises(UserError):
        load_dataset(DataConfig(name="imagefolder", root=str(bad_tar), cache_dir=str(tmp_path / "c")))
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="no train images"):
        load_dataset(DataConfig(name="imagefolder", root=str(empty), cache_dir=str(tmp_path / "c")))


def test_normalizer_uses_train_statistics_for_test():
    train = torch.randint(0, 128, (50, 3, 4, 4), dtype=torch.uint8)
    test = torch.randint(128, 256, (20, 3, 4, 4), dtype=torch.uint8)
    norm = Normalizer.fit(train)
    z = norm(train)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    assert norm(test).mean() > 1.0  # the test split is shifted by the *train* statistics, not re-centred
    assert torch.allclose(norm.inverse(norm(test)), test.float() / 255, atol=1e-5)


@pytest.mark.parametrize(
    "labels",
    [[2**70] * 6, [[1, 2]] * 6, ["3"] * 6, [3.7] * 6, [True] * 6, [10] * 6, np.zeros((6, 1), dtype=np.int64)],
    ids=["beyond int64", "nested", "strings", "floats", "booleans", "class 10", "2-D array"],
)
def test_cifar10_labels_must_be_class_numbers(tmp_path, labels):
    root = make_cifar_dir(tmp_path)
    path = root / "cifar-10-batches-py" / "data_batch_3"
    with path.open("wb") as fh:
        pickle.dump({b"data": np.zeros((6, 3072), dtype=np.uint8), b"labels": labels}, fh, protocol=2)
    with pytest.raises(UserError, match="not a flat list of class numbers 0..9") as exc:
        load_dataset(DataConfig(name="cifar10", root=str(root)))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("names", [7, [b"a"] * 3, [1] * 10], ids=["an int", "three names", "numbers"])
def test_cifar10_label_names_must_be_ten_names(tmp_path, names):
    root = make_cifar_dir(tmp_path)
    with (root / "cifar-10-batches-py" / "batches.meta").open("wb") as fh:
        pickle.dump({b"label_names": names}, fh)
    with pytest.raises(UserError, match="label_names that are not 10 names"):
        load_dataset(DataConfig(name="cifar10", root=str(root)))


def _idx_header(code: int, shape) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)


def test_idx_header_declaring_terabytes_is_refused_before_allocation(tmp_path):
    from pseudocoresets.data.idx import read_idx

    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(_idx_header(0x08, (2**31, 2**16, 2**16)) + b"\0" * 100)
    with pytest.raises(UserError, match="declares .* GiB of data"):
        read_idx(path)


def test_idx_gzip_bomb_is_not_inflated(tmp_path):
    """A gzip member inflating to 1 GiB of zeros behind a header that declares 16 bytes: only 17 bytes are read."""
    import gzip
    import tracemalloc

    from pseudocoresets.data.idx import read_idx

    path = tmp_path / "x-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(_idx_header(0x08, (16,)))
        chunk = b"\0" * 2**24
        for _ in range(64):
            f.write(chunk)
    tracemalloc.start()
    with pytest.raises(UserError, match="more data bytes but its header promises 16"):
        read_idx(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**24


@pytest.mark.parametrize("which", ["images", "labels"])
def test_idx_float_images_or_labels_are_refused(tmp_path, which):
    root = tmp_path / "fm"
    make_fashion_dir(root)
    stem = "train-images-idx3-ubyte.gz" if which == "images" else "train-labels-idx1-ubyte.gz"
    shape = (40, 28, 28) if which == "images" else (40,)
    import gzip

    with gzip.open(root / stem, "wb") as f:
        f.write(_idx_header(0x0D, shape) + np.full(shape, 3.7, dtype=">f4").tobytes())
    with pytest.raises(UserError, match="Fashion-MNIST holds uint8 pixels and integer labels"):
        load_dataset(DataConfig(name="fashion-mnist", root=str(root)))


def test_imagefolder_with_one_class_is_refused(tmp_path):
    tree = make_tree(tmp_path / "tree")
    import shutil

    for split in ("train", "test"):
        shutil.rmtree(tree / split / "dog")
    with pytest.raises(UserError, match="holds one class"):
        load_dataset(DataConfig(name="imagefolder", root=str(tree), cache_dir=str(tmp_path / "c")))


def test_imagefolder_decompression_bomb_png_is_refused_from_its_header(tmp_path):
    """A 1-bit PNG of 10,000 x 10,000 pixels is small on disk and would be 300 MB as RGB (PIL itself only warns)."""
    tree = make_tree(tmp_path / "tree")
    buf = io.BytesIO()
    Image.new("1", (10000, 10000)).save(buf, format="PNG")
    (tree / "train" / "cat" / "bomb.png").write_bytes(buf.getvalue())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's own warning line before bpc's one line would make two
        with pytest.raises(UserError, match="declares 10000 x 10000 pixels"):
            load_dataset(DataConfig(name="imagefolder", root=str(tree), cache_dir=str(tmp_path / "c")))


def test_imagefolder_archive_member_too_large_is_refused_unread(tmp_path):
    tree = make_tree(tmp_path / "tree")
    tar_path = tmp_path / "d.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(tree, arcname=".")
        info = tarfile.TarInfo("train/cat/huge.png")
        info.size = 65 * 2**20
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    with pytest.raises(UserError, match="MiB, more than any image"):
        load_dataset(DataConfig(name="imagefolder", root=str(tar_path), cache_dir=str(tmp_path / "c")))


def test_a_tampered_imagefolder_cache_is_detected_and_decoded_again(tmp_path, monkeypatch, capsys):
    from safetensors.torch import load_file, save_file

    tree = make_tree(tmp_path / "tree")
    cfg = DataConfig(name="imagefolder", root=str(tree), cache_dir=str(tmp_path / "cache"))
    first = load_dataset(cfg)
    (path,) = (tmp_path / "cache").glob("imagefolder-*.safetensors")
    tensors = load_file(str(path))
    tensors["train_x"][0, 0, 0, 0] ^= 7
    save_file(tensors, str(path))
    calls = []
    real = imagefolder.decode_imagefolder
    monkeypatch.setattr(imagefolder, "decode_imagefolder", lambda s: calls.append(s) or real(s))
    assert torch.equal(load_dataset(cfg).train_x, first.train_x) and len(calls) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not match its checksum" in err


def test_an_empty_training_split_is_one_line_without_a_warning():
    import warnings

    from pseudocoresets.data import fit_preprocessor
    from pseudocoresets.data.datasets import ImageData

    empty = ImageData(
        "fashion-mnist",
        torch.zeros(0, 1, 28, 28, dtype=torch.uint8),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
        torch.zeros(4, dtype=torch.long),
        ["a", "b"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # std()'s warning before the error would make two lines
        with pytest.raises(UserError, match="holds no examples"):
            fit_preprocessor(empty, DataConfig())


FIRST_OF_10000 = [6044, 2890, 9399, 1917, 4919]  # torch.randperm(10000) under seed 0, torch 2.13


def test_an_image_folders_test_split_comes_in_a_seeded_order_covering_every_class(tmp_path):
    """Image folders list their files class by class; the first test points (diagnostic points, a stopping rule's
    points, a corrupted subset) must be a sample of every class, as in the IDX files and CIFAR-10's batches. The
    test split is the same set of (image, label) pairs, the training split is in file order."""
    rng = np.random.default_rng(1)
    tree = tmp_path / "tree"
    for split, n in (("train", 2), ("test", 20)):
        for cls in ("a", "b", "c", "d"):
            d = tree / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i:02d}.png").write_bytes(_png(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)))
    cfg = DataConfig(name="imagefolder", root=str(tree), cache_dir=str(tmp_path / "cache"))
    assert datasets.test_order(cfg) == "seeded"
    data, decoded = load_dataset(cfg), imagefolder.load_imagefolder(tree, None)
    assert torch.equal(torch.from_numpy(decoded[1]), data.train_y) and data.train_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.from_numpy(decoded[3]).tolist() == sorted(data.test_y.tolist())  # in files: class by class
    assert len(set(data.test_y[:8].tolist())) >= 3  # the first 8 of 80 are not one class
    pairs = lambda x, y: sorted((int(c), bytes(i.numpy().tobytes())) for i, c in zip(x, y))  # noqa: E731
    assert pairs(data.test_x, data.test_y) == pairs(torch.from_numpy(decoded[2]), torch.from_numpy(decoded[3]))
    assert torch.equal(load_dataset(cfg).test_y, data.test_y)  # the same order every time (and from the cache)
    assert datasets.test_order(DataConfig(name="fashion-mnist")) == "file"
    # the order is torch's randperm under seed 0: should a torch release change it, references and evaluations
    # made before would no longer line up with the test points, and the identity's "seeded" would need a version
    first = torch.randperm(10000, generator=torch.Generator().manual_seed(datasets.TEST_ORDER_SEED))[:5].tolist()
    assert first == FIRST_OF_10000, first
