"""Compiled ISTA-Net+ against a hand-written PyTorch ISTA-Net+ (as the paper's released code does it).

    python -m benchmarks.bench_ista_net [--device cuda] [--batch 64] [--quick] [--json PATH]

zoo:ista_net_plus, 9 phases, 33x33 blocks, CS ratio 25 % (Phi from cs_phi/phi_0_25_1089.mat when
the data folder has it, else generated with orthonormal rows), Q = Phi' (the initialisation only
matters for accuracy, not speed). Both networks share the compiled module's weights. Forward
(inference, no symmetry term) and forward+backward (loss mse + 0.01 * sym) are timed in one process,
alternating, and the medians compared (goal: ratio <= 1.05); then blocks/s and peak memory.
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
from unroll.data.blockcs import load_phi  # noqa: E402

RATIO_GOAL = 1.05
PHASES = 9


class HandPhase(torch.nn.Module):
    """One ISTA-Net+ phase written as in the authors' BasicBlock: raw conv weights, F.conv2d, padding 1."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        P = lambda t: torch.nn.Parameter(t.detach().clone())  # noqa: E731
        self.lambda_step, self.soft_thr = P(layer.rho), P(layer.theta)
        self.conv_D, self.conv_G = P(layer.D[0].weight), P(layer.G[0].weight)
        self.conv1_forward, self.conv2_forward = P(layer.H[0].weight), P(layer.H[2].weight)
        self.conv1_backward, self.conv2_backward = P(layer.Ht[0].weight), P(layer.Ht[2].weight)

    def forward(self, x: torch.Tensor, PhiTPhi: torch.Tensor, PhiTb: torch.Tensor, sym: bool):
        x = x - self.lambda_step * torch.mm(x, PhiTPhi)
        x = x + self.lambda_step * PhiTb
        x_input = x.view(-1, 1, 33, 33)
        x_D = F.conv2d(x_input, self.conv_D, padding=1)
        x = F.relu(F.conv2d(x_D, self.conv1_forward, padding=1))
        x_forward = F.conv2d(x, self.conv2_forward, padding=1)
        x = torch.mul(torch.sign(x_forward), F.relu(torch.abs(x_forward) - self.soft_thr))
        x = F.relu(F.conv2d(x, self.conv1_backward, padding=1))
        x_backward = F.conv2d(x, self.conv2_backward, padding=1)
        x_pred = (x_input + F.conv2d(x_backward, self.conv_G, padding=1)).view(-1, 1089)
        if not sym:
            return x_pred, None
        x = F.relu(F.conv2d(x_forward, self.conv1_backward, padding=1))
        return x_pred, F.conv2d(x, self.conv2_backward, padding=1) - x_D


class HandISTANetPlus(torch.nn.Module):
    """ISTA-Net+ by hand: x0 = y Q', then the phases; returns x and the symmetry residuals."""

    def __init__(self, compiled: torch.nn.Module):
        super().__init__()
        self.register_buffer("Phi", compiled.Phi.detach().clone())
        self.register_buffer("Q", compiled.Q.detach().clone())
        self.register_buffer("PhiTPhi", (compiled.Phi.T @ compiled.Phi).detach())
        self.phases = torch.nn.ModuleList(HandPhase(layer) for layer in compiled.layers)

    def forward(self, y: torch.Tensor, sym: bool = True):
        PhiTb = torch.mm(y, self.Phi)
        x = torch.mm(y, self.Q.t())
        layers_sym = []
        for phase in self.phases:
            x, s = phase(x, self.PhiTPhi, PhiTb, sym)
            layers_sym.append(s)
        return x, layers_sym

    def loss(self, y: torch.Tensor, x_star: torch.Tensor) -> torch.Tensor:
        """The authors' loss: mse + 0.01 * sum over phases of mean(sym^2)."""
        x, syms = self(y)
        constraint = sum(torch.mean(torch.pow(s, 2)) for s in syms)
        return torch.mean(torch.pow(x - x_star, 2)) + 0.01 * constraint


def setup(batch: int, device: str, data: Path | None, seed: int = 0):
    """(compiled module, hand-written module, batch dict, sentence on Phi) on `device`."""
    phi, where = load_phi(data, 25)
    compiled = unroll.compile("zoo:ista_net_plus", dtype=torch.float32, device=device,
                              Phi=phi, Q=phi.T)
    hand = HandISTANetPlus(compiled).to(device)
    gen = torch.Generator().manual_seed(seed)
    x_star = torch.rand(batch, 1089, generator=gen).to(device)  # pixel values in [0, 1]
    y = x_star @ compiled.Phi.T
    return compiled, hand, {"y": y, "x_star": x_star}, where


def bench(batch: int, device: str, repeats: int, data: Path | None = None, memory: bool = True) -> dict:
    """Forward and forward+backward medians of compiled and hand-written ISTA-Net+, blocks/s, peak memory."""
    compiled, hand, b, where = setup(batch, device, data)
    y, x_star = b["y"], b["x_star"]
    with torch.no_grad():
        diff = check_close(compiled(y=y), hand(y, sym=False)[0], "compiled and hand-written ISTA-Net+")
    loss_diff = abs(compiled.loss(b).item() - hand.loss(y, x_star).item())
    passes = {
        "forward": {"compiled": no_grad(lambda: compiled(y=y)),
                    "hand": no_grad(lambda: hand(y, sym=False))},
        "forward+backward": {"compiled": train_step(compiled, lambda: compiled.loss(b)),
                             "hand": train_step(hand, lambda: hand.loss(y, x_star))},
    }
    out = {"phi": where, "batch": batch, "max_abs_diff": diff, "loss_abs_diff": loss_diff,
           "runtime": compare(passes, repeats, device)}
    out["blocks_per_s"] = {k: batch / out["runtime"]["forward"][k]["median_s"] for k in ("compiled", "hand")}
    if memory:
        out["peak_memory"] = {f"{what} {k}": peak_memory(fn, device)
                              for what, fns in passes.items() for k, fn in fns.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_ista_net")
    p.add_argument("--batch", type=int, default=None, help="blocks per batch (default 64; 16 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs of each (default 30; 8 with --quick)")
    p.add_argument("--quick", action="store_true", help="a short CPU run: batch 16, 8 repeats")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    args = p.parse_args(argv)
    batch = args.batch or (16 if args.quick else 64)
    repeats = args.repeats or (8 if args.quick else 30)
    set_threads(args.threads, args.device)
    info = machine(args.device)
    print(f"machine: {info}")
    r = bench(batch, args.device, repeats, data_dir(args.data), memory=not args.no_memory)
    print(r["phi"])
    print(f"\nISTA-Net+ {PHASES} phases, 33x33 blocks, batch {batch}, float32, {args.device}, "
          f"{repeats} interleaved runs each (median); max |diff| {r['max_abs_diff']:.2e}")
    print(ratio_table(r["runtime"], RATIO_GOAL, per_call=batch))
    for name, m in r.get("peak_memory", {}).items():
        print(f"peak memory {name}: {m['peak_bytes'] / 2**20:.1f} MiB ({m['method']})")
    path = write_json(args.json, {"benchmark": "bench_ista_net", "machine": info, "dtype": "float32",
                                  "repeats": repeats, **r, "goals": {"ratio": RATIO_GOAL}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
