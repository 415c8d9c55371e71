"""DSA (one shared, seeded, differentiable transform per call) and train-fitted ZCA whitening."""

import math

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from pseudocoresets.augment import DSA, build_dsa
from pseudocoresets.data.zca import ZCA
from pseudocoresets.augment.dsa import DEFAULT_STRATEGY, FAMILIES
from pseudocoresets.errors import UserError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Keep CPU use light; multi-threaded MKL eigh also slows down ~100x when the cores are busy.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(b=7, c=3, size=16, seed=0):
    return torch.rand(b, c, size, size, generator=gen(1000 + seed)) + 0.5  # strictly positive pixels


def seed_where(dsa, predicate, limit=200):
    """First seed whose draw satisfies ``predicate``."""
    for s in range(limit):
        if predicate(dsa.sample(gen(s))):
            return s
    raise AssertionError("no seed found")


def blob(size, row, col, sigma=1.5):
    r = torch.arange(size, dtype=torch.float64)[:, None]
    c = torch.arange(size, dtype=torch.float64)[None, :]
    return torch.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma**2)).reshape(1, 1, size, size)


def centroid(img):
    img = img[0, 0]
    r = torch.arange(img.shape[0], dtype=img.dtype)[:, None]
    c = torch.arange(img.shape[1], dtype=img.dtype)[None, :]
    m = img.sum()
    return float((img * r).sum() / m), float((img * c).sum() / m)


# --------------------------------------------------------------------------------------------- DSA


@pytest.mark.parametrize("strategy", [DEFAULT_STRATEGY, *FAMILIES])
def test_same_seed_same_transform_for_batches_of_different_sizes(strategy):
    dsa = DSA(strategy)
    x = images(7)
    for seed in range(6):
        big = dsa(x, gen(seed))
        small = dsa(x[:3].clone(), gen(seed))
        assert big.shape == x.shape and small.shape == (3, *x.shape[1:])
        assert torch.equal(big[:3], small), (strategy, seed, dsa.sample(gen(seed)))


def test_one_draw_applies_identically_to_every_image():
    # Siamese: the same image placed at every batch position is transformed identically.
    dsa = DSA()
    one = images(1)
    batch = one.expand(5, -1, -1, -1).contiguous()
    for seed in range(12):
        out = dsa(batch, gen(seed))
        assert torch.equal(out, out[:1].expand_as(out)), dsa.sample(gen(seed))


def test_sampling_is_seeded_uses_only_the_generator_and_varies_with_the_seed():
    dsa = DSA()
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    draws = [dsa.sample(gen(s)) for s in range(40)]
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG was not touched
    assert [dsa.sample(gen(s)) for s in range(40)] == draws  # reproducible
    assert {d["op"] for d in draws} == set(FAMILIES)  # every family gets drawn
    continuous = [repr(sorted(d.items())) for d in draws if d["op"] != "flip"]  # a flip draw is one of two
    assert len(set(continuous)) == len(continuous) >= 25
    x = images(4)
    outs = [dsa(x, gen(s)) for s in range(8)]
    differing = sum(not torch.equal(outs[i], outs[j]) for i in range(8) for j in range(i + 1, 8))
    assert differing >= 25  # of 28 pairs; flips with the same outcome may coincide
    # A generator advanced by one draw gives the next (different) draw.
    g = gen(5)
    first, second = dsa.sample(g), dsa.sample(g)
    assert first != second


def test_sample_ranges():
    draws = [DSA(op).sample(gen(s)) for op in FAMILIES for s in range(60)]
    by_op = {op: [d for d in draws if d["op"] == op] for op in FAMILIES}
    for d in by_op["color"]:
        assert -0.5 <= d["brightness"] <= 0.5 and 0.0 <= d["saturation"] <= 2.0 and 0.5 <= d["contrast"] <= 1.5
    for d in by_op["scale"]:
        assert 1 / 1.2 <= d["sx"] <= 1.2 and 1 / 1.2 <= d["sy"] <= 1.2
    assert all(abs(d["degrees"]) <= 15.0 for d in by_op["rotate"])
    assert max(abs(d["degrees"]) for d in by_op["rotate"]) > 10.0
    flips = [d["flip"] for d in by_op["flip"]]
    assert 15 <= sum(flips) <= 45
    shifts = {DSA.crop_shifts(d, 32, 32) for d in by_op["crop"]}
    assert all(-4 <= dy <= 4 and -4 <= dx <= 4 for dy, dx in shifts)  # 12.5% of 32 = 4 pixels
    assert {dy for dy, _ in shifts} == {dx for _, dx in shifts} == set(range(-4, 5))  # every shift occurs


@pytest.mark.parametrize("op", FAMILIES)
def test_gradients_reach_the_pixels(op):
    dsa = DSA(op)
    weights = torch.randn(3, 3, 16, 16, generator=gen(7))
    for seed in range(3):
        x = images(3, seed=seed).requires_grad_(True)
        out = dsa(x, gen(seed))
        assert out.requires_grad
        (out * weights).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert x.grad.abs().sum() > 0, (op, dsa.sample(gen(seed)))


def test_crop_gradient_is_the_mask_of_kept_pixels():
    dsa = DSA("crop")
    seed = seed_where(dsa, lambda p: all(DSA.crop_shifts(p, 16, 16)))
    dy, dx = DSA.crop_shifts(dsa.sample(gen(seed)), 16, 16)
    x = images(2).requires_grad_(True)
    dsa(x, gen(seed)).sum().backward()
    kept = torch.zeros(16, 16)
    kept[max(-dy, 0) : 16 - max(dy, 0), max(-dx, 0) : 16 - max(dx, 0)] = 1
    assert torch.equal(x.grad, kept.expand_as(x.grad))


def test_flip_equals_torch_flip_on_width_when_drawn():
    dsa = DSA("flip")
    x = images(4)
    s_flip = seed_where(dsa, lambda p: p["flip"])
    s_keep = seed_where(dsa, lambda p: not p["flip"])
    assert torch.equal(dsa(x, gen(s_flip)), torch.flip(x, dims=[3]))
    assert not torch.equal(dsa(x, gen(s_flip)), x)
    assert torch.equal(dsa(x, gen(s_keep)), x)


def test_color_brightness_adds_a_constant_and_the_sequence_matches_the_formulas():
    dsa = DSA("color")
    x = images(4)
    out = dsa.apply(x, {"op": "color", "brightness": 0.3, "saturation": 1.0, "contrast": 1.0})
    assert torch.allclose(out - x, torch.full_like(x, 0.3), atol=1e-6)

    p = dsa.sample(gen(3))
    y = x + p["brightness"]
    m = y.mean(dim=1, keepdim=True)
    y = (y - m) * p["saturation"] + m
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - m) * p["contrast"] + m
    assert torch.allclose(dsa.apply(x, p), y, atol=1e-6)
    assert not torch.allclose(dsa.apply(x, p), x, atol=1e-3)

    # Saturation 0 makes every channel equal to the per-pixel channel mean.
    grey = dsa.apply(x, {"op": "color", "brightness": 0.0, "saturation": 0.0, "contrast": 1.0})
    assert torch.allclose(grey, x.mean(dim=1, keepdim=True).expand_as(x), atol=1e-6)
    # Contrast keeps each image's mean and scales its deviations.
    c = dsa.apply(x, {"op": "color", "brightness": 0.0, "saturation": 1.0, "contrast": 1.5})
    assert torch.allclose(c.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    assert torch.allclose(c.std(dim=(1, 2, 3)), 1.5 * x.std(dim=(1, 2, 3)), atol=1e-5)


@pytest.mark.parametrize("size", [16, 28, 32])
def test_cutout_zeroes_one_square_of_half_the_size(size):
    dsa = DSA("cutout")
    side = size // 2
    x = images(3, size=size)
    corners = set()
    for seed in range(8):
        out = dsa(x, gen(seed))
        zero = out == 0
        assert torch.equal(zero, zero[:1, :1].expand_as(zero))  # same region in every image and channel
        assert int(zero[0, 0].sum()) == side * side  # (0.5 * size)^2 pixels per channel
        rows = zero[0, 0].any(dim=1).nonzero().flatten()
        cols = zero[0, 0].any(dim=0).nonzero().flatten()
        assert len(rows) == side and len(cols) == side  # a square, not some other shape
        assert int(rows[-1] - rows[0]) == side - 1 and int(cols[-1] - cols[0]) == side - 1
        assert torch.equal(out[~zero], x[~zero])  # the rest is untouched
        corners.add((int(rows[0]), int(cols[0])))
    assert len(corners) >= 4  # the square moves between draws


def test_crop_translates_content():
    dsa = DSA("crop")
    size = 16
    x = torch.arange(2 * 3 * size * size, dtype=torch.float32).reshape(2, 3, size, size) + 1.0
    seed = seed_where(dsa, lambda p: all(DSA.crop_shifts(p, size, size)))
    p = dsa.sample(gen(seed))
    dy, dx = DSA.crop_shifts(p, size, size)
    out = dsa.apply(x, p)
    for i in range(size):
        for j in range(size):
            si, sj = i - dy, j - dx
            expected = x[..., si, sj] if 0 <= si < size and 0 <= sj < size else torch.zeros(2, 3)
            assert torch.equal(out[..., i, j], expected), (i, j, dy, dx)
    # The explicit shift convention: positive dy/dx moves content down/right.
    right = dsa.apply(x, {"op": "crop", "crop_pad": 0.125, "u_y": 0.5, "u_x": 0.99})
    assert DSA.crop_shifts({"crop_pad": 0.125, "u_y": 0.5, "u_x": 0.99}, size, size) == (0, 2)
    assert torch.equal(right[..., :, 2:], x[..., :, :-2]) and (right[..., :, :2] == 0).all()


def test_rotate_keeps_the_centre_and_turns_content_by_the_sampled_angle():
    size, c = 33, 16  # odd size: the centre is a pixel, which rotation maps onto itself
    dsa = DSA("rotate")
    x = images(2, size=size)
    for seed in range(4):
        p = dsa.sample(gen(seed))
        out = dsa.apply(x, p)
        assert torch.allclose(out[..., c, c], x[..., c, c], atol=1e-5)
        assert not torch.allclose(out, x, atol=1e-3)
    # A blob 10 px right of the centre ends up at angle +a (counter-clockwise on screen).
    img = blob(size, c, c + 10)
    for degrees in (15.0, -15.0, dsa.sample(gen(1))["degrees"]):
        out = dsa.apply(img, {"op": "rotate", "degrees": degrees})
        a = math.radians(degrees)
        r, col = centroid(out)
        assert abs(r - (c - 10 * math.sin(a))) < 0.2 and abs(col - (c + 10 * math.cos(a))) < 0.2, (degrees, r, col)


def test_scale_changes_the_image_and_zooms_about_the_centre():
    dsa = DSA("scale")
    x = images(2)
    for seed in range(4):
        assert not torch.allclose(dsa(x, gen(seed)), x, atol=1e-3)
    assert torch.allclose(dsa.apply(x, {"op": "scale", "sx": 1.0, "sy": 1.0}), x, atol=1e-5)
    # sx = sy = 1.2 samples a wider area, so a centred blob shrinks by 1.2 and stays centred.
    size, c = 33, 16
    img = blob(size, c, c, sigma=3.0)
    out = dsa.apply(img, {"op": "scale", "sx": 1.2, "sy": 1.2})
    r, col = centroid(out)
    assert abs(r - c) < 1e-6 and abs(col - c) < 1e-6

    def spread(t):
        coords = (torch.arange(size, dtype=t.dtype) - c) ** 2
        return float((t[0, 0] * coords[None, :]).sum() / t[0, 0].sum())

    assert abs(math.sqrt(spread(out) / spread(img)) - 1 / 1.2) < 0.03


@pytest.mark.parametrize("op", FAMILIES)
def test_one_channel_and_dtype_preserved(op):
    dsa = DSA(op)
    x = torch.rand(5, 1, 28, 28, generator=gen(0), dtype=torch.float64)
    for seed in range(3):
        out = dsa(x, gen(seed))
        assert out.shape == x.shape and out.dtype == torch.float64 and out.device == x.device
        assert torch.isfinite(out).all()


def test_build_dsa_and_bad_strategies():
    assert build_dsa(False) is None
    dsa = build_dsa(True)
    assert isinstance(dsa, DSA) and dsa.ops == tuple(DEFAULT_STRATEGY.split("_"))
    with pytest.raises(UserError):
        DSA("color_blur")
    with pytest.raises(UserError):
        DSA("")
    with pytest.raises(ValueError):
        DSA().apply(torch.rand(3, 8, 8), {"op": "flip", "flip": True})


# --------------------------------------------------------------------------------------------- ZCA


def correlated(n, d, seed):
    g = gen(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    scales = torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    return ((torch.randn(n, d, generator=g, dtype=torch.float64) * scales) @ q.T + 2.0).float()


def test_zca_round_trip_recovers_the_input():
    x = correlated(300, 48, 0).reshape(300, 3, 4, 4)
    zca = ZCA.fit(x)
    z = zca.transform(x)
    assert z.shape == x.shape and z.dtype == torch.float32
    assert not torch.allclose(z, x, atol=1e-2)
    assert torch.allclose(zca.inverse(z), x, atol=1e-4)
    # 28x28x1 images (784 features, fewer images than features) also round-trip.
    y = torch.rand(200, 1, 28, 28, generator=gen(1))
    zca = ZCA.fit(y)
    assert zca.num_features == 784
    assert torch.allclose(zca.inverse(zca.transform(y)), y, atol=1e-4)


def test_zca_whitens_to_identity_covariance_with_tiny_regularization():
    x = correlated(4000, 20, 2)
    assert (torch.cov(x.T.double()) - torch.eye(20, dtype=torch.float64)).abs().max() > 1.0
    z = ZCA.fit(x, regularization=1e-8).transform(x).double()
    assert z.mean(0).abs().max() < 1e-5
    assert torch.allclose(torch.cov(z.T), torch.eye(20, dtype=torch.float64), atol=1e-4)
    # ZCA (unlike PCA whitening) stays close to the data: whitened features correlate with the originals.
    corr = [torch.corrcoef(torch.stack([x[:, i].double(), z[:, i]]))[0, 1] for i in range(20)]
    assert min(corr) > 0.3


def test_zca_formula_is_regularised_and_matches_an_independent_computation():
    x = correlated(500, 12, 3).double()
    eps = 0.1
    zca = ZCA.fit(x)  # default regularization 0.1
    xc = x - x.mean(0)
    cov = xc.T @ xc / (len(x) - 1)
    u, s, _ = torch.linalg.svd(cov)
    w = u @ torch.diag((s + eps).rsqrt()) @ u.T
    assert torch.allclose(zca.transform(x), xc @ w, atol=1e-10)
    # With eps = 0.1 the whitened covariance is lambda / (lambda + eps), not the identity.
    got = torch.linalg.eigvalsh(torch.cov(zca.transform(x).T))
    assert torch.allclose(got, torch.sort(s / (s + eps)).values, atol=1e-8)


def test_zca_test_split_uses_the_train_fit():
    train = correlated(400, 30, 4)
    test = correlated(100, 30, 5) * 1.5 - 1.0
    zca = ZCA.fit(train)
    mean = train.double().mean(0)
    xc = train.double() - mean
    u, s, _ = torch.linalg.svd(xc.T @ xc / (len(train) - 1))
    w = u @ torch.diag((s + 0.1).rsqrt()) @ u.T
    manual = ((test.double() - mean) @ w).float()
    assert torch.allclose(zca.transform(test), manual, atol=1e-5)
    assert not torch.allclose(zca.transform(test), ZCA.fit(test).transform(test), atol=1e-2)
    with pytest.raises(ValueError):
        zca.transform(torch.rand(4, 31))


def test_zca_state_round_trips_through_safetensors_bytes():
    x = correlated(200, 27, 6).reshape(200, 3, 3, 3)
    zca = ZCA.fit(x, regularization=0.05)
    blob_bytes = st_save(zca.state())
    restored = ZCA.from_state(st_load(blob_bytes))
    assert restored.regularization == 0.05
    assert torch.equal(restored.transform(x), zca.transform(x))
    assert torch.equal(restored.inverse(zca.transform(x)), zca.inverse(zca.transform(x)))
    with pytest.raises(UserError):
        ZCA.from_state({"mean": torch.zeros(3)})


# ---------------------------------------------------------------- per-image draws (the reference DSA's)
@pytest.mark.parametrize("op", FAMILIES)
def test_per_image_draw_equals_each_image_transformed_by_its_own_single_draw(op):
    dsa = DSA(op, per_image=True)
    x = torch.rand(5, 3, 12, 12, dtype=torch.float64)
    for seed in range(6):
        params = dsa.sample(gen(seed), 5)
        out = dsa.apply(x, params)
        for i in range(5):
            single = {
                k: (v[i].item() if isinstance(v, torch.Tensor) else v) for k, v in params.items() if k != "per_image"
            }
            assert torch.allclose(out[i : i + 1], DSA(op).apply(x[i : i + 1], single), atol=1e-12), (op, seed, i)


def test_per_image_draws_differ_between_images_and_pair_prefixes_of_two_batches():
    dsa = DSA("rotate", per_image=True)
    x = torch.rand(1, 1, 10, 10).expand(6, 1, 10, 10).contiguous()
    params = dsa.sample(gen(0), 6)
    out = dsa.apply(x, params)
    assert not torch.allclose(out[0], out[1])  # the same picture turned by two angles
    real, syn = torch.rand(6, 1, 10, 10), torch.rand(3, 1, 10, 10)
    real[:3] = syn  # images i of both batches get the same transform
    assert torch.equal(dsa.apply(real, params)[:3], dsa.apply(syn, params))
    y = torch.rand(4, 3, 8, 8, requires_grad=True)
    DSA("crop", per_image=True)(y, gen(1)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="fewer images"):
        dsa.apply(torch.rand(7, 1, 10, 10), params)
