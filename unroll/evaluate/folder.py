"""``unroll eval --images DIR``: every image of a folder through a block-CS or CS-MRI model, with a
per-image PSNR/SSIM table. Images: PNG/TIFF/JPEG/BMP (colour -> BT.601 luminance rounded to 8 bits
as OpenCV's cvtColor, the block-CS test protocol) and MATLAB .mat v5/v7.3 (``im_ori`` or the only
2-D array)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..data.blockcs import sampling_operator
from ..train.metrics import psnr
from ..train.metrics import ssim as gaussian_ssim
from .blockcs import reconstruct_image
from .loading import sampling_matrix
from .mri import reconstruct

__all__ = ["FOLDER_SUFFIXES", "SSIM_VARIANTS", "read_image", "list_images", "ssim_uniform",
           "FolderScore", "evaluate_folder", "format_folder_table"]

FOLDER_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".mat")


def _opencv_luma(rgb: np.ndarray) -> np.ndarray:
    """Y of 8-bit RGB as OpenCV's COLOR_BGR2YCrCb: BT.601 in 14-bit fixed point, rounded to 8 bits."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((4899 * r + 9617 * g + 1868 * b + (1 << 13)) >> 14).astype(np.float64)


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return np.asarray(im, dtype=np.float64) / 65535.0
        if mode == "I":
            a = np.asarray(im, dtype=np.float64)
            if a.min() < 0 or a.max() > 65535:
                raise ValueError(f"{path}: 32-bit integer pixels outside 0..65535")
            return a / (65535.0 if a.max() > 255 else 255.0)
        if mode == "F":
            a = np.asarray(im, dtype=np.float64)
            if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                raise ValueError(f"{path}: floating-point pixels must lie in [0, 1]")
            return a
        if mode in ("1", "L", "LA"):
            return np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        rgb = np.asarray(im.convert("RGB"))  # RGB, RGBA (alpha dropped), P, CMYK, YCbCr
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return rgb[..., 0].astype(np.float64) / 255.0
    return _opencv_luma(rgb) / 255.0


def _read_mat_image(path: Path) -> np.ndarray:
    try:
        import scipy.io

        data = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3 (HDF5): arrays come back transposed
        import h5py

        with h5py.File(path, "r") as f:
            data = {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({e})") from None
    arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biufc"}
    if "im_ori" in arrays:
        a, name = arrays["im_ori"], "im_ori"
    else:
        two_d = {k: v for k, v in arrays.items() if v.ndim == 2 and min(v.shape) > 1}
        if len(two_d) != 1:
            raise ValueError(f"{path}: no variable im_ori and {len(two_d)} 2-D arrays "
                             f"({', '.join(sorted(two_d)) or 'none'}); expected exactly one")
        name, a = next(iter(two_d.items()))
    if a.ndim != 2:
        raise ValueError(f"{path}: variable {name} has shape {a.shape}, expected a 2-D image")
    if a.dtype.kind == "c":
        raise ValueError(f"{path}: variable {name} is complex; expected a real image")
    if a.dtype.kind in "iu":
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    a = a.astype(np.float64)
    if not np.isfinite(a).all() or a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise ValueError(f"{path}: variable {name} must hold values in [0, 1] "
                         f"(found {a.min():.3g}..{a.max():.3g})")
    return a


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One test image as [h, w] float64 in [0, 1] (8-bit value / 255 for 8-bit files)."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return _read_mat_image(path)
    try:
        return _read_picture(path)
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder``, sorted by name; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(FOLDER_SUFFIXES)}) in {folder}")
    return files


def ssim_uniform(x: Any, ref: Any, data_range: float, win: int = 7) -> float:
    """Mean SSIM as scikit-image's default ``structural_similarity``: 7x7 uniform window, sample
    covariance (N/(N-1)), K1 = 0.01, K2 = 0.03, reflected borders, border of 3 left out of the mean."""
    from scipy.ndimage import uniform_filter

    a, b = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ, {a.shape} vs {b.shape}")
    if any(s < win for s in a.shape):
        raise ValueError(f"SSIM needs every image side to be at least {win} pixels, got {a.shape}")
    np_ = win ** a.ndim
    cov = np_ / (np_ - 1.0)

    def mean(img: np.ndarray) -> np.ndarray:
        return uniform_filter(img, size=win, mode="reflect")

    ux, uy = mean(a), mean(b)
    vx = cov * (mean(a * a) - ux * ux)
    vy = cov * (mean(b * b) - uy * uy)
    vxy = cov * (mean(a * b) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[tuple(slice(pad, n - pad) for n in s.shape)].mean(dtype=np.float64))


# name -> (function(x, ref, data_range), description printed with the table)
SSIM_VARIANTS: dict[str, tuple[Callable[..., float], str]] = {
    "skimage": (ssim_uniform, "scikit-image default: 7x7 uniform window, sample covariance "
                "(ISTA-Net's test script)"),
    "gaussian": (gaussian_ssim, "Wang et al.: 11x11 Gaussian window, sigma 1.5, population statistics"),
}


@dataclass
class FolderScore:
    """One image's name, size and scores."""

    name: str
    shape: tuple[int, int]
    psnr: float
    ssim: float


def _mri_reconstruct(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """x̂ of one image measured by the model's own mask (the image must have the mask's size)."""
    name = model.operator_names[0]
    P = getattr(model, name).detach().cpu().double().numpy()
    if image.shape != P.shape:
        raise ValueError(f"the image is {image.shape[0]}x{image.shape[1]} but the model's mask {name} is "
                         f"{P.shape[0]}x{P.shape[1]}; CS-MRI images must match the mask")
    return reconstruct(model, image[None], P, batch_size=1)[0]


def evaluate_folder(model: torch.nn.Module, folder: str | os.PathLike, ssim: str = "skimage",
                    protocol: Mapping[str, Any] | None = None,
                    progress: Callable[[str], None] | None = None) -> list[FolderScore]:
    """Scores of ``model`` on every image of ``folder``: block CS (operator Phi, 33x33 blocks,
    zero-padded) or CS-MRI (one mask operator). ``protocol``: clip to [0, 1] (default True for
    block CS), magnitude |x̂| (default False); PSNR and SSIM on the 0-255 scale."""

    if ssim not in SSIM_VARIANTS:
        raise ValueError(f"unknown SSIM variant {ssim!r}; choose {', '.join(SSIM_VARIANTS)}")
    ssim_fn = SSIM_VARIANTS[ssim][0]
    block_cs = sampling_operator(model.operator_names, only=False) is not None
    protocol = dict(protocol or {})
    clip = bool(protocol.get("clip", block_cs))
    magnitude = bool(protocol.get("magnitude", False))
    phi = sampling_matrix(model) if block_cs else None
    scores = []
    for path in list_images(folder):
        img = read_image(path)
        if img.ndim != 2 or min(img.shape) < 1:
            raise ValueError(f"{path}: expected a 2-D image, got shape {img.shape}")
        rec = reconstruct_image(model, phi, img) if block_cs else _mri_reconstruct(model, img)
        rec = np.abs(rec) if magnitude else rec
        rec = np.clip(rec, 0.0, 1.0) if clip else rec
        try:
            s = ssim_fn(rec * 255.0, img * 255.0, 255.0)
        except ValueError as e:
            raise ValueError(f"{path.name}: {e}") from None
        scores.append(FolderScore(path.name, (int(img.shape[0]), int(img.shape[1])),
                                  psnr(rec * 255.0, img * 255.0, 255.0), s))
        if progress:
            progress(path.name)
    return scores


def folder_json(scores: list[FolderScore]) -> dict[str, Any]:
    """``{"mean_psnr", "mean_ssim", "images": [{"name", "psnr", "ssim"}]}``."""
    return {"mean_psnr": float(np.mean([s.psnr for s in scores])),
            "mean_ssim": float(np.mean([s.ssim for s in scores])),
            "images": [{"name": s.name, "psnr": float(s.psnr), "ssim": float(s.ssim)} for s in scores]}


def format_folder_table(scores: list[FolderScore]) -> str:
    """Per-image size, PSNR (dB) and SSIM, the mean last."""
    width = max([len("image"), len("mean")] + [len(s.name) for s in scores])
    lines = [f"{'image':<{width}}  {'size':>9}  {'PSNR dB':>8}  {'SSIM':>6}"]
    for s in scores:
        lines.append(f"{s.name:<{width}}  {f'{s.shape[0]}x{s.shape[1]}':>9}  {s.psnr:8.2f}  {s.ssim:6.4f}")
    j = folder_json(scores)
    lines.append(f"{'mean':<{width}}  {'':>9}  {j['mean_psnr']:8.2f}  {j['mean_ssim']:6.4f}")
    return "\n".join(lines)
