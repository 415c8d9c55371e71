"""CIFAR-10-C corruptions: shapes, determinism, growth with severity, errors, grey rule, cache."""

import numpy as np
import pytest

from pseudocoresets.corruptions import CORRUPTIONS, EXTRA, STANDARD, corrupt, corrupted_test_sets, frost_dir
from pseudocoresets.corruptions import cifar_c
from pseudocoresets.errors import UserError

RANDOM = {
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
    "snow", "frost", "fog", "spatter", "elastic_transform",
}  # fmt: skip


def structured(n, channels, size, seed):
    """Smooth colour gradients with a disk and a rectangle; saturation kept below ~0.5."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for _ in range(n):
        grey = rng.uniform(0.3, 0.6)
        img = grey + rng.uniform(-0.15, 0.15, (3, 1, 1)) + rng.uniform(-0.2, 0.2, (3, 1, 1)) * (xx + yy - 1)
        cy, cx = rng.uniform(0.3, 0.7, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(0.15, 0.3) ** 2
        img = np.where(disk, rng.uniform(0.1, 0.3) + rng.uniform(0, 0.15, (3, 1, 1)), img)
        y0, x0 = rng.integers(0, size // 2, 2)
        img[:, y0 : y0 + size // 4, x0 : x0 + size // 3] = (
            rng.uniform(0.6, 0.9) + rng.uniform(-0.08, 0.08, (3, 1))[..., None]
        )
        if channels == 1:
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
        out.append(img)
    return np.clip(np.rint(np.stack(out) * 255), 0, 255).astype(np.uint8)


RGB = structured(4, 3, 32, seed=0)
GREY = structured(2, 1, 28, seed=1)
BATCHES = {"rgb32": RGB, "grey28": GREY}


def needs_frost(name):
    if name == "frost":
        try:
            frost_dir()
        except UserError:
            pytest.skip("imagecorruptions (frost pictures) is not installed")


def mad(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def decorrelation(a, b):
    """1 - mean Pearson correlation between matching images."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    return float(1 - ((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))).mean())


def test_names():
    assert len(STANDARD) == 15 and len(EXTRA) == 4
    assert CORRUPTIONS == STANDARD + EXTRA and len(set(CORRUPTIONS)) == 19
    assert {"speckle_noise", "gaussian_blur", "spatter", "saturate"} == set(EXTRA)


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_shape_dtype_determinism(name, batch):
    needs_frost(name)
    x = BATCHES[batch]
    before = x.copy()
    for severity in (1, 3, 5):
        y = corrupt(x, name, severity, seed=7)
        assert y.shape == x.shape and y.dtype == np.uint8
        assert np.array_equal(x, before), "input modified in place"
        np.random.seed(severity)  # global state must not matter
        assert np.array_equal(corrupt(x, name, severity, seed=7), y)
        other = corrupt(x, name, severity, seed=8)
        if name in RANDOM:
            assert not np.array_equal(other, y), f"{name} s{severity}: seed has no effect"
        else:
            assert np.array_equal(other, y), f"{name} s{severity}: deterministic corruption depends on the seed"


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n != "elastic_transform"])
def test_severity_increases_change(name):
    """Mean absolute difference from the clean image grows from severity 1 to 5 (for both batches, two
    seeds). Frost is measured by decorrelation instead: its severities lower the image weight while
    raising the frost weight, so on mid-grey images the mean difference is not monotone; elastic is
    tested in test_elastic_local_distortion_grows (its severity-1 setting is a pure, larger affine jitter)."""
    needs_frost(name)
    measure = decorrelation if name == "frost" else mad
    for x in BATCHES.values():
        for seed in (0, 1):
            d1 = measure(corrupt(x, name, 1, seed), x)
            d5 = measure(corrupt(x, name, 5, seed), x)
            assert d5 > d1, f"{name}: severity 5 ({d5:.3f}) not beyond severity 1 ({d1:.3f})"
            if not (name == "saturate" and x.shape[1] == 1):  # a grey pixel stays grey at severity 1
                assert d1 > 0, f"{name}: severity 1 leaves the images unchanged"


def ramp(n, channels, size):
    yy, xx = np.mgrid[0:size, 0:size] * (32 / size)
    planes = [30 + 4 * xx + 3 * yy, 200 - 3 * xx - 2 * yy, 60 + 2 * xx + 4 * yy][:channels]
    return np.repeat(np.rint(np.stack(planes))[None], n, axis=0).astype(np.uint8)


def plane_residual(images):
    """RMS residual of a least-squares plane fitted to the central half of each image channel."""
    n, c, h, w = images.shape
    q = h // 4
    yy, xx = np.mgrid[q : h - q, q : w - q]
    design = np.stack([np.ones(yy.size), yy.ravel(), xx.ravel()], axis=1)
    vals = images[:, :, q : h - q, q : w - q].reshape(n * c, -1).T.astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, vals, rcond=None)
    return float(np.sqrt(np.mean((design @ coef - vals) ** 2)))


@pytest.mark.parametrize("channels,size", [(3, 32), (1, 28)])
def test_elastic_local_distortion_grows(channels, size):
    """An affine map keeps a linear ramp linear; the elastic field bends it. Severity 1 is affine only
    (it moves the image, but the ramp stays a plane up to rounding); the local bending grows with severity."""
    x = ramp(3, channels, size)
    res = [plane_residual(corrupt(x, "elastic_transform", s, seed=3)) for s in range(1, 6)]
    assert mad(corrupt(x, "elastic_transform", 1, seed=3), x) > 1
    assert res[0] < 0.5, res
    assert res[2] < res[3] < res[4] and res[4] > 3 * res[0], res


def test_glass_blur_moves_pixels_from_up_left_neighbours():
    """One pass with a near-zero blur: every visited pixel takes its own value or an up/left neighbour's."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 32, 32)).astype(np.float32)
    y = cifar_c._glass_blur(x, (0.0, 1, 1), rng)  # sigma 0: no blur, one pass, max_delta 1
    inner = y[:, :, 2:, 2:]
    cands = np.stack([x[:, :, 2:, 2:], x[:, :, 1:-1, 2:], x[:, :, 2:, 1:-1], x[:, :, 1:-1, 1:-1]])
    assert np.all(np.any(np.all(cands == inner[None], axis=2, keepdims=True), axis=0))
    assert np.array_equal(y[:, :, :2], x[:, :, :2]) and np.array_equal(y[:, :, :, :2], x[:, :, :, :2])
    assert not np.array_equal(y, x)


def test_grey_rule_is_luma_of_rgb_result():
    x3 = np.repeat(GREY, 3, axis=1)
    for name in ("contrast", "brightness", "defocus_blur", "saturate"):
        grey = corrupt(GREY, name, 5, 0).astype(np.float64)
        rgb = corrupt(x3, name, 5, 0).astype(np.float64)
        luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
        assert np.abs(grey[:, 0] - luma).max() <= 1.0, name


def test_digital_corruptions_match_definitions():
    x = RGB.astype(np.float64) / 255
    # contrast 0.15 around each image's per-channel mean
    m = x.mean(axis=(2, 3), keepdims=True)
    expect = np.clip(np.rint(((x - m) * 0.15 + m) * 255), 0, 255)
    assert np.abs(corrupt(RGB, "contrast", 5, 0) - expect).max() <= 1
    # brightness keeps hue and saturation: max channel moves by +0.3, ratios between channels kept
    y = corrupt(RGB, "brightness", 5, 0).astype(np.float64) / 255
    assert np.allclose(y.max(axis=1), np.clip(x.max(axis=1) + 0.3, 0, 1), atol=1 / 255)
    # saturate severity 2 scales the HSV saturation by 0.1 and keeps the HSV value
    y = corrupt(RGB, "saturate", 2, 0).astype(np.float64) / 255
    s = lambda a: (a.max(1) - a.min(1)) / np.maximum(a.max(1), 1e-9)  # noqa: E731
    assert np.allclose(y.max(axis=1), x.max(axis=1), atol=1 / 255)
    assert np.allclose(s(y), 0.1 * s(x), atol=0.02)


def test_other_sizes_and_empty_batch():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 3, 20, 24), dtype=np.uint8)
    for name in CORRUPTIONS:
        if name == "frost":
            try:
                frost_dir()
            except UserError:
                continue
        y = corrupt(x, name, 3, 0)
        assert y.shape == x.shape and y.dtype == np.uint8
    assert corrupt(RGB[:0], "fog", 1, 0).shape == (0, 3, 32, 32)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "gaussian_blurr", "severity": 1},
        {"name": "fog", "severity": 0},
        {"name": "fog", "severity": 6},
        {"name": "fog", "severity": 2.0},
        {"name": "fog", "severity": True},
    ],
)
def test_bad_name_or_severity(kwargs):
    with pytest.raises(UserError) as err:
        corrupt(RGB, seed=0, **kwargs)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError):
        corrupted_test_sets(RGB, [kwargs["name"]], [kwargs["severity"]], 0, None)


def test_bad_images():
    for bad in (RGB.astype(np.float32), RGB[0], RGB[:, :2], RGB.tolist()):
        with pytest.raises(UserError):
            corrupt(bad, "fog", 1, 0)


def test_frost_without_imagecorruptions(monkeypatch):
    monkeypatch.setattr(cifar_c.importlib.util, "find_spec", lambda name: None)
    cifar_c._frost_pictures.cache_clear()
    try:
        with pytest.raises(UserError, match="pip install imagecorruptions"):
            corrupt(RGB, "frost", 1, 0)
    finally:
        cifar_c._frost_pictures.cache_clear()


def test_cache_is_reused(tmp_path, monkeypatch):
    calls = []
    real = cifar_c.corrupt

    def counting(images, name, severity, seed):
        calls.append((name, severity, seed))
        return real(images, name, severity, seed)

    monkeypatch.setattr(cifar_c, "corrupt", counting)
    names, severities = ["gaussian_noise", "contrast"], [1, 5]
    first = dict(corrupted_test_sets(RGB, names, severities, 3, tmp_path))
    assert len(calls) == 4 and set(first) == {(n, s) for n in names for s in severities}
    assert len(list(tmp_path.glob("*.safetensors"))) == 4
    second = dict(corrupted_test_sets(RGB, names, severities, 3, tmp_path))
    assert len(calls) == 4, "second call recomputed instead of reading the cache"
    for key, value in first.items():
        assert value.dtype == np.uint8 and np.array_equal(second[key], value)
        assert np.array_equal(value, real(RGB, *key, 3))
    # another seed or other images are other cache entries
    dict(corrupted_test_sets(RGB, ["gaussian_noise"], [1], 4, tmp_path))
    dict(corrupted_test_sets(RGB[:2], ["gaussian_noise"], [1], 3, tmp_path))
    assert len(calls) == 6
    # a damaged cache file is regenerated
    for path in tmp_path.glob("contrast_s5_*.safetensors"):
        path.write_bytes(b"garbage")
    again = dict(corrupted_test_sets(RGB, ["contrast"], [5], 3, tmp_path))
    assert len(calls) == 7 and np.array_equal(again[("contrast", 5)], first[("contrast", 5)])


def test_test_sets_without_cache_is_lazy():
    it = corrupted_test_sets(GREY, "fog", 2, 0, None)
    (key, value) = next(it)
    assert key == ("fog", 2) and value.shape == GREY.shape
    assert next(it, None) is None


def test_a_tampered_cache_entry_is_detected_and_made_again(tmp_path, capsys):
    """A cached set whose pixels were changed after bpc wrote it (a valid file, only other content) does not
    match its recorded digest: it is computed again, with one line saying so."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    first = dict(corrupted_test_sets(RGB, ["contrast"], [2], 3, tmp_path))[("contrast", 2)]
    (path,) = tmp_path.glob("contrast_s2_*.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta, images = f.metadata(), f.get_tensor("images")
    images[0, 0, 0, 0] ^= 1
    save_file({"images": images}, str(path), metadata=meta)
    again = dict(corrupted_test_sets(RGB, ["contrast"], [2], 3, tmp_path))[("contrast", 2)]
    assert np.array_equal(again, first)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not match its checksum" in err
    with safe_open(str(path), framework="pt") as f:
        assert torch.equal(f.get_tensor("images"), torch.from_numpy(first))  # the cache holds the right set again
