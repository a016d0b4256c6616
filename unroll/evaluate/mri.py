"""CS-MRI evaluation as ADMM-Net reports it: per-image NMSE and PSNR of several reconstruction
methods (zero-filled, classical, learned) in one table, plus reconstructions and error maps as PNGs.

Conventions (those of ADMM-Net's released test code): images are real in [0, 1]; the
reconstruction is taken as the model outputs it (real, not clipped); PSNR = 10·log10(1 / MSE)
with peak 1 over the whole 256×256 image (MATLAB's ``psnr`` on doubles); NMSE = ‖x̂ − x‖₂ / ‖x‖₂
(a ratio of norms, not squared, as ADMM-Net's ``rnnloss``). Means are over images.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import api
from ..data import resolve_data_dir
from ..data.mri import MRITask, downsample, load_brain, load_mask, undersample, zero_filled

__all__ = [
    "ZeroFilled",
    "image_nmse",
    "image_psnr",
    "MethodScores",
    "MRIEvaluation",
    "reconstruct",
    "evaluate_methods",
    "write_pngs",
    "add_eval_arguments",
    "run_eval_command",
]

ZERO_FILLED = "zero-filled"


class ZeroFilled(nn.Module):
    """The zero-filled baseline real(ifft2(y)) behind the compiled-model interface (K = 1, no weights)."""

    input_names = ("y",)
    target_names = ("x_star",)
    operator_names = ("P",)
    output_names = ("x",)
    K = 1

    def forward(self, y: torch.Tensor, return_layers: bool = False, upto: int | None = None):
        """real(ifft2(y)), orthonormal; with ``return_layers`` also the one-element layer list."""
        x = zero_filled(y)
        return (x, [x]) if return_layers else x


def image_nmse(x_hat: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per-image ‖x̂ − x‖₂ / ‖x‖₂ over the last two axes (ADMM-Net's NMSE)."""
    err = np.sqrt(np.sum((x_hat - x) ** 2, axis=(-2, -1)))
    return err / np.sqrt(np.sum(x**2, axis=(-2, -1)))


def image_psnr(x_hat: np.ndarray, x: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Per-image PSNR in dB over the last two axes with the given peak (1 for images in [0, 1])."""
    mse = np.mean((x_hat - x) ** 2, axis=(-2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak**2 / mse)


@dataclass
class MethodScores:
    """One method's per-image scores and reconstructions [N, h, w] (float64)."""

    method: str
    nmse: np.ndarray
    psnr: np.ndarray
    reconstructions: np.ndarray = field(repr=False)
    seconds: float = 0.0

    @property
    def mean_psnr(self) -> float:
        """Mean PSNR over the images (dB)."""
        return float(np.mean(self.psnr))

    @property
    def mean_nmse(self) -> float:
        """Mean NMSE over the images."""
        return float(np.mean(self.nmse))


@dataclass
class MRIEvaluation:
    """Scores of several methods on the same images and mask."""

    names: list[str]
    originals: np.ndarray = field(repr=False)
    methods: list[MethodScores]
    sampled_fraction: float
    label: str = ""

    def method(self, name: str) -> MethodScores:
        """The scores of the method called ``name``."""
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(f"no method {name!r} (have {', '.join(m.method for m in self.methods)})")

    def table(self, per_image: bool = True) -> str:
        """Plain text: one row per image (if ``per_image``) and the mean, PSNR and NMSE per method."""
        width = max([len("image"), len("mean")] + [len(n) for n in self.names])
        col = max([15] + [len(m.method) for m in self.methods])
        head = f"{'':<{width}}" + "".join(f"  {m.method:>{col}}" for m in self.methods)
        sub = f"{'image':<{width}}" + "".join(f"  {'PSNR dB':>{col - 8}}  {'NMSE':>6}" for _ in self.methods)
        lines = []
        if self.label:
            lines.append(f"{self.label}: {len(self.names)} images, {100 * self.sampled_fraction:.1f}% sampled")
        lines += [head, sub]

        def row(name: str, ps: list[float], ns: list[float]) -> str:
            return f"{name:<{width}}" + "".join(f"  {p:>{col - 8}.2f}  {n:6.4f}" for p, n in zip(ps, ns))

        if per_image:
            for i, name in enumerate(self.names):
                lines.append(row(name, [m.psnr[i] for m in self.methods], [m.nmse[i] for m in self.methods]))
        lines.append(row("mean", [m.mean_psnr for m in self.methods], [m.mean_nmse for m in self.methods]))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores (no pixels)."""
        return {
            "label": self.label,
            "sampled_fraction": self.sampled_fraction,
            "images": list(self.names),
            "conventions": "PSNR peak 1 on [0,1], output not clipped; NMSE = ||x_hat - x|| / ||x||",
            "methods": {
                m.method: {
                    "mean_psnr": m.mean_psnr,
                    "mean_nmse": m.mean_nmse,
                    "psnr": [float(v) for v in m.psnr],
                    "nmse": [float(v) for v in m.nmse],
                    "seconds": m.seconds,
                }
                for m in self.methods
            },
        }


def _param_dtype(model: nn.Module) -> torch.dtype:
    """The model's real floating dtype (float64 for a model without floating weights)."""
    tensors = [*model.parameters(), *model.buffers()]
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float64)


def _device(model: nn.Module) -> torch.device:
    tensors = [*model.parameters(), *model.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


@torch.no_grad()
def reconstruct(model: nn.Module, images: np.ndarray, mask: np.ndarray, batch_size: int = 10) -> np.ndarray:
    """Reconstructions [N, h, w] float64 of ``images`` from y = P·fft2(x), in the model's precision
    and on its device (k-space computed in float64, then cast)."""
    dtype = _param_dtype(model)
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    device = _device(model)
    name = model.input_names[0]
    P = torch.as_tensor(np.asarray(mask, dtype=np.float64))
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = torch.as_tensor(np.asarray(images[i : i + batch_size], dtype=np.float64))
            y = undersample(x, P).to(device=device, dtype=cdtype)
            rec = model(**{name: y})
            out.append(rec.detach().real.reshape(x.shape).to("cpu", torch.float64).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def evaluate_methods(
    methods: Mapping[str, nn.Module],
    images: Sequence[tuple[str, np.ndarray]],
    mask: np.ndarray,
    label: str = "",
    batch_size: int = 10,
    baseline: bool = True,
) -> MRIEvaluation:
    """Score each method (a model with the compiled-model interface) on ``images`` under ``mask``
    (unshifted); the zero-filled baseline comes first unless ``baseline`` is False or it is given."""
    import time

    todo = dict(methods)
    if baseline and ZERO_FILLED not in todo:
        todo = {ZERO_FILLED: ZeroFilled(), **todo}
    if not todo:
        raise ValueError("evaluate_methods needs at least one method")
    x = np.stack([np.asarray(im, dtype=np.float64) for _, im in images])
    scores = []
    for name, model in todo.items():
        t0 = time.perf_counter()
        rec = reconstruct(model, x, mask, batch_size)
        secs = time.perf_counter() - t0
        scores.append(MethodScores(name, image_nmse(rec, x), image_psnr(rec, x), rec, secs))
    return MRIEvaluation([n for n, _ in images], x, scores, float(np.mean(mask)), label)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "method"


def _save(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _grey(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _heat(error: np.ndarray, scale: float) -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps["inferno"](np.clip(error / scale, 0.0, 1.0))
    return np.rint(rgba[..., :3] * 255.0).astype(np.uint8)


def write_pngs(
    evaluation: MRIEvaluation,
    out_dir: str | os.PathLike,
    error_scale: float = 0.1,
    figure_images: int = 4,
) -> list[Path]:
    """Write ``<image>_truth.png``, ``<image>_<method>.png`` (8-bit grey, clipped to [0, 1]) and
    ``<image>_<method>_error.png`` (|x̂ − x| in the inferno colour map, saturating at
    ``error_scale``), plus ``comparison.png`` for the first ``figure_images`` images."""
    out = Path(out_dir)
    paths = []
    for i, name in enumerate(evaluation.names):
        stem = _slug(name)
        paths.append(_save(out / f"{stem}_truth.png", _grey(evaluation.originals[i])))
        for m in evaluation.methods:
            rec = m.reconstructions[i]
            paths.append(_save(out / f"{stem}_{_slug(m.method)}.png", _grey(rec)))
            err = np.abs(rec - evaluation.originals[i])
            paths.append(_save(out / f"{stem}_{_slug(m.method)}_error.png", _heat(err, error_scale)))
    if figure_images > 0:
        paths.append(_comparison(evaluation, out / "comparison.png", error_scale, figure_images))
    return paths


def _comparison(evaluation: MRIEvaluation, path: Path, error_scale: float, count: int) -> Path:
    """Rows of images: truth | each method (with PSNR) | each method's error map."""
    from matplotlib.figure import Figure

    rows = min(count, len(evaluation.names))
    cols = 1 + 2 * len(evaluation.methods)
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        truth = evaluation.originals[r]
        panels = [(truth, "gray", 1.0, evaluation.names[r])]
        panels += [(m.reconstructions[r], "gray", 1.0, f"{m.method}\n{m.psnr[r]:.2f} dB") for m in evaluation.methods]
        panels += [(np.abs(m.reconstructions[r] - truth), "inferno", error_scale, f"|error| {m.method}")
                   for m in evaluation.methods]
        for ax, (img, cmap, vmax, title) in zip(axes[r], panels):
            ax.imshow(img, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path



def add_eval_arguments(p: Any) -> None:
    """The CS-MRI options of ``unroll eval`` (beside SPEC, --ckpt, --data, --out, --device)."""
    p.add_argument("--mask", type=int, default=None, metavar="PCT",
                   help="CS-MRI: sampling mask in percent, checked against the checkpoint's mask P")
    p.add_argument("--set", dest="mri_set", choices=("chest-val", "brain"), default="chest-val",
                   help="CS-MRI: test images (default chest-val: the 20 held-out chest images)")
    p.add_argument("--no-tv", action="store_true", help="CS-MRI: skip the TV-ADMM baseline column")


def run_eval_command(args: Any, model: nn.Module) -> int:
    """``unroll eval`` for a CS-MRI model: its mask P (from the checkpoint) measures the test
    images (downsampled to P's size); prints zero-filled / TV-ADMM / model; --out writes PNGs."""
    import json


    data_dir, where = resolve_data_dir(getattr(args, "data", None))
    print(where)
    P = getattr(model, model.operator_names[0]).detach().cpu().double().numpy()
    size = P.shape[-1]
    percent = getattr(args, "mask", None)
    if percent is not None:
        ref, src = load_mask(data_dir, percent, size)
        if not np.array_equal(ref, P):
            print(f"warning: the checkpoint's mask ({100 * P.mean():.1f}% sampled) differs from {src}; "
                  "measuring with the checkpoint's mask")
    wanted = getattr(args, "mri_set", "chest-val")
    task = MRITask.from_data_dir(data_dir, mask=percent or round(100 * P.mean()), size=size)
    if wanted == "brain" and task.test_label != "phantom":
        images = [(n, downsample(im, None if size == im.shape[-1] else size)) for n, im in load_brain(data_dir)]
    else:
        images = task.test_images
    label = wanted if task.test_label != "phantom" else "phantom"
    methods: dict[str, nn.Module] = {}
    if not getattr(args, "no_tv", False):
        methods["TV-ADMM"] = api.compile("zoo:tv_admm_mri", dtype=torch.float64, **{"P": P})
    methods[getattr(model, "spec_name", None) or "model"] = model
    result = evaluate_methods(methods, images, P, label=label)
    print(result.table())
    out = getattr(args, "out", None)
    if out:
        paths = write_pngs(result, out)
        scores = {"spec": str(getattr(args, "spec", "")), "ckpt": str(getattr(args, "ckpt", "")), **result.to_dict()}
        Path(out, "scores.json").write_text(json.dumps(scores, indent=1), encoding="utf-8")
        print(f"wrote {len(paths)} PNGs and {Path(out, 'scores.json')}")
    return 0
