"""Reconstruction metrics: NMSE (dB) for sparse coding, PSNR and SSIM for images."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nmse_db", "psnr", "ssim"]


def _as_numpy(a: Any) -> np.ndarray:
    """Array view of a numpy array or (detached, CPU) torch tensor, as float64."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def nmse_db(x_hat: Any, x: Any) -> float:
    """10·log10(Σ‖x̂ − x‖² / Σ‖x‖²) over the whole batch, the LISTA papers' NMSE in dB."""
    if hasattr(x_hat, "detach") and hasattr(x, "detach"):
        err = (x_hat.detach() - x.detach()).double().pow(2).sum().item()
        ref = x.detach().double().pow(2).sum().item()
    else:
        a, b = _as_numpy(x_hat), _as_numpy(x)
        err, ref = float(np.sum((a - b) ** 2)), float(np.sum(b**2))
    if ref == 0.0:
        raise ValueError("nmse_db: the reference is all zeros")
    if not (np.isfinite(err) and np.isfinite(ref)):
        return float("nan")  # a non-finite estimate is never a perfect score
    return float(10.0 * np.log10(err / ref)) if err > 0 else float("-inf")


def psnr(x: Any, ref: Any, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB over the whole array (as scikit-image computes it)."""
    a, b = _as_numpy(x), _as_numpy(ref)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ, {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if not np.isfinite(mse):
        return float("nan")  # a non-finite estimate is never a perfect score
    return float(10.0 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")


def ssim(x: Any, ref: Any, data_range: float, batch_dims: int = 0) -> float:
    """Mean SSIM with scikit-image's Gaussian defaults (σ = 1.5, truncate 3.5, population stats).

    Matches ``skimage.metrics.structural_similarity(x, ref, data_range=..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)``; the first ``batch_dims`` axes are averaged over.
    """
    from scipy.ndimage import gaussian_filter

    a, b = _as_numpy(x), _as_numpy(ref)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ, {a.shape} vs {b.shape}")
    if batch_dims:
        flat_a = a.reshape((-1,) + a.shape[batch_dims:])
        flat_b = b.reshape((-1,) + b.shape[batch_dims:])
        return float(np.mean([ssim(u, v, data_range) for u, v in zip(flat_a, flat_b)]))
    sigma, truncate = 1.5, 3.5
    win = 2 * int(truncate * sigma + 0.5) + 1
    if any(s < win for s in a.shape):
        raise ValueError(f"ssim: every image side must be at least {win}, got {a.shape}")

    def blur(img: np.ndarray) -> np.ndarray:
        return gaussian_filter(img, sigma=sigma, mode="reflect", truncate=truncate)

    ux, uy = blur(a), blur(b)
    vx = blur(a * a) - ux * ux
    vy = blur(b * b) - uy * uy
    vxy = blur(a * b) - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    inner = s[tuple(slice(pad, n - pad) for n in s.shape)]
    return float(inner.mean(dtype=np.float64))
