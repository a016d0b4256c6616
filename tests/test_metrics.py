"""Metrics: NMSE in dB, PSNR and Gaussian-window SSIM (scikit-image's defaults)."""
import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from unroll.train.metrics import nmse_db, psnr, ssim


def test_nmse_known_values():
    x = torch.randn(16, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert nmse_db(torch.zeros_like(x), x) == pytest.approx(0.0)
    assert nmse_db(1.1 * x, x) == pytest.approx(-20.0, abs=1e-9)
    assert nmse_db((1.01 * x).numpy(), x.numpy()) == pytest.approx(-40.0, abs=1e-9)
    assert nmse_db(x, x) == -math.inf


def test_nmse_pools_over_the_batch():
    x = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    x_hat = torch.tensor([[0.0, 0.0], [0.0, 3.0]])  # error 1, energy 10
    assert nmse_db(x_hat, x) == pytest.approx(-10.0)


def test_psnr_known_values():
    ref = np.zeros((8, 8))
    assert psnr(ref + 0.1, ref, data_range=1.0) == pytest.approx(20.0)
    assert psnr(ref + 25.5, ref, data_range=255.0) == pytest.approx(20.0)
    assert psnr(ref, ref, 1.0) == math.inf


def _images(seed=0, shape=(40, 48)):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape)
    ref = (ref + np.roll(ref, 1, 0) + np.roll(ref, 1, 1)) / 3  # some structure
    noisy = np.clip(ref + 0.1 * rng.standard_normal(shape), 0, 1)
    return noisy, ref


def _ssim_direct(x, ref, data_range, sigma=1.5, radius=5):
    """SSIM over every full 11x11 window, with explicit Gaussian weights and population moments."""
    t = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * t**2 / sigma**2)
    w = np.outer(g, g)
    w /= w.sum()
    X, Y = sliding_window_view(x, w.shape), sliding_window_view(ref, w.shape)
    mx, my = (X * w).sum((-2, -1)), (Y * w).sum((-2, -1))
    vx = (X**2 * w).sum((-2, -1)) - mx**2
    vy = (Y**2 * w).sum((-2, -1)) - my**2
    cxy = (X * Y * w).sum((-2, -1)) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean()


def test_ssim_matches_direct_computation():
    x, ref = _images()
    assert ssim(x, ref, data_range=1.0) == pytest.approx(_ssim_direct(x, ref, 1.0), rel=1e-10)
    assert ssim(ref, ref, data_range=1.0) == pytest.approx(1.0)
    assert 0.0 < ssim(x, ref, data_range=1.0) < 0.95


def test_ssim_batch_dims_and_torch_input():
    pairs = [_images(seed) for seed in range(3)]
    xs = torch.tensor(np.stack([p[0] for p in pairs]))[:, None]
    refs = torch.tensor(np.stack([p[1] for p in pairs]))[:, None]
    expected = np.mean([ssim(a, b, 1.0) for a, b in pairs])
    assert ssim(xs, refs, 1.0, batch_dims=2) == pytest.approx(expected)


def test_psnr_and_ssim_against_scikit_image():
    from skimage import metrics  # a dev dependency: the reference implementation

    x, ref = _images(1)
    expected = metrics.structural_similarity(
        x, ref, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(x, ref, 1.0) == pytest.approx(expected, rel=1e-9)
    # On the 0-255 scale, as ISTA-Net's Set11 table.
    x255, ref255 = 255 * x, 255 * ref
    assert psnr(x255, ref255, 255.0) == pytest.approx(
        metrics.peak_signal_noise_ratio(ref255, x255, data_range=255.0), rel=1e-12)
    assert ssim(x255, ref255, 255.0) == pytest.approx(metrics.structural_similarity(
        x255, ref255, data_range=255.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False), rel=1e-9)
