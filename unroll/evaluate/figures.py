"""Writing reconstructions: 8-bit PNGs and a side-by-side figure (a matplotlib Figure, never pyplot: no global backend)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .blockcs import BlockCSEvaluation

__all__ = ["write_png", "write_reconstructions", "side_by_side"]


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Save an [h, w] image in [0, 1] as an 8-bit grey PNG (rounded, clipped)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8), mode="L").save(path)
    return path


def write_reconstructions(result: BlockCSEvaluation, out_dir: str | os.PathLike) -> list[Path]:
    """One ``<name>_rec.png`` per image in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    return [write_png(out / f"{s.name}_rec.png", s.reconstruction) for s in result.images]


def side_by_side(
    result: BlockCSEvaluation, path: str | os.PathLike, title: str = "", names: Sequence[str] | None = None
) -> Path:
    """A figure with one row per image: original | reconstruction (PSNR/SSIM) | |error|."""
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no global backend switch

    scores = [s for s in result.images if names is None or s.name in names]
    if not scores:
        raise ValueError("side_by_side: no images to draw")
    fig = Figure(figsize=(9, 3 * len(scores)), constrained_layout=True)
    axes = fig.subplots(len(scores), 3, squeeze=False)
    for row, s in zip(axes, scores):
        row[0].imshow(s.original, cmap="gray", vmin=0, vmax=1)
        row[0].set_title(f"{s.name} (original)")
        row[1].imshow(s.reconstruction, cmap="gray", vmin=0, vmax=1)
        row[1].set_title(f"{s.psnr:.2f} dB, SSIM {s.ssim:.4f}")
        row[2].imshow(np.abs(s.reconstruction - s.original), cmap="magma", vmin=0, vmax=0.2)
        row[2].set_title("|error| (0 to 0.2)")
        for ax in row:
            ax.set_axis_off()
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
