"""Whole-image block-CS evaluation as ISTA-Net: pad, measure and reconstruct block by block,
reassemble, crop, clip to [0, 1], then PSNR and SSIM on the 0–255 scale."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data.blockcs import BLOCK, blocks_to_image, image_to_blocks
from ..train.metrics import psnr, ssim

__all__ = ["ImageScore", "BlockCSEvaluation", "reconstruct_blocks", "reconstruct_image", "evaluate_images"]


@dataclass
class ImageScore:
    """One test image's scores (dB, unitless) and its reconstruction in [0, 1]."""

    name: str
    psnr: float
    ssim: float
    shape: tuple[int, int]
    reconstruction: np.ndarray = field(repr=False)
    original: np.ndarray = field(repr=False)


@dataclass
class BlockCSEvaluation:
    """Per-image scores and their means."""

    images: list[ImageScore]

    @property
    def mean_psnr(self) -> float:
        """Average PSNR over the images (dB), as the paper's tables."""
        return float(np.mean([s.psnr for s in self.images]))

    @property
    def mean_ssim(self) -> float:
        """Average SSIM over the images."""
        return float(np.mean([s.ssim for s in self.images]))

    def table(self) -> str:
        """A plain-text per-image PSNR/SSIM table with the mean as the last row."""
        width = max([len("image"), len("mean")] + [len(s.name) for s in self.images])
        lines = [f"{'image':<{width}}  {'size':>9}  {'PSNR dB':>8}  {'SSIM':>6}"]
        for s in self.images:
            size = f"{s.shape[0]}x{s.shape[1]}"
            lines.append(f"{s.name:<{width}}  {size:>9}  {s.psnr:8.2f}  {s.ssim:6.4f}")
        lines.append(f"{'mean':<{width}}  {'':>9}  {self.mean_psnr:8.2f}  {self.mean_ssim:6.4f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores (no pixels)."""
        return {
            "mean_psnr": self.mean_psnr,
            "mean_ssim": self.mean_ssim,
            "images": [{"name": s.name, "shape": list(s.shape), "psnr": s.psnr, "ssim": s.ssim} for s in self.images],
        }


def _first_output(out: Any, model: nn.Module) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return out[model.output_names[0]]
    return out[0]


@torch.no_grad()
def reconstruct_blocks(model: nn.Module, phi: np.ndarray, blocks: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """x̂ [nb, N] float64 for row blocks [nb, N]: y = Φ x in float64, then the model in batches."""
    params = next(iter(model.parameters()), None)
    dtype = params.dtype if params is not None else torch.float32
    device = params.device if params is not None else torch.device("cpu")
    name = model.input_names[0]
    y = np.asarray(blocks, dtype=np.float64) @ np.asarray(phi, dtype=np.float64).T
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, y.shape[0], batch_size):
            yb = torch.as_tensor(y[i : i + batch_size], dtype=dtype, device=device)
            x = _first_output(model(**{name: yb}), model)
            out.append(x.reshape(yb.shape[0], -1).double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def reconstruct_image(model: nn.Module, phi: np.ndarray, image: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's reconstruction of an [h, w] image in [0, 1], block by block, clipped to [0, 1]."""
    blocks, padded = image_to_blocks(image, BLOCK)
    rec = reconstruct_blocks(model, phi, blocks, batch_size)
    return np.clip(blocks_to_image(rec, padded, image.shape, BLOCK), 0.0, 1.0)


def evaluate_images(
    model: nn.Module, phi: np.ndarray, images: Sequence[tuple[str, np.ndarray]], batch_size: int = 256
) -> BlockCSEvaluation:
    """PSNR and SSIM (0–255 scale, as ISTA-Net) of the model's reconstruction of every image.

    Reconstructions are clipped to [0, 1] and scaled by 255 but not rounded (ISTA-Net's test script
    does the same); SSIM is :func:`unroll.train.metrics.ssim` (Gaussian window, σ = 1.5).
    """
    scores = []
    for name, img in images:
        img = np.asarray(img, dtype=np.float64)
        rec = reconstruct_image(model, phi, img, batch_size)
        scores.append(ImageScore(
            name, psnr(rec * 255.0, img * 255.0, 255.0), ssim(rec * 255.0, img * 255.0, 255.0),
            (int(img.shape[0]), int(img.shape[1])), rec, img,
        ))
    return BlockCSEvaluation(scores)
