"""zoo:tv_denoise_cp: classical Chambolle-Pock TV denoising against the same network with learned
per-layer steps sigma_k, tau_k and a learned lam, after a fixed CPU training budget.

    python -m benchmarks.bench_tv_cp [--budget 120] [--sigma 0.1] [--K 20] [--json PATH]

Train: random 64x64 patches of the T91 images with Gaussian noise (std --sigma on [0, 1]); test:
the central 128x128 crop of each Set11 image, fixed noise. Reported: mean test PSNR (peak 1) of the
noisy images, of the classical algorithm (initial steps 1/sqrt(8), lam picked on the training
patches from a grid), and of the trained network (Adam, lr 0.01, batch 16).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks.common import data_dir, machine, parser, set_threads, table, write_json  # noqa: E402
from unroll.data.images import load_folder  # noqa: E402


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    mse = ((x.clamp(0, 1) - ref) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def _patches(images, size: int, count: int, rng) -> torch.Tensor:
    out = []
    for _ in range(count):
        im = images[rng.integers(len(images))]
        i, j = rng.integers(im.shape[0] - size + 1), rng.integers(im.shape[1] - size + 1)
        out.append(im[i:i + size, j:j + size])
    return torch.tensor(np.stack(out), dtype=torch.float32)


def bench(budget: float = 120.0, sigma: float = 0.1, K: int = 20, data=None, seed: int = 0) -> dict:
    """Classical and learned test PSNR after `budget` seconds of training."""
    root = data_dir(data)
    train = [im for _, im in load_folder(root / "images" / "t91") if min(im.shape) >= 64]
    test = []
    for _, im in load_folder(root / "images" / "set11"):
        h, w = im.shape
        test.append(im[(h - 128) // 2:(h + 128) // 2, (w - 128) // 2:(w + 128) // 2])
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    clean = torch.tensor(np.stack(test), dtype=torch.float32)
    noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
    tune = _patches(train, 64, 64, rng)
    tune_noisy = tune + sigma * torch.randn(tune.shape, generator=gen)

    def model_with(lam: float, size: int):
        m = unroll.compile("zoo:tv_denoise_cp", K=K, dims={"h": size, "w": size})
        with torch.no_grad():
            m.lam.fill_(lam)
        return m
    grid = [0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2]
    with torch.no_grad():
        scores = {lam: _psnr(model_with(lam, 64)(y=tune_noisy), tune) for lam in grid}
    best = max(scores, key=scores.get)
    with torch.no_grad():
        classical = _psnr(model_with(best, 128)(y=noisy), clean)
    model = model_with(best, 64)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    start, steps = time.process_time(), 0
    while time.process_time() - start < budget:
        x = _patches(train, 64, 16, rng)
        batch = {"y": x + sigma * torch.randn(x.shape, generator=gen), "x_star": x}
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
        model.project_()
        steps += 1
    test_model = model_with(best, 128)
    test_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        learned = _psnr(test_model(y=noisy), clean)
    return {"K": K, "sigma": sigma, "budget_cpu_s": budget, "steps": steps, "lam_classical": best,
            "lam_learned": float(model.lam.detach()), "psnr_noisy": _psnr(noisy, clean),
            "psnr_classical": classical, "psnr_learned": learned,
            "tau": [float(layer.tau.detach()) for layer in model.layers],
            "sigma_steps": [float(layer.sigma.detach()) for layer in model.layers]}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_tv_cp")
    p.add_argument("--budget", type=float, default=120.0, help="CPU seconds of training")
    p.add_argument("--sigma", type=float, default=0.1, help="noise std on [0, 1]")
    p.add_argument("--K", type=int, default=20)
    args = p.parse_args(argv)
    set_threads(args.threads or 1, "cpu")
    r = bench(args.budget, args.sigma, args.K, args.data)
    print(table([[r["K"], r["sigma"], f"{r['budget_cpu_s']:.0f} s / {r['steps']} steps",
                  f"{r['psnr_noisy']:.2f}", f"{r['psnr_classical']:.2f} (lam {r['lam_classical']})",
                  f"{r['psnr_learned']:.2f} (lam {r['lam_learned']:.3f})"]],
                ["K", "noise", "training", "noisy dB", "classical CP dB", "learned CP dB"]))
    write_json(args.json, {"machine": machine("cpu"), "result": r})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
