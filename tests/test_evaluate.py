"""Whole-image block-CS evaluation: metrics against independent formulas, exact reassembly, files."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from blockcs_standin import TinyBlockCS
from unroll.data.blockcs import orthonormal_rows
from unroll.data.images import synthetic_images
from unroll.evaluate import evaluate_images, reconstruct_image, side_by_side, write_png, write_reconstructions
from unroll.train.metrics import psnr, ssim

# NOTE: scikit-image is not a dependency, so PSNR and SSIM are checked against direct formulas
# written here (skimage's peak_signal_noise_ratio, and structural_similarity with
# gaussian_weights=True, sigma=1.5, use_sample_covariance=False, are these formulas).


def _psnr_direct(x, ref, data_range):
    return 20 * math.log10(data_range / math.sqrt(((x - ref) ** 2).mean()))


def _ssim_direct(x, ref, data_range, sigma=1.5, radius=5):
    """Mean over interior pixels of SSIM with explicit normalised Gaussian window sums."""
    t = np.arange(-radius, radius + 1)
    g = np.exp(-(t**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(radius, x.shape[0] - radius):
        for j in range(radius, x.shape[1] - radius):
            a = x[i - radius : i + radius + 1, j - radius : j + radius + 1]
            b = ref[i - radius : i + radius + 1, j - radius : j + radius + 1]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_psnr_and_ssim_match_direct_formulas():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (24, 30)).astype(np.float64)
    x = np.clip(ref + rng.normal(0, 12, ref.shape), 0, 255)
    assert psnr(x, ref, 255.0) == pytest.approx(_psnr_direct(x, ref, 255.0), abs=1e-10)
    assert ssim(x, ref, 255.0) == pytest.approx(_ssim_direct(x, ref, 255.0), abs=1e-9)
    assert ssim(ref, ref, 255.0) == pytest.approx(1.0) and psnr(ref, ref, 255.0) == math.inf


def _exact_model(K=1):
    """Φ = I (ratio 100 %), Q = I: x0 = y is the block itself and the gradient steps keep it."""
    eye = np.eye(1089)
    return eye, TinyBlockCS(eye, eye, K=K, dtype=torch.float64)


def test_exact_model_reassembles_every_image_pixel_for_pixel():
    phi, model = _exact_model()
    img = np.random.default_rng(1).random((40, 70))
    assert np.array_equal(reconstruct_image(model, phi, img, batch_size=2), img)
    result = evaluate_images(model, phi, [("noise", img)])
    assert result.images[0].psnr == math.inf and result.images[0].ssim == pytest.approx(1.0)


def test_evaluation_pipeline_on_one_small_image(tmp_path):
    name, img = synthetic_images(2, 50, seed=3)[1]
    phi = orthonormal_rows(272, 1089, seed=0)
    model = TinyBlockCS(phi, phi.T, K=2)  # x0 = Φᵀ y, the minimum-norm consistent block
    result = evaluate_images(model, phi, [(name, img)], batch_size=3)
    score = result.images[0]
    rec = score.reconstruction
    assert rec.shape == img.shape and rec.min() >= 0 and rec.max() <= 1
    assert score.psnr == pytest.approx(_psnr_direct(rec * 255, img * 255, 255.0), abs=1e-9)
    assert 3 < score.psnr < 60 and result.mean_psnr == score.psnr
    assert name in result.table() and "mean" in result.table()
    assert result.to_dict()["images"][0]["shape"] == [50, 50]
    pngs = write_reconstructions(result, tmp_path / "rec")
    back = np.asarray(Image.open(pngs[0]), dtype=np.float64) / 255
    assert np.abs(back - rec).max() <= 0.5 / 255 + 1e-12
    fig = side_by_side(result, tmp_path / "fig.png", title="stand-in")
    assert fig.stat().st_size > 1000


def test_write_png_rounds_and_clips(tmp_path):
    p = write_png(tmp_path / "a.png", np.array([[-0.1, 0.5], [1.2, 1 / 255]]))
    assert np.asarray(Image.open(p)).tolist() == [[0, 128], [255, 1]]
