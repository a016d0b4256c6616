"""Images for block compressive sensing: reading files, the BT.601 luminance, built-in synthetic images.

Pixel arrays are float64 in [0, 1] (8-bit value / 255), shape [h, w].
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .checked import open_image

__all__ = [
    "IMAGE_SUFFIXES",
    "luminance",
    "load_grey",
    "load_folder",
    "shepp_logan",
    "synthetic_images",
]

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")

# NOTE: ITU-R BT.601 luma weights. `studio=False` (default) gives the full-range Y that OpenCV's
# COLOR_BGR2YCrCb computes (ISTA-Net-PyTorch's test script); `studio=True` gives MATLAB's
# rgb2ycbcr Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 in [16, 235], as ISTA-Net's released
# Training_Data.mat used. Set11 is already grey, i.e. full range, so the default keeps training and
# test images on the same scale.
_BT601 = np.array([0.299, 0.587, 0.114])


def luminance(rgb: np.ndarray, studio: bool = False) -> np.ndarray:
    """Y of ITU-R BT.601 from an [h, w, 3] RGB array on 0–255; returns 0–255 float64 (see NOTE)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"luminance needs an [h, w, 3] RGB array, got shape {rgb.shape}")
    rgb = rgb[..., :3]
    if studio:
        return 16.0 + rgb @ np.array([65.481, 128.553, 24.966]) / 255.0
    return rgb @ _BT601


def load_grey(path: str | os.PathLike, studio: bool = False) -> np.ndarray:
    """An image file as [h, w] float64 in [0, 1]: grey and palette images as is, RGB via :func:`luminance`."""

    with open_image(path) as im:
        if im.mode in ("RGB", "RGBA") or (im.mode == "P" and _palette_is_colour(im)):
            y = luminance(np.asarray(im.convert("RGB")), studio=studio)
        elif im.mode in ("L", "P", "LA"):
            y = np.asarray(im.convert("L"), dtype=np.float64)
        elif im.mode in ("I;16", "I;16B", "I"):
            raise ValueError(f"{path}: 16-bit images are not supported (mode {im.mode})")
        else:
            y = np.asarray(im.convert("L"), dtype=np.float64)
    return y / 255.0


def _palette_is_colour(im) -> bool:
    """True when a palette image's used colours are not all grey."""
    rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    return bool(np.any(rgb[:, 0] != rgb[:, 1]) or np.any(rgb[:, 1] != rgb[:, 2]))


def load_folder(folder: str | os.PathLike, studio: bool = False) -> list[tuple[str, np.ndarray]]:
    """Every image file of ``folder`` as (stem, [h, w] in [0, 1]), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return [(p.stem, load_grey(p, studio=studio)) for p in files]


# Modified Shepp–Logan (Toft): intensity, semi-axes a, b, centre x0, y0, angle (degrees).
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def _ellipses(size: int, table) -> np.ndarray:
    yy, xx = np.mgrid[1:-1:size * 1j, -1:1:size * 1j]
    img = np.zeros((size, size))
    for value, a, b, x0, y0, deg in table:
        t = np.deg2rad(deg)
        u = (xx - x0) * np.cos(t) + (yy - y0) * np.sin(t)
        v = -(xx - x0) * np.sin(t) + (yy - y0) * np.cos(t)
        img[(u / a) ** 2 + (v / b) ** 2 <= 1.0] += value
    return img


def shepp_logan(size: int = 128, rng: np.random.Generator | None = None) -> np.ndarray:
    """The modified Shepp–Logan phantom, [size, size] in [0, 1]; with ``rng``, a randomly perturbed
    copy (inner ellipses moved, resized, turned and re-weighted), for training sets."""
    table = list(_SHEPP_LOGAN)
    if rng is not None:
        for i, (v, a, b, x0, y0, deg) in enumerate(table[2:], start=2):
            table[i] = (v * rng.uniform(0.6, 1.4), a * rng.uniform(0.8, 1.2), b * rng.uniform(0.8, 1.2),
                        x0 + rng.uniform(-0.04, 0.04), y0 + rng.uniform(-0.04, 0.04),
                        deg + rng.uniform(-15.0, 15.0))
    return np.clip(_ellipses(size, table), 0.0, 1.0)


def _natural(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth 1/f-like random field plus a few flat shapes with sharp edges, scaled into [0.05, 0.95]."""
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = (rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))) / radius**1.6
    field = np.fft.ifft2(spectrum).real
    field = (field - field.mean()) / (field.std() + 1e-12)
    table = [
        (rng.uniform(-1.5, 1.5), rng.uniform(0.08, 0.45), rng.uniform(0.08, 0.45),
         rng.uniform(-0.7, 0.7), rng.uniform(-0.7, 0.7), rng.uniform(0, 180))
        for _ in range(int(rng.integers(3, 7)))
    ]
    img = 0.6 * field + _ellipses(size, table)
    r, c, h, w = (int(v) for v in rng.integers(0, size // 2, 4))
    img[r : r + h + 8, c : c + w + 8] += rng.uniform(-1.0, 1.0)  # a rectangle: straight edges
    lo, hi = img.min(), img.max()
    return 0.05 + 0.9 * (img - lo) / (hi - lo + 1e-12)


def synthetic_images(count: int = 6, size: int = 128, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Built-in grey test/training images (no files): the Shepp–Logan phantom, then random natural-ish ones.

    Each non-phantom image is a 1/f random field with random ellipses and a rectangle (edges);
    deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    out = [("shepp_logan", shepp_logan(size))] if count > 0 else []
    out += [(f"synthetic_{seed}_{i}", _natural(size, rng)) for i in range(1, count)]
    return out
