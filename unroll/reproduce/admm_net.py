"""Reproduce Deep ADMM-Net (Yang, Sun, Li & Xu, NIPS 2016) on the public data: train ``zoo:admm_net``
on the chest training split per sampling ratio, then score zero-filled, TV-ADMM (``zoo:tv_admm_mri``)
and the trained network on the held-out chest images and the 50 brain test images, next to the
paper's PSNR.

Differences from the paper, stated in the output: the paper trained on 100 chest images and tested
on 50 other chest images (not public), and its brain results come from a network trained on brain
images (not public); here 80 chest images train, 20 are held out, and the brain set is scored with
the chest-trained network. The paper trained with L-BFGS; here Adam for a time budget. Reported
weights are the last ones (not the best on the held-out images, which would bias the chest score).
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .. import api
from ..data.mri import MRITask, downsample, load_brain
from ..evaluate.mri import evaluate_methods, write_pngs
from ..train import TrainConfig, train
from ..train.budget import parse_duration
from ..train.logs import json_safe

__all__ = [
    "PAPER_PSNR", "ReproductionConfig", "reproduce", "format_table", "add_arguments",
    "run_command",
]

# ADMM-Net₁₅ mean PSNR (dB) from the paper's Table 1 (brain) and Table 2 (chest).
PAPER_PSNR = {"brain": {20: 37.17, 30: 39.84, 40: 41.56, 50: 43.00}, "chest-val": {20: 37.84}}
SETS = ("chest-val", "brain")


@dataclass
class ReproductionConfig:
    """What to train and score; ``budget`` is training seconds per mask (as ``reproduce ista-net``)."""

    masks: tuple[int, ...] = (20, 30, 40, 50)
    K: int = 15
    budget: float | None = 600.0
    steps: int = 5000  # upper bound per mask; the budget usually stops training first
    batch_size: int = 4
    lr: float = 2e-3
    eval_every: int = 200
    size: int | None = None
    sets: tuple[str, ...] = SETS
    device: str = "cpu"
    float64: bool = False
    data_dir: str | None = None
    out_dir: str = "runs/reproduce_admm_net"
    seed: int = 0
    pngs: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.masks = tuple(int(m) for m in self.masks)
        self.sets = tuple(self.sets)
        bad = [s for s in self.sets if s not in SETS]
        if bad:
            raise ValueError(f"unknown test set(s) {', '.join(bad)}; choose from {', '.join(SETS)}")
        if not self.masks:
            raise ValueError("give at least one mask percentage")


def _device_words(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _run_mask(cfg: ReproductionConfig, percent: int, budget: float | None, log: Callable[[str], None]) -> dict:
    """Train ADMM-Net for one mask and score the methods on each test set."""
    dtype = torch.float64 if cfg.float64 else torch.float32
    task = MRITask.from_data_dir(cfg.data_dir, mask=percent, size=cfg.size, seed=cfg.seed)
    log(f"[mask {percent}%] {task.describe()}")
    net = api.compile("zoo:admm_net", K=cfg.K, dtype=dtype, device=cfg.device, **task.operators())
    tv = api.compile("zoo:tv_admm_mri", dtype=dtype, device=cfg.device, **task.operators())
    out = Path(cfg.out_dir) / f"mask_{percent}"
    tcfg = TrainConfig(
        lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps, time_budget=budget, schedule="cosine",
        eval_every=cfg.eval_every, checkpoint_every=cfg.eval_every, eval_batch_size=cfg.batch_size,
        device=cfg.device, seed=cfg.seed, out_dir=str(out / "train"),
    )
    result = train(net, task, tcfg, progress=cfg.progress)
    log(f"[mask {percent}%] trained {result.steps}/{result.total_steps} steps in {result.elapsed:.0f} s "
        f"({result.stopped}); held-out NMSE {result.layer_nmse_db[-1]:.2f} dB")
    scored: dict[str, Any] = {}
    for name in cfg.sets:
        if name == "brain" and task.test_label == "phantom":
            continue
        images = task.test_images if name == "chest-val" or task.test_label == "phantom" else load_brain(cfg.data_dir)
        if cfg.size is not None and name == "brain":

            images = [(n, downsample(im, cfg.size)) for n, im in images]
        label = task.test_label if task.test_label == "phantom" else name
        ev = evaluate_methods({"TV-ADMM": tv, "ADMM-Net": net}, images, task.mask, label=label)
        log(ev.table(per_image=False))
        if cfg.pngs:
            write_pngs(ev, out / label)
        scored[label] = {**ev.to_dict(), "paper_admm_net_psnr": PAPER_PSNR.get(label, {}).get(percent)}
    return {
        "mask": percent,
        "sampled_fraction": float(task.mask.mean()),
        "task": task.describe(),
        "train": {
            "steps": result.steps, "seconds": result.elapsed, "stopped": result.stopped,
            "heldout_nmse_db": result.layer_nmse_db[-1], "checkpoint": str(result.last_checkpoint),
        },
        "sets": scored,
    }


def reproduce(cfg: ReproductionConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and score every mask; writes ``results.json`` in ``cfg.out_dir`` and returns it."""
    started = time.monotonic()
    runs = [_run_mask(cfg, p, cfg.budget, log) for p in cfg.masks]
    report = {
        "paper": "Yang, Sun, Li & Xu, Deep ADMM-Net for Compressive Sensing MRI, NIPS 2016 (ADMM-Net15)",
        "config": asdict(cfg),
        "device": _device_words(cfg.device),
        "torch": torch.__version__,
        "seconds": time.monotonic() - started,
        "conventions": "PSNR peak 1 on [0,1] images, output not clipped, mean over images; "
                       "NMSE = ||x_hat - x|| / ||x||",
        "notes": [
            "trained on 80 chest images (every 5th of 100 held out); the paper trained on 100 and tested on 50 other chest images",
            "brain rows use the chest-trained network; the paper's brain network was trained on brain images",
            "Adam with a time budget instead of the paper's L-BFGS; last weights reported",
        ],
        "runs": runs,
    }
    if cfg.size is not None:
        report["notes"].append(f"images downsampled to {cfg.size}x{cfg.size}: not comparable with the paper's 256x256")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(json_safe(report), indent=1))
    return report


def format_table(report: dict[str, Any]) -> str:
    """Mean PSNR (dB) per mask and test set: zero-filled, TV-ADMM, ours, the paper's ADMM-Net."""
    head = (f"{'mask':>4}  {'set':<9}  {'images':>6}  {'zero-filled':>11}  {'TV-ADMM':>7}  "
            f"{'ADMM-Net ours':>13}  {'paper':>6}  training")
    lines = [head]
    for run in report["runs"]:
        t = run["train"]
        trained = f"{t['steps']} steps, {t['seconds']:.0f} s"
        for label, s in run["sets"].items():
            m = s["methods"]
            paper = s.get("paper_admm_net_psnr")
            lines.append(
                f"{run['mask']:>3}%  {label:<9}  {len(s['images']):>6}  {m['zero-filled']['mean_psnr']:>11.2f}  "
                f"{m['TV-ADMM']['mean_psnr']:>7.2f}  {m['ADMM-Net']['mean_psnr']:>13.2f}  "
                f"{paper if paper is not None else '-':>6}  {trained}"
            )
    lines.append(f"device: {report['device']}; PSNR peak 1, mean over images")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def add_arguments(p: Any) -> None:
    """The ADMM-Net options of ``unroll reproduce admm-net`` (beside the shared --budget, --data, ...)."""
    p.add_argument("--masks", type=int, nargs="+", default=None, metavar="PCT",
                   help="admm-net: sampling masks in percent (default 20 30 40 50; files mask_{PCT}.mat)")
    p.add_argument("--size", type=int, default=None, metavar="S",
                   help="admm-net: block-average images to SxS (S divides 256; fast CPU runs, not comparable)")
    p.add_argument("--sets", nargs="+", choices=SETS, default=None,
                   help="admm-net: test sets (default chest-val brain)")
    p.add_argument("--pngs", action="store_true", help="admm-net: write reconstructions and error maps")
    p.add_argument("--float64", action="store_true", help="admm-net: train and score in float64")


def run_command(args: Any) -> int:
    """``unroll reproduce admm-net``: train, score, print the comparison table, write results.json."""
    cfg = ReproductionConfig(
        masks=tuple(getattr(args, "masks", None) or (20, 30, 40, 50)),
        K=getattr(args, "K", None) or 15,
        budget=parse_duration(getattr(args, "budget", None)),
        batch_size=getattr(args, "batch_size", None) or 4,
        lr=getattr(args, "lr", None) or 2e-3,
        size=getattr(args, "size", None),
        sets=tuple(getattr(args, "sets", None) or SETS),
        device=getattr(args, "device", "cpu"),
        float64=bool(getattr(args, "float64", False)),
        data_dir=getattr(args, "data", None),
        out_dir=getattr(args, "out", None) or "runs/reproduce_admm_net",
        seed=getattr(args, "seed", 0),
        pngs=bool(getattr(args, "pngs", False)),
        progress=not getattr(args, "quiet", False),
    )
    report = reproduce(cfg)
    print(format_table(report))
    print(f"results: {Path(cfg.out_dir) / 'results.json'}")
    return 0
