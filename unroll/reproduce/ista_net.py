"""Reproduce ISTA-Net's Table 1: train ISTA-Net+ (and ISTA-Net, FISTA-Net) per CS ratio on T91
blocks within a time budget, evaluate on Set11, and print our PSNR next to the paper's."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..api import compile as compile_spec
from ..data import resolve_data_dir
from ..data.blockcs import BlockCSTask, block_gram, cut_blocks, load_block_images, load_phi, phi_file
from ..evaluate import evaluate_images
from ..train import TrainConfig, train
from ..train.budget import steps_for_budget
from ..zoo import weights as zoo_weights

__all__ = ["PAPER_TABLE1", "NETWORKS", "ReproduceConfig", "reproduce_ista_net", "ship_pretrained", "format_table"]

# Zhang & Ghanem, CVPR 2018, Table 1: mean PSNR (dB) on Set11 per CS ratio (%).
PAPER_TABLE1: dict[str, dict[int, float]] = {
    "ista_net_plus": {1: 17.34, 4: 21.31, 10: 26.64, 25: 32.57, 30: 33.82, 40: 36.06},
    "ista_net": {1: 17.30, 4: 21.23, 10: 25.80, 25: 31.53, 30: 32.91, 40: 35.36},
}
NETWORKS = {"ista_net_plus": "ISTA-Net+", "ista_net": "ISTA-Net", "fista_net": "FISTA-Net"}


@dataclass
class ReproduceConfig:
    """One reproduction: which networks and ratios, the training budget per (network, ratio), data."""

    ratios: tuple[float, ...] = (10, 25)
    budget_s: float = 600.0  # training time per (network, ratio)
    networks: tuple[str, ...] = ("ista_net_plus",)
    data_dir: str | None = None
    device: str = "cpu"
    out_dir: str = "runs/reproduce_ista_net"
    K: int = 9
    batch_size: int = 64
    lr: float = 1e-3
    n_blocks: int = 88912
    test_blocks: int = 128  # evenly spaced Set11 blocks for the NMSE log during training
    seed: int = 0
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _label(r: float) -> str:
    return f"{int(r)}" if float(r).is_integer() else f"{r:g}"


def reproduce_ista_net(cfg: ReproduceConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and evaluate every (network, ratio); returns (and writes to out_dir/results.json) the rows."""
    unknown = [n for n in cfg.networks if n not in NETWORKS]
    if unknown:
        raise ValueError(f"unknown network {', '.join(unknown)}; choose from {', '.join(NETWORKS)}")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {cfg.device!r} requested but CUDA is not available")
    data_dir, where = resolve_data_dir(cfg.data_dir)
    log(where)
    train_imgs, test_imgs, image_source = load_block_images(data_dir, seed=cfg.seed)
    log(image_source)
    blocks = cut_blocks([im for _, im in train_imgs], cfg.n_blocks, seed=cfg.seed)
    gram = block_gram(blocks)  # shared by every ratio's Q
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name(0) if cfg.device.startswith("cuda") else "cpu"
    rows: list[dict[str, Any]] = []
    for ratio in cfg.ratios:
        phi, phi_source = load_phi(data_dir, ratio, seed=cfg.seed)
        log(phi_source)
        for net in cfg.networks:
            task = BlockCSTask(phi, blocks, test_imgs, ratio=ratio, seed=cfg.seed, gram=gram,
                               test_blocks=cfg.test_blocks, source=f"{phi_source}; {image_source}",
                               generated_phi=phi_file(data_dir, ratio) is None)
            model = compile_spec(f"zoo:{net}", K=cfg.K, **task.operators())
            steps = steps_for_budget(model, task, cfg.budget_s, cfg.batch_size, cfg.lr, 200, cfg.device)
            run_dir = out / f"{net}_r{_label(ratio)}"
            tc = TrainConfig(lr=cfg.lr, schedule="cosine", batch_size=cfg.batch_size, steps=steps,
                             time_budget=cfg.budget_s, eval_every=max(1, steps // 4),
                             checkpoint_every=max(1, steps // 4), device=cfg.device, seed=cfg.seed,
                             out_dir=str(run_dir))
            log(f"{NETWORKS[net]} at {_label(ratio)}% (M={phi.shape[0]}): about {steps} steps of batch "
                f"{cfg.batch_size} in {cfg.budget_s:g}s on {device_name}, lr {cfg.lr:g} cosine")
            result = train(model, task, tc, progress=cfg.progress)
            t0 = time.monotonic()
            scores = evaluate_images(model, phi, test_imgs)
            paper = PAPER_TABLE1.get(net, {}).get(int(ratio)) if float(ratio).is_integer() else None
            row = {
                "network": net, "ratio": ratio, "M": int(phi.shape[0]), "phi": phi_source,
                "generated_phi": task.generated_phi, "steps": result.steps, "planned_steps": steps,
                "train_seconds": round(result.elapsed, 1), "eval_seconds": round(time.monotonic() - t0, 1),
                "final_loss": result.final_loss, "test_nmse_db": result.layer_nmse_db[-1],
                "psnr": scores.mean_psnr, "ssim": scores.mean_ssim, "paper_psnr": paper,
                "images": scores.to_dict()["images"], "checkpoint": str(result.last_checkpoint),
            }
            rows.append(row)
            log(f"{NETWORKS[net]} {_label(ratio)}%: test-image PSNR {scores.mean_psnr:.2f} dB, SSIM "
                f"{scores.mean_ssim:.4f}" + (f" (paper {paper:.2f})" if paper is not None else ""))
            _write(out / "results.json", cfg, device_name, image_source, rows)
    _write(out / "results.json", cfg, device_name, image_source, rows)
    return {"rows": rows, "results": str(out / "results.json"), "device": device_name}


def _write(path: Path, cfg: ReproduceConfig, device: str, images: str, rows: list[dict[str, Any]]) -> None:
    record = {"config": asdict(cfg), "device": device, "images": images, "torch": torch.__version__,
              "paper": "Zhang & Ghanem, ISTA-Net, CVPR 2018, Table 1 (Set11, 200 epochs on 88,912 T91 blocks)",
              "rows": rows}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Our Set11 PSNR/SSIM next to the paper's Table 1, one line per (network, ratio)."""
    head = f"{'network':<10} {'ratio':>6} {'M':>4} {'ours dB':>8} {'SSIM':>6} {'paper dB':>9} {'diff':>6} {'steps':>6} {'train s':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        paper = r.get("paper_psnr")
        p_txt = f"{paper:9.2f}" if paper is not None else f"{'-':>9}"
        d_txt = f"{r['psnr'] - paper:+6.2f}" if paper is not None else f"{'-':>6}"
        mark = "*" if r.get("generated_phi") else ""
        lines.append(f"{NETWORKS.get(r['network'], r['network']):<10} {_label(r['ratio']) + '%' + mark:>6} "
                     f"{r['M']:>4} {r['psnr']:8.2f} {r['ssim']:6.4f} {p_txt} {d_txt} {r['steps']:>6} "
                     f"{r['train_seconds']:8.0f}")
    if any(r.get("generated_phi") for r in rows):
        lines.append("* Phi generated (row-orthonormal Gaussian), not the paper's matrix")
    return "\n".join(lines)


def ship_pretrained(model: torch.nn.Module, name: str, ratio: float, record: dict[str, Any],
                    directory: str | os.PathLike | None = None) -> Path:
    """Save ``model``'s state dict (operators included) and ``record`` as shipped weights for (name, ratio)."""
    d = Path(directory) if directory is not None else zoo_weights.PRETRAINED_DIR  # read at call time
    d.mkdir(parents=True, exist_ok=True)
    stem = f"{name.removeprefix('zoo:')}_r{_label(ratio)}"
    state = {k: v.detach().cpu().float().clone() if v.is_floating_point() else v.detach().cpu().clone()
             for k, v in model.state_dict().items()}
    torch.save(state, d / f"{stem}.pt")
    (d / f"{stem}.json").write_text(json.dumps({"K": int(model.K), **record}, indent=1), encoding="utf-8")
    return d / f"{stem}.pt"
