"""`unroll reproduce admm-net --published DIR`: the authors' own table for Deep ADMM-Net (their
README: Brain_data1/2 with net-stage7/14/15), next to the released weights run by our compiled
zoo:admm_net_exact and, given a training budget, the same spec trained by us.

DIR holds the released files (`net-stage{7,14,15}.mat`, `Brain_data{1,2}.mat`, `mask_20.mat`, and
optionally `reference_reconstructions.npz`), or is a folder with them under `admm_net/`. PSNR and
re_LOss follow the authors' demo: PSNR = 10 log10(1 / mean((|x̂| − x)²)), re_LOss = ‖x̂ − x‖/‖x‖.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import api
from ..data.mri import MRITask
from ..published import load_published
from ..published.operators import read_mat
from ..train import TrainConfig, train

__all__ = ["PAPER", "STAGES", "IMAGES", "published_dir", "score", "run_published", "format_published"]

# The authors' results (yangyan92/Deep-ADMM-Net README): (PSNR dB, re_LOss) per image and network.
PAPER = {
    ("Brain_data1", 15): (35.85, 0.0561), ("Brain_data1", 14): (35.83, 0.0562),
    ("Brain_data1", 7): (35.60, 0.0578),
    ("Brain_data2", 15): (30.67, 0.0927), ("Brain_data2", 14): (30.65, 0.0929),
    ("Brain_data2", 7): (30.40, 0.0957),
}
STAGES = (15, 14, 7)
IMAGES = ("Brain_data1", "Brain_data2")


def published_dir(path: str | Path) -> Path:
    """The folder holding net-stage*.mat: DIR itself or DIR/admm_net."""
    d = Path(path)
    for cand in (d, d / "admm_net"):
        if cand.is_dir() and any(cand.glob("net-stage*.mat")):
            return cand
    raise FileNotFoundError(f"no net-stage*.mat in {d} or {d / 'admm_net'} (the released Deep "
                            "ADMM-Net networks)")


def score(x_hat: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(PSNR dB of |x̂| at peak 1, re_LOss ‖x̂ − x‖_F / ‖x‖_F) as the authors' demo computes them."""
    mse = float(np.mean((np.abs(x_hat) - x) ** 2))
    psnr = 10 * math.log10(1.0 / mse) if mse > 0 else math.inf
    return psnr, float(np.linalg.norm(x_hat - x) / np.linalg.norm(x))


def _image(d: Path, name: str) -> np.ndarray:
    x = read_mat(d / f"{name}.mat", "im_ori", what="image")
    if x.ndim != 2:
        raise ValueError(f"{d / (name + '.mat')}: im_ori must be a 2-D image, found shape {x.shape}")
    return x


def _reconstruct(model: torch.nn.Module, x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """x̂ for the image x: y = P ⊙ fft2(x) (orthonormal; the authors' unnormalised pair gives the
    same x̂), through the compiled network."""
    P = model.P.detach().cpu().double().numpy()
    y = torch.as_tensor(P * np.fft.fft2(x, norm="ortho"))[None]
    y = y.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    with torch.no_grad():
        return model(y)[0].double().cpu().numpy()


def _released_rows(d: Path, mask: Path, log: Callable[[str], None]) -> tuple[list[dict], dict]:
    ref_path = d / "reference_reconstructions.npz"
    ref = dict(np.load(ref_path)) if ref_path.is_file() else {}
    rows, models = [], {}
    for stage in STAGES:
        net = d / f"net-stage{stage}.mat"
        if not net.is_file():
            log(f"skipped net-stage{stage}: {net} not found")
            continue
        for dtype in (torch.float64, torch.float32):
            model = load_published("zoo:admm_net_exact", net, mask_file=mask, dtype=dtype)
            models[(stage, dtype)] = model
            for name in IMAGES:
                x = _image(d, name)
                x_hat = _reconstruct(model, x, dtype)
                key = f"{name}_stage{stage}_rec"
                delta = float(np.abs(x_hat - ref[key]).max()) if key in ref else None
                if dtype == torch.float64:
                    psnr, rel = score(x_hat, x)
                    rows.append({"image": name, "stage": stage, "K": int(model.K),
                                 "parameters": sum(p.numel() for p in model.parameters()),
                                 "paper_psnr": PAPER[(name, stage)][0], "paper_re_loss": PAPER[(name, stage)][1],
                                 "psnr": psnr, "re_loss": rel, "max_dx_float64": delta,
                                 "sha256": model.imported["sha256"]})
                else:
                    row = next(r for r in rows if r["image"] == name and r["stage"] == stage)
                    row["max_dx_float32"] = delta
                    row["psnr_float32"] = score(x_hat, x)[0]
        log(f"net-stage{stage}: K={models[(stage, torch.float64)].K} stages + the final X layer")
    return rows, models


def _train_rows(d: Path, stage: int, args: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """Train zoo:admm_net_exact (net-stage{stage}'s depth) on the chest training images at 20 %
    for the budget, then score it on the two demo images."""
    task = MRITask.from_data_dir(getattr(args, "data", None), mask=20, seed=getattr(args, "seed", 0))
    log(f"training zoo:admm_net_exact (K={stage + 2}) for {args.budget:g} s: {task.describe()}")
    net = api.compile("zoo:admm_net_exact", K=stage + 2, **task.operators())
    out = Path(getattr(args, "out", None) or "runs/reproduce_admm_net_published") / f"train_stage{stage}"
    cfg = TrainConfig(lr=getattr(args, "lr", None) or 2e-3, batch_size=getattr(args, "batch_size", None) or 4,
                      steps=5000, time_budget=args.budget, schedule="cosine", eval_every=200,
                      checkpoint_every=200, eval_batch_size=4, device=getattr(args, "device", "cpu"),
                      seed=getattr(args, "seed", 0), out_dir=str(out))
    result = train(net, task, cfg, progress=not getattr(args, "quiet", False))
    scores = {name: score(_reconstruct(net, _image(d, name), torch.float32), _image(d, name))
              for name in IMAGES}
    return {"stage": stage, "steps": result.steps, "seconds": result.elapsed, "scores": scores,
            "checkpoint": str(result.last_checkpoint), "task": task.describe()}


def format_published(report: dict[str, Any]) -> str:
    """The authors' table with our columns: released weights through zoo:admm_net_exact, and trained."""
    trained = {t["stage"]: t for t in report.get("trained", [])}
    head = (f"{'image':<12} {'network':<12} {'paper PSNR / re_LOss':>20}  {'released, ours':>16}  "
            f"{'max|dx| f64':>11}  {'max|dx| f32':>11}" + ("  trained by us" if trained else ""))
    lines = [head]
    for r in report["rows"]:
        def fmt(v):
            return "-" if v is None else f"{v:.1e}"
        line = (f"{r['image']:<12} {'net-stage' + str(r['stage']):<12} "
                f"{r['paper_psnr']:>12.2f} / {r['paper_re_loss']:.4f}  {r['psnr']:>7.2f} / {r['re_loss']:.4f}  "
                f"{fmt(r.get('max_dx_float64')):>11}  {fmt(r.get('max_dx_float32')):>11}")
        if r["stage"] in trained:
            p, rel = trained[r["stage"]]["scores"][r["image"]]
            line += f"  {p:7.2f} / {rel:.4f}"
        lines.append(line)
    lines.append("released: the authors' weights imported into zoo:admm_net_exact, float64; max|dx|: "
                 "largest |x̂ − x̂_ref| against reference_reconstructions.npz")
    for t in trained.values():
        lines.append(f"trained: zoo:admm_net_exact K={t['stage'] + 2}, {t['steps']} steps in "
                     f"{t['seconds']:.0f} s on {t['task']}")
    return "\n".join(lines)


def run_published(args: Any, log: Callable[[str], None] = print) -> int:
    """`unroll reproduce admm-net --published DIR [--budget T]`: print the table, write results.json."""
    d = published_dir(args.published)
    mask = getattr(args, "mask_file", None) or d / "mask_20.mat"
    if not Path(mask).is_file():
        data = getattr(args, "data", None)
        mask = Path(data) / "mri" / "masks" / "mask_20.mat" if data else mask
    started = time.monotonic()
    rows, _ = _released_rows(d, Path(mask), log)
    if not rows:
        raise FileNotFoundError(f"{d}: none of net-stage{{{','.join(map(str, STAGES))}}}.mat found")
    report: dict[str, Any] = {"published": str(d), "mask": str(mask), "rows": rows}
    if getattr(args, "budget_given", False):  # our own column only when --budget is given
        report["trained"] = [_train_rows(d, s, args, log) for s in sorted({r["stage"] for r in rows},
                                                                           reverse=True)[:1]]
    report["seconds"] = time.monotonic() - started
    out = Path(getattr(args, "out", None) or "runs/reproduce_admm_net_published")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    print(format_published(report))
    print(f"results: {out / 'results.json'}")
    return 0
