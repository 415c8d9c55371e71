"""CIFAR-10-C: 19 common corruptions at 5 severities (Hendrycks & Dietterich, ICLR 2019).

The constants are the CIFAR-10-C ones (not ImageNet-C). Each corruption is written here with numpy,
scipy.ndimage and Pillow, vectorised over the batch where the operation allows.

Conventions
-----------
* Input and output: uint8 ``[N, C, H, W]`` with ``C`` = 3 (RGB) or 1 (grey). Internally images are float32
  in [0, 1]; the result is rounded to the nearest integer and clipped to 0..255.
* Randomness: one ``numpy.random.Generator`` per chunk of the batch, seeded from
  ``(seed, name, severity, chunk index)``; the global random state is never used. A chunk holds
  ``max(1, 2**22 // (H*W))`` images (4096 at 32x32), so the output for an image depends only on the seed,
  the corruption, the severity, its position in the batch and the other images of its chunk.
* Image size: the protocol is defined at 32x32. Every spatial constant (blur sigmas and radii, motion
  length, glass-blur displacement, elastic displacements, the scale at which the frost pictures are
  cropped, the spatter smoothing) is multiplied by ``k = min(H, W) / 32``; relative constants (noise levels,
  zoom factors, pixelate factor, JPEG quality, contrast, brightness, saturation, fog strength) are used
  as-is. At 32x32 ``k = 1`` and the CIFAR-10-C constants apply unchanged. The fog fractal is drawn on the
  smallest power-of-two square covering the image and cropped to it (32 for both 32x32 and 28x28).
* Grey images (``C == 1``, e.g. 28x28 Fashion-MNIST): replicated to 3 channels, corrupted as RGB, and
  converted back to one channel with the ITU-R BT.601 luma weights ``0.299 R + 0.587 G + 0.114 B``
  before rounding. (Colour corruptions therefore act on grey images as they would on a grey RGB photo:
  e.g. ``saturate`` tints grey pixels red at severities with a saturation shift, as in the original,
  which shows up as a darkening after the luma conversion.)

Where the original generation code does something unexpected, the behaviour of the released data set
is kept and noted at the function (glass-blur pixel copies, zoom factor lists from ``np.arange``, five of
the six frost pictures).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import sys
import zlib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import UserError

STANDARD: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS: tuple[str, ...] = STANDARD + EXTRA

# Bump when any corruption's output changes, so stale cache files are not reused.
CACHE_VERSION = 1
_CHUNK_PIXELS = 1 << 22
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# CIFAR-10-C constants, severities 1..5.
_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    # (sigma, max_delta, iterations)
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    # (radius, alias_blur)
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # (radius, sigma)
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    # np.arange(1, stop, 0.01) as in the original: floating point puts 1.06 and 1.11 inside the first two
    # lists but leaves 1.16, 1.21 and 1.26 out of the last three (7, 12, 16, 21, 26 factors).
    "zoom_blur": tuple(tuple(float(z) for z in np.arange(1, stop, 0.01)) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    # (strength, wibble decay)
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    # (image weight, frost weight)
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    # (mean, std, zoom, threshold, blur radius, blur sigma, blend)
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    # (loc, scale, sigma, threshold, intensity, mode 0 = water / 1 = mud)
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    # (scale, shift) of the HSV saturation
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    # (alpha, sigma, affine jitter) as fractions of the image side (x 32 at CIFAR size)
    "elastic_transform": (
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    ),
}

_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
_FROST_HINT = (
    "the frost corruption needs the frost pictures of the imagecorruptions package: pip install imagecorruptions"
)


# ----------------------------------------------------------------------------------------------- helpers


def _scale(x: np.ndarray) -> float:
    return min(x.shape[-2], x.shape[-1]) / 32.0


def _gauss(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur over the last two axes only (never across images or channels)."""
    if sigma <= 0:
        return x
    sig = (0.0,) * (x.ndim - 2) + (float(sigma), float(sigma))
    return ndimage.gaussian_filter(x, sigma=sig, mode=mode, truncate=truncate)


def _luma(x: np.ndarray) -> np.ndarray:
    """[N, 3, H, W] -> [N, H, W] with the BT.601 weights."""
    return np.tensordot(_LUMA, x, axes=([0], [1])).astype(np.float32)


def _interp_matrix(src: np.ndarray, in_len: int) -> np.ndarray:
    """Linear-interpolation matrix [len(src), in_len] sampling a signal at (edge-clamped) positions src."""
    src = np.clip(np.asarray(src, dtype=np.float64), 0, in_len - 1)
    i0 = np.floor(src).astype(np.int64)
    w = src - i0
    i1 = np.minimum(i0 + 1, in_len - 1)
    rows = np.arange(len(src))
    m = np.zeros((len(src), in_len), dtype=np.float64)
    np.add.at(m, (rows, i0), 1 - w)
    np.add.at(m, (rows, i1), w)
    return m.astype(np.float32)


def _center_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """Magnify by ``zoom`` about the image centre and crop to the same size (bilinear), on the last 2 axes."""
    if zoom == 1:
        return x
    h, w = x.shape[-2:]
    ay = _interp_matrix((h - 1) / 2 + (np.arange(h) - (h - 1) / 2) / zoom, h)
    ax = _interp_matrix((w - 1) / 2 + (np.arange(w) - (w - 1) / 2) / zoom, w)
    return (ay @ x @ ax.T).astype(np.float32)


def _fold(t: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Map sample coordinates into [0, n-1] by reflection: 'mirror' = d c b | a b c d (reflect-101),
    'reflect' = c b a | a b c d (half-sample symmetric)."""
    if n == 1:
        return np.zeros_like(t)
    if mode == "mirror":
        period = 2 * (n - 1)
        t = np.abs(t) % period
        return np.where(t > n - 1, period - t, t)
    u = np.abs(t + 0.5) % (2 * n)
    u = np.where(u > n, 2 * n - u, u)
    return np.clip(u - 0.5, 0, n - 1)


def _sample(x: np.ndarray, sy: np.ndarray, sx: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear resampling: out[n, :, i, j] = x[n, :, sy[n, i, j], sx[n, i, j]]."""
    n_img, _, h, w = x.shape
    sy = _fold(sy, h, mode)
    sx = _fold(sx, w, mode)
    y0 = np.floor(sy).astype(np.int64)
    x0 = np.floor(sx).astype(np.int64)
    wy = (sy - y0).astype(np.float32)[..., None]
    wx = (sx - x0).astype(np.float32)[..., None]
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    xs = x.transpose(0, 2, 3, 1)
    n = np.arange(n_img)[:, None, None]
    top = xs[n, y0, x0] * (1 - wx) + xs[n, y0, x1] * wx
    bot = xs[n, y1, x0] * (1 - wx) + xs[n, y1, x1] * wx
    return np.ascontiguousarray((top * (1 - wy) + bot * wy).transpose(0, 3, 1, 2))


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """ImageMagick-style motion blur: a one-sided line of 2*ceil(radius)+1 taps at distance i = 0, 1, ...
    along the direction ``angle`` (per image), weighted by exp(-i^2 / (2 sigma^2)), edge pixels repeated."""
    n_img, _, h, w = x.shape
    width = 2 * math.ceil(radius) + 1 if radius > 0 else 1
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i**2) / (2 * max(sigma, 1e-6) ** 2))
    weights /= weights.sum()
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    ox = np.ceil(i[None, :] * np.cos(theta)[:, None] - 0.5).astype(np.int64)  # [N, width]
    oy = np.ceil(i[None, :] * np.sin(theta)[:, None] - 0.5).astype(np.int64)
    xs = x.transpose(0, 2, 3, 1)
    out = np.zeros(xs.shape, dtype=np.float32)
    n = np.arange(n_img)[:, None, None]
    rows, cols = np.arange(h), np.arange(w)
    for t in range(width):
        if weights[t] < 1e-7:  # weights decrease with t; the rest cannot change an 8-bit value
            break
        yy = np.clip(rows[None, :] + oy[:, t, None], 0, h - 1)
        xx = np.clip(cols[None, :] + ox[:, t, None], 0, w - 1)
        out += np.float32(weights[t]) * xs[n, yy[:, :, None], xx[:, None, :]]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _to_u8_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))


def _from_u8_nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0


# ------------------------------------------------------------------------------------------------- noise


def _gaussian_noise(x, c, rng):
    return x + rng.normal(0.0, c, x.shape).astype(np.float32)


def _shot_noise(x, c, rng):
    return (rng.poisson(x.astype(np.float64) * c) / c).astype(np.float32)


def _impulse_noise(x, c, rng):
    """Salt and pepper: a fraction ``c`` of the values (each channel separately) set to 0 or 1, half each."""
    hit = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(np.float32), x)


def _speckle_noise(x, c, rng):
    return x + x * rng.normal(0.0, c, x.shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------- blurs


def _gaussian_blur(x, c, rng):
    return _gauss(x, c * _scale(x))


def _glass_blur(x, c, rng):
    """Blur, locally scramble pixels, blur again.

    The original loops over pixels from the bottom-right corner, row by row, and "swaps" pixel (h, w) with
    (h + dy, w + dx), dy, dx drawn from ``randint(-delta, delta)`` (upper bound excluded, so {-1, 0} for
    delta = 1). The swap is written as a numpy tuple assignment of views, which copies instead of swapping,
    and the neighbour is always one the loop has not reached yet: each visited pixel takes the value of a
    random up/left neighbour of the image as it was before the pass. That is what the released data set
    contains, and it is a gather, done here at once for every pixel and image. Visited pixels are rows and
    columns delta+1 .. size-delta; the pass is repeated ``iterations`` times.
    """
    sigma, delta, iterations = c
    k = _scale(x)
    d = max(1, int(round(delta * k)))
    x = _gauss(x, sigma * k)
    n_img, _, h, w = x.shape
    ys, xs_ = np.arange(d + 1, h - d + 1), np.arange(d + 1, w - d + 1)
    if len(ys) == 0 or len(xs_) == 0:
        return _gauss(x, sigma * k)
    n = np.arange(n_img)[:, None, None]
    for _ in range(iterations):
        off = rng.integers(-d, d, size=(2, n_img, len(ys), len(xs_)))
        src_y = ys[None, :, None] + off[0]
        src_x = xs_[None, None, :] + off[1]
        nhwc = x.transpose(0, 2, 3, 1).copy()
        nhwc[:, d + 1 : h - d + 1, d + 1 : w - d + 1] = nhwc[n, src_y, src_x]
        x = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    return _gauss(x, sigma * k)


def _defocus_blur(x, c, rng):
    """Convolution with a disk of the given radius, itself smoothed by a small Gaussian (3x3 taps for
    radii up to 8 pixels, 5x5 above) against aliasing; reflect-101 borders."""
    radius, alias = c
    k = _scale(x)
    r, a = radius * k, alias * k
    rr = int(math.ceil(r))
    g = 1 if r <= 8 else 2
    grid = np.arange(-rr, rr + 1)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    disk = (yy**2 + xx**2 <= r**2).astype(np.float64)
    disk /= disk.sum()
    t = np.arange(-g, g + 1, dtype=np.float64)
    g1 = np.exp(-(t**2) / (2 * max(a, 1e-6) ** 2))
    g1 /= g1.sum()
    gk = np.outer(g1, g1)
    size = 2 * rr + 1
    kernel = np.zeros((size + 2 * g, size + 2 * g))
    for i in range(2 * g + 1):
        for j in range(2 * g + 1):
            kernel[i : i + size, j : j + size] += gk[i, j] * disk
    nz_r, nz_c = np.nonzero(kernel > 1e-7)
    kernel = kernel[nz_r.min() : nz_r.max() + 1, nz_c.min() : nz_c.max() + 1]
    kernel = (kernel / kernel.sum()).astype(np.float32)
    return ndimage.convolve(x, kernel[None, None], mode="mirror")


def _motion_blur_corruption(x, c, rng):
    radius, sigma = c
    k = _scale(x)
    angles = rng.uniform(-45, 45, size=x.shape[0])
    return _motion_blur(x, radius * k, sigma * k, angles)


def _zoom_blur(x, c, rng):
    out = np.zeros_like(x)
    for z in c:
        out += _center_zoom(x, z)
    return (x + out) / (len(c) + 1)


# ----------------------------------------------------------------------------------------------- weather


def _plasma_fractal(n_img: int, size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square fractal on a periodic size x size grid (size a power of two), per image, in [0, 1].

    As in the original, the random perturbation at a level is uniform in [-wibble^2, wibble^2], with wibble
    starting at 100 and divided by ``decay`` after each level.
    """
    m = np.zeros((n_img, size, size), dtype=np.float64)
    step, wibble = size, 100.0

    def noisy(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        right = np.roll(corners, -1, axis=2)
        m[:, half::step, half::step] = noisy(
            corners + right + np.roll(corners, -1, axis=1) + np.roll(right, -1, axis=1)
        )
        corners = m[:, 0::step, 0::step]
        centres = m[:, half::step, half::step]
        top = corners + np.roll(corners, -1, axis=2) + centres + np.roll(centres, 1, axis=1)
        left = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=2)
        m[:, 0::step, half::step] = noisy(top)
        m[:, half::step, 0::step] = noisy(left)
        step = half
        wibble /= decay
    m -= m.min(axis=(1, 2), keepdims=True)
    m /= np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12)
    return m.astype(np.float32)


def _fog(x, c, rng):
    strength, decay = c
    n_img, _, h, w = x.shape
    size = 1 << max(1, math.ceil(math.log2(max(h, w))))
    fractal = _plasma_fractal(n_img, size, decay, rng)[:, None, :h, :w]
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    return (x + strength * fractal) * max_val / (max_val + strength)


def frost_dir() -> Path:
    """The folder of frost pictures inside the installed ``imagecorruptions`` package (located without
    importing it, so its own dependencies are not loaded)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            folder = Path(loc) / "frost"
            if all((folder / f).is_file() for f in _FROST_FILES):
                return folder
    raise UserError(_FROST_HINT)


@lru_cache(maxsize=8)
def _frost_pictures(scale: float) -> tuple[np.ndarray, ...]:
    """The five frost pictures as float32 [3, h, w] in [0, 1], resized by ``scale`` with plain bilinear
    sampling at pixel centres (no antialiasing, like the OpenCV resize of the original)."""
    pictures = []
    for name in _FROST_FILES:
        with Image.open(frost_dir() / name) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        h, w = a.shape[:2]
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        ay = _interp_matrix((np.arange(nh) + 0.5) * (h / nh) - 0.5, h)
        ax = _interp_matrix((np.arange(nw) + 0.5) * (w / nw) - 0.5, w)
        pictures.append(np.ascontiguousarray(ay @ a.transpose(2, 0, 1) @ ax.T))
    return tuple(pictures)


def _frost(x, c, rng):
    """Blend with a random crop of one of the first five frost pictures (the original draws
    ``randint(5)``, so frost6.jpg is never used), shrunk by 0.2 * k."""
    img_w, frost_w = c
    n_img, _, h, w = x.shape
    pictures = _frost_pictures(round(0.2 * _scale(x), 6))
    which = rng.integers(0, len(pictures), size=n_img)
    out = np.empty_like(x)
    for i in range(n_img):
        pic = pictures[which[i]]
        ph, pw = pic.shape[1:]
        if ph < h or pw < w:
            pic = np.pad(pic, ((0, 0), (0, max(0, h - ph)), (0, max(0, w - pw))), mode="reflect")
            ph, pw = pic.shape[1:]
        top = rng.integers(0, ph - h + 1)
        left = rng.integers(0, pw - w + 1)
        out[i] = img_w * x[i] + frost_w * pic[:, top : top + h, left : left + w]
    return out


def _snow(x, c, rng):
    mean, std, zoom, threshold, radius, sigma, blend = c
    n_img, _, h, w = x.shape
    k = _scale(x)
    layer = rng.normal(mean, std, (n_img, 1, h, w)).astype(np.float32)
    layer = _center_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = np.clip(layer, 0, 1)
    layer = _motion_blur(layer, radius * k, sigma * k, rng.uniform(-135, -45, size=n_img))
    grey = _luma(x)[:, None]
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return x + layer + layer[:, :, ::-1, ::-1]


def _canny(img: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges of each [H, W] image of a batch [N, H, W] (0..255 scale): 3x3 Sobel, L1 gradient
    magnitude, non-maximum suppression along the gradient direction (4 sectors), hysteresis between
    ``low`` and ``high`` with 8-connectivity inside each image."""
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)[None]
    gx = ndimage.correlate(img, sobel, mode="nearest")
    gy = ndimage.correlate(img, sobel.transpose(0, 2, 1), mode="nearest")
    ax, ay = np.abs(gx), np.abs(gy)
    mag = ax + ay
    tan22 = math.tan(math.pi / 8)
    horizontal = ay <= tan22 * ax
    vertical = ay * tan22 > ax
    same_sign = gx * gy > 0
    h, w = img.shape[1:]
    pad = np.pad(mag, ((0, 0), (1, 1), (1, 1)))

    def nb(dy, dx):
        return pad[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    n1 = np.where(horizontal, nb(0, -1), np.where(vertical, nb(-1, 0), np.where(same_sign, nb(-1, -1), nb(-1, 1))))
    n2 = np.where(horizontal, nb(0, 1), np.where(vertical, nb(1, 0), np.where(same_sign, nb(1, 1), nb(1, -1))))
    peak = (mag > n1) & (mag >= n2) & (mag > low)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # connect within an image only
    labels, count = ndimage.label(peak, structure=structure)
    keep = np.zeros(count + 1, dtype=bool)
    keep[labels[peak & (mag > high)]] = True
    keep[0] = False
    return keep[labels]


def _equalize_hist(a: np.ndarray) -> np.ndarray:
    """Histogram equalisation of each uint8 image of a batch [N, H, W] (OpenCV's mapping)."""
    n_img = a.shape[0]
    flat = a.reshape(n_img, -1).astype(np.int64)
    total = flat.shape[1]
    hist = np.bincount((flat + 256 * np.arange(n_img)[:, None]).ravel(), minlength=256 * n_img).reshape(n_img, 256)
    cdf = hist.cumsum(axis=1)
    first = np.argmax(hist > 0, axis=1)
    cmin = hist[np.arange(n_img), first][:, None]
    denom = np.maximum(total - cmin, 1)
    lut = np.clip(np.rint((cdf - cmin) * (255.0 / denom)), 0, 255)
    flat_image = (cmin == total)[:, 0]
    lut[flat_image] = np.arange(256)  # one grey level: unchanged
    return np.take_along_axis(lut, flat, axis=1).reshape(a.shape).astype(np.uint8)


def _spatter(x, c, rng):
    loc, scale, sigma, threshold, intensity, mode = c
    n_img, _, h, w = x.shape
    k = _scale(x)
    liquid = rng.normal(loc, scale, (n_img, h, w)).astype(np.float32)
    liquid = _gauss(liquid, sigma * k)
    liquid[liquid < threshold] = 0
    if mode == 0:  # water: shaded, pale turquoise drops
        l8 = np.clip(liquid * 255, 0, 255).astype(np.uint8).astype(np.float32)
        edges = _canny(l8, 50, 150)
        if edges.any():
            # distance to the nearest edge of the same image (images kept > 20 apart along axis 0)
            dist = ndimage.distance_transform_edt(~edges, sampling=(1e3, 1.0, 1.0))
            dist = np.minimum(dist, 20.0)
        else:
            dist = np.full(edges.shape, 20.0)
        dist = np.rint(ndimage.uniform_filter(dist, size=(1, 3, 3), mode="mirror"))
        dist = _equalize_hist(dist.astype(np.uint8)).astype(np.float32)
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)[None]
        dist = np.clip(np.rint(ndimage.correlate(dist, emboss, mode="mirror")), 0, 255)
        dist = np.rint(ndimage.uniform_filter(dist, size=(1, 3, 3), mode="mirror"))
        m = l8 * dist
        m /= np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12)
        m *= intensity
        colour = np.array([175, 238, 238], dtype=np.float32)[None, :, None, None] / 255.0
        return x + m[:, None] * colour
    # mud: opaque brown blobs
    m = _gauss((liquid > threshold).astype(np.float32), intensity * k)
    m[m < 0.8] = 0
    colour = np.array([63, 42, 20], dtype=np.float32)[None, :, None, None] / 255.0
    return x * (1 - m[:, None]) + colour * m[:, None]


# ----------------------------------------------------------------------------------------------- digital


def _contrast(x, c, rng):
    means = x.mean(axis=(2, 3), keepdims=True)  # per image and channel
    return (x - means) * c + means


def _brightness(x, c, rng):
    """Shift the HSV value by c. With hue and saturation fixed, RGB is proportional to the value, so
    this is a rescaling of each pixel (black pixels become grey)."""
    v = x.max(axis=1, keepdims=True)
    v_new = np.clip(v + c, 0, 1)
    return np.where(v > 0, x * (v_new / np.maximum(v, 1e-12)), v_new)


def _saturate(x, c, rng):
    """Set the HSV saturation to clip(s * scale + shift, 0, 1). With hue and value fixed, each channel
    moves linearly between the value and the grey level. Grey pixels have hue 0 (red), as in the
    skimage conversion of the original."""
    scale, shift = c
    v = x.max(axis=1, keepdims=True)
    lo = x.min(axis=1, keepdims=True)
    s = np.where(v > 0, (v - lo) / np.maximum(v, 1e-12), 0)
    s_new = np.clip(s * scale + shift, 0, 1)
    coloured = v - (s_new / np.maximum(s, 1e-12)) * (v - x)
    red = np.concatenate([v, v * (1 - s_new), v * (1 - s_new)], axis=1)
    return np.where(s > 0, coloured, red)


def _jpeg_compression(x, c, rng):
    a = _to_u8_nhwc(x)
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        buf = io.BytesIO()
        Image.fromarray(a[i]).save(buf, format="JPEG", quality=int(c))
        buf.seek(0)
        with Image.open(buf) as im:
            out[i] = np.asarray(im.convert("RGB"))
    return _from_u8_nhwc(out)


def _pixelate(x, c, rng):
    """Box-downsample to int(size * c) and box-upsample back (Pillow)."""
    a = _to_u8_nhwc(x)
    h, w = a.shape[1:3]
    small = (max(1, int(w * c)), max(1, int(h * c)))
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        im = Image.fromarray(a[i]).resize(small, Image.Resampling.BOX)
        out[i] = np.asarray(im.resize((w, h), Image.Resampling.BOX))
    return _from_u8_nhwc(out)


def _elastic_transform(x, c, rng):
    """Random affine map (three control points around the centre jittered by up to ``affine`` pixels,
    reflect-101 borders), then a smooth random displacement field (uniform noise blurred with a Gaussian
    of ``sigma``, truncated at 3 sigma, times ``alpha``; half-sample reflection at borders). All three
    constants are fractions of the image side. Both steps interpolate bilinearly."""
    n_img, _, h, w = x.shape
    side = min(h, w)
    alpha, sigma, affine = (v * side for v in c)
    cx, cy, sq = w // 2, h // 2, side // 3
    pts1 = np.array([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]], dtype=np.float64)  # (x, y)
    pts2 = pts1[None] + rng.uniform(-affine, affine, size=(n_img, 3, 2))
    design = np.concatenate([pts1, np.ones((3, 1))], axis=1)
    mt = np.linalg.solve(np.broadcast_to(design, (n_img, 3, 3)), pts2)  # dst = [src, 1] @ mt
    lin = mt[:, :2, :].transpose(0, 2, 1)  # dst = lin @ src + shift
    shift = mt[:, 2, :]
    inv = np.linalg.inv(lin)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    dx = xx[None] - shift[:, 0, None, None]
    dy = yy[None] - shift[:, 1, None, None]
    src_x = inv[:, 0, 0, None, None] * dx + inv[:, 0, 1, None, None] * dy
    src_y = inv[:, 1, 0, None, None] * dx + inv[:, 1, 1, None, None] * dy
    x = _sample(x, src_y, src_x, "mirror")
    if alpha > 0:
        fx = _gauss(rng.uniform(-1, 1, (n_img, h, w)), sigma, mode="reflect", truncate=3.0) * alpha
        fy = _gauss(rng.uniform(-1, 1, (n_img, h, w)), sigma, mode="reflect", truncate=3.0) * alpha
        x = _sample(x, yy[None] + fy, xx[None] + fx, "reflect")
    return x


_FUNCTIONS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur_corruption,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "spatter": _spatter,
    "saturate": _saturate,
}
assert set(_FUNCTIONS) == set(CORRUPTIONS) == set(_PARAMS)


# ------------------------------------------------------------------------------------------------ public


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in _FUNCTIONS:
        raise UserError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
    return name


def _check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise UserError(f"corruption severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UserError(f"corruption seed must be an integer, got {seed!r}")
    return int(seed)


def _check_images(images) -> np.ndarray:
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[1] not in (1, 3)
    ):
        desc = (
            f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        )
        raise UserError(f"corruptions take uint8 images of shape [N, C, H, W] with C = 1 or 3, got a {desc}")
    return images


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to uint8 images [N, C, H, W] (C = 1 or 3).

    Returns a new uint8 array of the same shape. The result is a function of the images, name, severity
    and seed only. Raises :class:`UserError` for an unknown name, a severity outside 1..5 or bad images.
    """
    fn = _FUNCTIONS[_check_name(name)]
    severity = _check_severity(severity)
    seed = _check_seed(seed)
    images = _check_images(images)
    params = _PARAMS[name][severity - 1]
    n_img, channels, h, w = images.shape
    out = np.empty_like(images)
    if n_img == 0:
        return out
    entropy = [seed % (1 << 64), zlib.crc32(name.encode()), severity]
    chunk = max(1, _CHUNK_PIXELS // (h * w))
    for index, start in enumerate(range(0, n_img, chunk)):
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))
        x = images[start : start + chunk].astype(np.float32) / 255.0
        if channels == 1:
            x = np.repeat(x, 3, axis=1)
        y = np.clip(fn(x, params, rng), 0, 1)
        if channels == 1:
            y = _luma(y)[:, None]
        out[start : start + chunk] = np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)
    return out


def _images_digest(images: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{images.dtype.str}{images.shape}".encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


def corrupted_test_sets(
    images: np.ndarray,
    names: Iterable[str] | str = CORRUPTIONS,
    severities: Iterable[int] | int = (1, 2, 3, 4, 5),
    seed: int = 0,
    cache_dir: Path | str | None = None,
) -> Iterator[tuple[tuple[str, int], np.ndarray]]:
    """Yield ``((name, severity), corrupted uint8 images)`` for every name and severity, in that order.

    Arguments are checked at once (not at the first iteration). With ``cache_dir``, each set is stored as
    ``<cache_dir>/<name>_s<severity>_<key>.safetensors`` (tensor ``images``), the key hashing the input
    images' bytes and shape, the name, the severity, the seed and :data:`CACHE_VERSION`; a later call with
    the same inputs reads the file instead of recomputing. An unreadable or mismatched cache file is
    regenerated. Sets are produced one at a time, so ``dict(corrupted_test_sets(...))`` holds them all
    but a loop over the iterator holds one.
    """
    images = _check_images(images)
    names = (names,) if isinstance(names, str) else tuple(names)
    severities = (severities,) if isinstance(severities, (int, np.integer)) else tuple(severities)
    for name in names:
        _check_name(name)
    severities = tuple(_check_severity(s) for s in severities)
    seed = _check_seed(seed)
    cache = Path(cache_dir) if cache_dir is not None else None
    digest = _images_digest(images) if cache is not None else ""
    return _generate(images, names, severities, seed, cache, digest)


def _generate(images, names, severities, seed, cache, digest):
    for name in names:
        for severity in severities:
            if cache is None:
                yield (name, severity), corrupt(images, name, severity, seed)
                continue
            key = hashlib.sha256(f"v{CACHE_VERSION}|{digest}|{name}|{severity}|{seed}".encode()).hexdigest()[:24]
            path = cache / f"{name}_s{severity}_{key}.safetensors"
            cached = _read_cache(path, images.shape)
            if cached is None:
                cached = corrupt(images, name, severity, seed)
                _write_cache(path, cached, name, severity, seed)
            yield (name, severity), cached


def _read_cache(path: Path, shape) -> np.ndarray | None:
    from ..io import load_tensors

    if not path.is_file():
        return None
    try:
        a = load_tensors(path)["images"].numpy()
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            recorded = (f.metadata() or {}).get("sha256")
    except (UserError, KeyError, OSError, ValueError):
        return None
    if a.dtype != np.uint8 or a.shape != tuple(shape):
        return None
    if recorded != _content_digest(a):  # changed after it was written (or written before digests): made again
        if recorded is not None:
            print(
                f"bpc: the cached corrupted set {path} does not match its checksum; computing it again", file=sys.stderr
            )
        return None
    return a


def _content_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def _write_cache(path: Path, images: np.ndarray, name: str, severity: int, seed: int) -> None:
    import torch

    from ..io import save_tensors

    meta = {"corruption": name, "severity": str(severity), "seed": str(seed), "version": str(CACHE_VERSION)}
    meta["sha256"] = _content_digest(images)  # checked at every read
    save_tensors(path, {"images": torch.from_numpy(np.ascontiguousarray(images))}, metadata=meta)
