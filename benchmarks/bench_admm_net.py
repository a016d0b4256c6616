"""Compiled ADMM-Net against a hand-written PyTorch ADMM-Net with the same stages and weights.

    python -m benchmarks.bench_admm_net [--device cuda] [--size 256] [--batch 8] [--quick] [--json PATH]

zoo:admm_net, 15 stages, L = 8 filters of 3x3, PLF with 101 points, on size x size images (256 by
default; 64 with --quick), with the 20 % k-space mask (mri/masks/mask_20.mat resampled, else a
generated radial mask). The hand-written stage is the usual one: the X layer as one division in
k-space, C as circular convolution through the FFT, the PLF by gather, the multiplier update.
Forward and forward+backward (loss NMSE) are timed in one process, alternating; images/s.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks.common import (check_close, compare, data_dir, machine, no_grad, parser,  # noqa: E402
                               peak_memory, ratio_table, set_threads, train_step, write_json)
from unroll.data.mri import load_mask, undersample  # noqa: E402

RATIO_GOAL = 1.05
STAGES = 15


def otf(H: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """psf2otf: the filters [L, a, b] zero-padded to h x w, centred at [0, 0], in Fourier."""
    a, b = H.shape[-2:]
    pad = torch.roll(F.pad(H, (0, w - b, 0, h - a)), shifts=(-(a // 2), -(b // 2)), dims=(-2, -1))
    return torch.fft.fft2(pad)


def plf(v: torch.Tensor, q: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Piecewise-linear function of v [B, L, h, w] through the values q [L, n] on a uniform grid."""
    n = q.shape[-1]
    t = (v - lo) / ((hi - lo) / (n - 1))
    i = torch.clamp(torch.floor(t.detach()), 0, n - 2).long()
    qb = q.unsqueeze(0).expand(v.shape[0], -1, -1)
    idx = i.flatten(2)
    left = torch.gather(qb, 2, idx).view_as(v)
    right = torch.gather(qb, 2, idx + 1).view_as(v)
    return left + (t - i) * (right - left)


class HandStage(torch.nn.Module):
    """One ADMM-Net stage: reconstruction X, convolution C, nonlinear Z (PLF), multiplier M."""

    def __init__(self, layer: torch.nn.Module, rho: torch.Tensor):
        super().__init__()
        P = lambda t: torch.nn.Parameter(t.detach().clone())  # noqa: E731
        self.H, self.D, self.rho, self.eta, self.q = P(layer.H), P(layer.D), P(rho), P(layer.eta), P(layer.q)

    def forward(self, Py: torch.Tensor, mask: torch.Tensor, z, beta):
        h, w = Py.shape[-2:]
        otf_h = otf(self.H, h, w)
        num = Py
        if z is not None:
            num = Py + (torch.conj(otf_h) * torch.fft.fft2(self.rho * (z - beta), norm="ortho")).sum(-3)
        den = mask + (self.rho * otf_h.abs() ** 2).sum(-3)
        x = torch.fft.ifft2(num / den, norm="ortho").real
        c = torch.fft.ifft2(otf(self.D, h, w) * torch.fft.fft2(x).unsqueeze(-3)).real
        z_new = plf(c if beta is None else c + beta, self.q)
        step = self.eta * (c - z_new)
        return x, z_new, step if beta is None else beta + step


class HandADMMNet(torch.nn.Module):
    """ADMM-Net by hand: z = beta = 0, then the stages; returns the last reconstruction."""

    def __init__(self, compiled: torch.nn.Module):
        super().__init__()
        self.register_buffer("mask", compiled.P.detach().clone())
        pv = compiled.parameter_values()
        self.stages = torch.nn.ModuleList(HandStage(layer, pv[f"rho_{k}"])
                                          for k, layer in enumerate(compiled.layers))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        Py = self.mask * y
        z = beta = None
        for stage in self.stages:
            x, z, beta = stage(Py, self.mask, z, beta)
        return x

    def loss(self, y: torch.Tensor, x_star: torch.Tensor) -> torch.Tensor:
        """NMSE of the reconstruction."""
        return torch.sum((self(y) - x_star) ** 2) / torch.sum(x_star ** 2)


def setup(batch: int, size: int, device: str, data: Path | None, seed: int = 0):
    """(compiled module, hand-written module, batch dict, sentence on the mask) on `device`."""
    mask, where = load_mask(data, 20, size)
    compiled = unroll.compile("zoo:admm_net", dims={"h": size, "w": size}, dtype=torch.float32,
                              device=device, P=mask)
    hand = HandADMMNet(compiled).to(device)
    gen = torch.Generator().manual_seed(seed)
    x_star = torch.rand(batch, size, size, generator=gen).to(device)
    return compiled, hand, {"y": undersample(x_star, compiled.P), "x_star": x_star}, where


def bench(batch: int, size: int, device: str, repeats: int, data: Path | None = None,
          memory: bool = True) -> dict:
    """Forward and forward+backward medians of compiled and hand-written ADMM-Net, images/s, peak memory."""
    compiled, hand, b, where = setup(batch, size, device, data)
    y, x_star = b["y"], b["x_star"]
    with torch.no_grad():
        diff = check_close(compiled(y=y), hand(y), "compiled and hand-written ADMM-Net")
    passes = {
        "forward": {"compiled": no_grad(lambda: compiled(y=y)), "hand": no_grad(lambda: hand(y))},
        "forward+backward": {"compiled": train_step(compiled, lambda: compiled.loss(b)),
                             "hand": train_step(hand, lambda: hand.loss(y, x_star))},
    }
    out = {"mask": where, "batch": batch, "size": size, "max_abs_diff": diff,
           "runtime": compare(passes, repeats, device)}
    out["images_per_s"] = {k: batch / out["runtime"]["forward"][k]["median_s"] for k in ("compiled", "hand")}
    if memory:
        out["peak_memory"] = {f"{what} {k}": peak_memory(fn, device)
                              for what, fns in passes.items() for k, fn in fns.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_admm_net")
    p.add_argument("--size", type=int, default=None, help="image side (default 256; 64 with --quick)")
    p.add_argument("--batch", type=int, default=None, help="images per batch (default 8; 4 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs of each (default 30; 8 with --quick)")
    p.add_argument("--quick", action="store_true", help="a short CPU run: 64x64, batch 4, 8 repeats")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    args = p.parse_args(argv)
    size = args.size or (64 if args.quick else 256)
    batch = args.batch or (4 if args.quick else 8)
    repeats = args.repeats or (8 if args.quick else 30)
    set_threads(args.threads, args.device)
    info = machine(args.device)
    print(f"machine: {info}")
    r = bench(batch, size, args.device, repeats, data_dir(args.data), memory=not args.no_memory)
    print(r["mask"])
    print(f"\nADMM-Net {STAGES} stages, {size}x{size}, batch {batch}, float32, {args.device}, "
          f"{repeats} interleaved runs each (median); max |diff| {r['max_abs_diff']:.2e}")
    print(ratio_table(r["runtime"], RATIO_GOAL, per_call=batch))
    for name, m in r.get("peak_memory", {}).items():
        print(f"peak memory {name}: {m['peak_bytes'] / 2**20:.1f} MiB ({m['method']})")
    path = write_json(args.json, {"benchmark": "bench_admm_net", "machine": info, "dtype": "float32",
                                  "repeats": repeats, **r, "goals": {"ratio": RATIO_GOAL}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
