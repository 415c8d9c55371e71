"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021).

DSA augments real and synthetic images with the *same* random transformation so that matching
objectives compare like with like, and every transformation is differentiable with respect to
the pixels so gradients flow back into the synthetic images.

This module implements the single-operation ("S") mode: each call samples one operation family
from the strategy string (default ``color_crop_cutout_flip_scale_rotate``) and random numbers for it:
with ``per_image=False`` one set applied identically to every image of the batch; with ``per_image=True``
(the reference DSA's behaviour, and the pipeline's default) one set per image.
Sampling and applying are separate, so one draw can be applied to batches of any size::

    params = dsa.sample(g)             # one draw, taken only from the generator g
    real_aug = dsa.apply(real, params)  # e.g. 256 real images
    syn_aug = dsa.apply(syn, params)    # e.g. 10 synthetic images, exactly the same transform

Operation families (defaults from the paper's reference settings):

``color``
    brightness, saturation and contrast, applied in that order:
    brightness adds ``b ~ (U(0,1) - 0.5) * brightness`` to every pixel; saturation scales each
    pixel's deviation from its mean over channels by ``s ~ U(0,1) * saturation``
    (a no-op for 1-channel images); contrast scales each image's deviation from its own mean
    (over channels and pixels) by ``c ~ U(0,1) + contrast``, i.e. U(0.5, 1.5) by default.
``crop``
    translation by an integer number of pixels, independently along height and width, drawn
    uniformly from ``{-m, ..., m}`` with ``m = int(size * crop_pad + 0.5)`` (4 pixels for 28 or
    32); uncovered pixels are zero. Positive shifts move content down / to the right.
``cutout``
    zeroes one square of side ``int(size * cutout_ratio + 0.5)`` (all channels). Unlike the
    reference code, whose squares may hang over the border and then zero fewer pixels, the square
    here always lies fully inside the image, so exactly ``side**2`` pixels per channel are zeroed.
``flip``
    with probability ``flip_prob`` the batch is mirrored along the width axis.
``scale``
    independent scale factors ``sx, sy ~ U(1/scale_ratio, scale_ratio)`` for the sampling grid
    about the image centre (bilinear ``grid_sample``, zero padding, ``align_corners=True``);
    a factor above 1 zooms out (content shrinks), below 1 zooms in.
``rotate``
    rotation about the image centre by ``a ~ U(-rotate_degrees, rotate_degrees)`` degrees
    (bilinear ``grid_sample``, zero padding, ``align_corners=True``). A positive angle turns the
    content counter-clockwise as the image is displayed (row 0 at the top).

All random numbers come from the generator passed to :meth:`DSA.sample` (on the generator's
device), so draws are reproducible and can be replayed from a saved generator state.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import UserError

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")

__all__ = ["DEFAULT_STRATEGY", "FAMILIES", "DSA", "build_dsa"]


def _uniform(g: torch.Generator) -> float:
    """One draw from U(0, 1) taken from ``g``."""
    return float(torch.rand((), generator=g, device=g.device))


def _randint(low: int, high: int, g: torch.Generator) -> int:
    """One integer uniform on ``{low, ..., high - 1}`` taken from ``g``."""
    return int(torch.randint(low, high, (1,), generator=g, device=g.device))


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"DSA expects images [B, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"DSA expects floating-point images, got {x.dtype}")


def _per_image(v, x: torch.Tensor):
    """A float as is; a tensor of per-image values [>= B] as [B, 1, 1, 1] for broadcasting over x [B, C, H, W]."""
    if isinstance(v, torch.Tensor):
        return v[: x.shape[0]].to(x.dtype).reshape(-1, 1, 1, 1)
    return v


def brightness(x: torch.Tensor, b) -> torch.Tensor:
    """Add the constant ``b`` (one per image when a tensor) to every pixel."""
    return x + _per_image(b, x)


def saturation(x: torch.Tensor, s) -> torch.Tensor:
    """Scale each pixel's deviation from its mean over channels by ``s``."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_image(s, x) + mean


def contrast(x: torch.Tensor, c) -> torch.Tensor:
    """Scale each image's deviation from its own mean (over channels and pixels) by ``c``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_image(c, x) + mean


def translate_each(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """``translate`` with its own integer shift per image (dy, dx [B]): out[b, :, i, j] = x[b, :, i - dy_b, j - dx_b]."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] - dy[:b, None].to(x.device)
    cols = torch.arange(w, device=x.device)[None, :] - dx[:b, None].to(x.device)
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    picked = x[
        torch.arange(b, device=x.device)[:, None, None],
        :,
        rows.clamp(0, h - 1)[:, :, None],
        cols.clamp(0, w - 1)[:, None, :],
    ]  # [B, H, W, C]
    return picked.permute(0, 3, 1, 2) * valid[:, None].to(x.dtype)


def cutout_each(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """``cutout`` with its own square per image (top, left [B])."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    top, left = top[:b, None].to(x.device), left[:b, None].to(x.device)
    inside = ((rows >= top) & (rows < top + size))[:, :, None] & ((cols >= left) & (cols < left + size))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift content by ``dy`` rows (down if positive) and ``dx`` columns (right if positive), zero fill.

    ``out[..., i, j] = x[..., i - dy, j - dx]`` where that index exists, else 0. Implemented by
    zero padding and slicing, so the gradient with respect to the kept pixels is exactly 1.
    """
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return torch.zeros_like(x)
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def cutout(x: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """Zero the square ``[top, top + size) x [left, left + size)`` in every channel (multiplicative mask)."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    inside = ((rows >= top) & (rows < top + size))[:, None] & ((cols >= left) & (cols < left + size))[None, :]
    mask = (~inside).to(x.dtype)
    return x * mask


def flip(x: torch.Tensor, do_flip: bool) -> torch.Tensor:
    """Mirror along the width axis when ``do_flip`` is true."""
    return torch.flip(x, dims=(3,)) if do_flip else x


def affine(x: torch.Tensor, matrix) -> torch.Tensor:
    """Resample ``x`` on the grid ``matrix @ [u, v, 1]`` in normalised coordinates (align_corners=True).

    ``out(u, v) = x(matrix @ [u, v, 1])`` with bilinear interpolation and zeros outside the image. ``matrix``
    is one 2x3 matrix (nested lists) for the whole batch, or a tensor [>= B, 2, 3] of one per image.
    """
    if isinstance(matrix, torch.Tensor):
        theta = matrix[: x.shape[0]].to(device=x.device, dtype=x.dtype)
    else:
        theta = torch.tensor(matrix, dtype=x.dtype, device=x.device).unsqueeze(0).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def scale(x: torch.Tensor, sx, sy) -> torch.Tensor:
    """Scale the sampling grid by ``sx`` (width) and ``sy`` (height) about the centre; >1 zooms out."""
    if isinstance(sx, torch.Tensor):
        zero = torch.zeros_like(sx)
        return affine(x, torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1))
    return affine(x, [[sx, 0.0, 0.0], [0.0, sy, 0.0]])


def rotate(x: torch.Tensor, degrees) -> torch.Tensor:
    """Rotate about the centre by ``degrees``; positive turns content counter-clockwise as displayed."""
    # out(p) = x(R p) with R the rotation by +a in (x right, y down) coordinates, which is
    # clockwise on screen; the content therefore turns by a counter-clockwise on screen.
    if isinstance(degrees, torch.Tensor):
        a = torch.deg2rad(degrees.double())
        c, s, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
        return affine(x, torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1))
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return affine(x, [[c, -s, 0.0], [s, c, 0.0]])


class DSA:
    """Differentiable Siamese Augmentation, single-operation mode.

    ``sample(g)`` draws one operation family from ``strategy`` and its random numbers from ``g``;
    ``apply(x, params)`` applies that draw identically to every image of ``x`` [B, C, H, W];
    ``dsa(x, g)`` does both. See the module docstring for what each operation does.
    """

    def __init__(
        self,
        strategy: str = DEFAULT_STRATEGY,
        flip_prob: float = 0.5,
        scale_ratio: float = 1.2,
        rotate_degrees: float = 15.0,
        crop_pad: float = 0.125,
        cutout_ratio: float = 0.5,
        brightness: float = 1.0,
        saturation: float = 2.0,
        contrast: float = 0.5,
        per_image: bool = False,
    ):
        ops = [s for s in strategy.split("_") if s]
        if not ops:
            raise UserError("empty DSA strategy; use e.g. 'color_crop_cutout_flip_scale_rotate'")
        unknown = [s for s in ops if s not in FAMILIES]
        if unknown:
            raise UserError(f"unknown DSA operation(s) {unknown}; choose from {', '.join(FAMILIES)}")
        if len(set(ops)) != len(ops):
            raise UserError(f"DSA strategy {strategy!r} names an operation twice")
        if not 0.0 <= flip_prob <= 1.0:
            raise UserError(f"flip_prob must be in [0, 1], got {flip_prob}")
        if scale_ratio < 1.0:
            raise UserError(f"scale_ratio must be >= 1, got {scale_ratio}")
        if not 0.0 <= cutout_ratio <= 1.0:
            raise UserError(f"cutout_ratio must be in [0, 1], got {cutout_ratio}")
        if crop_pad < 0 or rotate_degrees < 0 or brightness < 0 or saturation < 0 or contrast < 0:
            raise UserError("DSA crop_pad, rotate_degrees, brightness, saturation and contrast must be >= 0")
        self.strategy = "_".join(ops)
        self.ops = tuple(ops)
        self.flip_prob = float(flip_prob)
        self.scale_ratio = float(scale_ratio)
        self.rotate_degrees = float(rotate_degrees)
        self.crop_pad = float(crop_pad)
        self.cutout_ratio = float(cutout_ratio)
        self.brightness = float(brightness)
        self.saturation = float(saturation)
        self.contrast = float(contrast)
        self.per_image = bool(per_image)

    def __repr__(self) -> str:
        return f"DSA(strategy={self.strategy!r}, per_image={self.per_image})"

    def sample(self, g: torch.Generator, n: int | None = None) -> dict[str, Any]:
        """One draw: ``{"op": family, ...its random numbers as Python floats/ints/bools}``.

        Everything random comes from ``g``. Position-dependent draws (crop shifts, cutout corner)
        are stored as fractions in [0, 1) and turned into pixels by :meth:`apply` for the size of
        the batch it is given, so one draw serves batches of any size and any image size.
        The draw carries its own ratios, so :meth:`apply` needs nothing else from ``self``.

        With ``per_image`` and a batch size ``n``, the operation family is still drawn once, but every random
        number is a tensor of ``n`` values, one per image (the reference DSA's per-image draws); a batch of B <= n
        images uses the first B, so a real and a synthetic batch given one draw are paired image by image.
        """
        op = self.ops[_randint(0, len(self.ops), g)] if len(self.ops) > 1 else self.ops[0]
        if self.per_image and n is not None:
            return self._sample_each(op, n, g)
        if op == "color":
            return {
                "op": op,
                "brightness": (_uniform(g) - 0.5) * self.brightness,
                "saturation": _uniform(g) * self.saturation,
                "contrast": _uniform(g) + self.contrast,
            }
        if op == "crop":
            return {"op": op, "crop_pad": self.crop_pad, "u_y": _uniform(g), "u_x": _uniform(g)}
        if op == "cutout":
            return {"op": op, "cutout_ratio": self.cutout_ratio, "u_y": _uniform(g), "u_x": _uniform(g)}
        if op == "flip":
            return {"op": op, "flip": _uniform(g) < self.flip_prob}
        if op == "scale":
            lo, hi = 1.0 / self.scale_ratio, self.scale_ratio
            return {"op": op, "sx": lo + (hi - lo) * _uniform(g), "sy": lo + (hi - lo) * _uniform(g)}
        if op == "rotate":
            return {"op": op, "degrees": (2.0 * _uniform(g) - 1.0) * self.rotate_degrees}
        raise AssertionError(op)  # unreachable: ops are validated in __init__

    def _sample_each(self, op: str, n: int, g: torch.Generator) -> dict[str, Any]:
        def u() -> torch.Tensor:
            return torch.rand(n, generator=g, device=g.device, dtype=torch.float64)

        out: dict[str, Any] = {"op": op, "per_image": True}
        if op == "color":
            out.update(
                brightness=(u() - 0.5) * self.brightness, saturation=u() * self.saturation, contrast=u() + self.contrast
            )
        elif op in ("crop", "cutout"):
            out.update(
                {
                    f"{op}_pad" if op == "crop" else "cutout_ratio": self.crop_pad
                    if op == "crop"
                    else self.cutout_ratio,
                    "u_y": u(),
                    "u_x": u(),
                }
            )
        elif op == "flip":
            out["flip"] = u() < self.flip_prob
        elif op == "scale":
            lo, hi = 1.0 / self.scale_ratio, self.scale_ratio
            out.update(sx=lo + (hi - lo) * u(), sy=lo + (hi - lo) * u())
        elif op == "rotate":
            out["degrees"] = (2.0 * u() - 1.0) * self.rotate_degrees
        return out

    @staticmethod
    def crop_shifts(params: dict[str, Any], h: int, w: int) -> tuple[int, int]:
        """The integer (dy, dx) of a crop draw for an h x w image: uniform on {-m..m}, m = int(size*pad+0.5)."""
        my = int(h * params["crop_pad"] + 0.5)
        mx = int(w * params["crop_pad"] + 0.5)
        if params.get("per_image"):  # tensors of shifts, one per image
            dy = (params["u_y"] * (2 * my + 1)).long().clamp(max=2 * my) - my
            dx = (params["u_x"] * (2 * mx + 1)).long().clamp(max=2 * mx) - mx
            return dy, dx
        dy = min(int(params["u_y"] * (2 * my + 1)), 2 * my) - my
        dx = min(int(params["u_x"] * (2 * mx + 1)), 2 * mx) - mx
        return dy, dx

    @staticmethod
    def cutout_box(params: dict[str, Any], h: int, w: int) -> tuple[int, int, int]:
        """(top, left, side) of a cutout draw for an h x w image; the square lies fully inside."""
        side = min(int(min(h, w) * params["cutout_ratio"] + 0.5), h, w)
        if params.get("per_image"):
            top = (params["u_y"] * (h - side + 1)).long().clamp(max=h - side)
            left = (params["u_x"] * (w - side + 1)).long().clamp(max=w - side)
            return top, left, side
        top = min(int(params["u_y"] * (h - side + 1)), h - side)
        left = min(int(params["u_x"] * (w - side + 1)), w - side)
        return top, left, side

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Apply one draw from :meth:`sample` identically to every image of ``x`` [B, C, H, W].

        Returns a tensor of the same shape, dtype and device, differentiable with respect to ``x``.
        """
        _check_images(x)
        op = params["op"]
        h, w = x.shape[-2:]
        each = bool(params.get("per_image"))  # tensors of per-image values (color/scale/rotate broadcast them)
        if each and len(next(v for v in params.values() if isinstance(v, torch.Tensor))) < x.shape[0]:
            raise ValueError(f"a per-image draw for fewer images than the batch of {x.shape[0]}")
        if op == "color":
            x = brightness(x, params["brightness"])
            x = saturation(x, params["saturation"])
            return contrast(x, params["contrast"])
        if op == "crop":
            dy, dx = self.crop_shifts(params, h, w)
            return translate_each(x, dy, dx) if each else translate(x, dy, dx)
        if op == "cutout":
            top, left, side = self.cutout_box(params, h, w)
            return cutout_each(x, top, left, side) if each else cutout(x, top, left, side)
        if op == "flip":
            if each:
                mask = params["flip"][: x.shape[0]].to(x.device).reshape(-1, 1, 1, 1)
                return torch.where(mask, torch.flip(x, dims=(3,)), x)
            return flip(x, bool(params["flip"]))
        if op == "scale":
            return scale(x, params["sx"], params["sy"])
        if op == "rotate":
            return rotate(x, params["degrees"])
        raise ValueError(f"unknown DSA operation {op!r}; expected one of {', '.join(FAMILIES)}")

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``apply(x, sample(g, len(x)))``: one random transform, for every image (or each its own, per_image)."""
        return self.apply(x, self.sample(g, len(x)))


def build_dsa(enabled: bool, strategy: str = DEFAULT_STRATEGY, per_image: bool = False) -> DSA | None:
    """A :class:`DSA` with the paper's default parameters when ``enabled``, else ``None``."""
    return DSA(strategy, per_image=per_image) if enabled else None
