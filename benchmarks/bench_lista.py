"""Compiled LISTA against a hand-written PyTorch LISTA, and compile time against K.

    python -m benchmarks.bench_lista [--device cuda] [--repeats 60] [--json runs/bench_lista.json]

Both networks get the same weights (zoo:lista, K = 16, A 250x500 from sparse/D.mat when the data
folder has it, else Gaussian), batch 256, float32. Forward and forward+backward are timed in one
process, alternating compiled / hand-written runs, and the medians compared (goal: ratio <= 1.05).
Compile time is parse -> module for K = 16, 100, 1000 (goals 0.5 s, 2 s, 10 s).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks.common import (check_close, compare, data_dir, machine, no_grad, parser,  # noqa: E402
                               ratio_table, set_threads, table, train_step,
                               write_json)
from unroll.data import load_standard_problem  # noqa: E402

RATIO_GOAL = 1.05
COMPILE_GOALS = {16: 0.5, 100: 2.0, 1000: 10.0}


class HandLISTA(torch.nn.Module):
    """LISTA as a careful person writes it: W_e y once, x = soft(W_e y, theta), then K - 1 steps."""

    def __init__(self, W_e: torch.Tensor, S: torch.Tensor, theta: torch.Tensor, K: int):
        super().__init__()
        self.W_e = torch.nn.Parameter(W_e.detach().clone())
        self.S = torch.nn.Parameter(S.detach().clone())
        self.theta = torch.nn.Parameter(theta.detach().clone())
        self.K = K

    @staticmethod
    def soft(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.sign(v) * torch.relu(torch.abs(v) - t)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b = F.linear(y, self.W_e)
        x = self.soft(b, self.theta)
        for _ in range(self.K - 1):
            x = self.soft(b + F.linear(x, self.S), self.theta)
        return x


def bench_runtime(A: np.ndarray, K: int, batch: int, device: str, repeats: int) -> dict:
    """Median forward and forward+backward times of the compiled and the hand-written LISTA."""
    gen = torch.Generator().manual_seed(0)
    compiled = unroll.compile("zoo:lista", K=K, dtype=torch.float32, device=device, A=A)
    pv = compiled.parameter_values()
    hand = HandLISTA(pv["W_e"], pv["S"], pv["theta"], K).to(device)
    m = A.shape[1]
    x_star = (torch.randn(batch, m, generator=gen) * (torch.rand(batch, m, generator=gen) < 0.1)).to(device)
    y = x_star @ torch.as_tensor(A, dtype=torch.float32, device=device).T
    batch_d = {"y": y, "x_star": x_star}
    with torch.no_grad():
        diff = check_close(compiled(y=y), hand(y), "compiled and hand-written LISTA")
    out = compare({
        "forward": {"compiled": no_grad(lambda: compiled(y=y)), "hand": no_grad(lambda: hand(y))},
        "forward+backward": {
            "compiled": train_step(compiled, lambda: compiled.loss(batch_d)),
            "hand": train_step(hand, lambda: torch.mean((hand(y) - x_star) ** 2))},
    }, repeats, device)
    for r in out.values():
        r["ratio"] = r.pop("ratio_compiled")
    out["max_abs_diff"] = diff
    return out


def bench_compile(A: np.ndarray, Ks: list[int], repeats: int) -> dict:
    """Seconds from spec text to module (parse, check, unfold, generate, build) for each K."""
    text = unroll.zoo.path("lista").read_text()
    first = time.perf_counter()
    unroll.compile(text, K=2, A=A)  # the first call also builds the grammar and imports
    first = time.perf_counter() - first
    out = {"first_call_K2_s": first}
    for K in Ks:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            unroll.compile(text, K=K, A=A)
            times.append(time.perf_counter() - t)
        out[str(K)] = {"median_s": statistics.median(times), "min_s": min(times),
                       "goal_s": COMPILE_GOALS.get(K)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_lista")
    p.add_argument("--K", type=int, default=16)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=60, help="timed runs of each network")
    p.add_argument("--compile-K", default="16,100,1000", help="comma-separated K for compile time")
    p.add_argument("--compile-repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a short CPU run)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.compile_repeats = min(args.repeats, 20), 1
    set_threads(args.threads, args.device)

    data = data_dir(args.data)
    A, _, where = load_standard_problem(data)
    print(f"A: {where}")
    print(f"machine: {machine(args.device)}")
    rt = bench_runtime(A, args.K, args.batch, args.device, args.repeats)
    print(f"\nLISTA K={args.K}, A {A.shape[0]}x{A.shape[1]}, batch {args.batch}, float32, "
          f"{args.device}, {args.repeats} interleaved runs each (median)")
    print(ratio_table({k: rt[k] for k in ("forward", "forward+backward")}, RATIO_GOAL,
                      per_call=args.batch))

    Ks = [int(k) for k in args.compile_K.split(",") if k]
    ct = bench_compile(A, Ks, args.compile_repeats)
    crow = [[str(K), f"{ct[str(K)]['median_s']:.3f}", f"{COMPILE_GOALS.get(K, float('nan')):g}",
             "ok" if K not in COMPILE_GOALS or ct[str(K)]["median_s"] <= COMPILE_GOALS[K] else "MISSED"]
            for K in Ks]
    print(f"\ncompile time, parse -> module (median of {args.compile_repeats}; "
          f"first call in the process incl. grammar build: {ct['first_call_K2_s']:.3f} s)")
    print(table(crow, ["K", "seconds", "goal s", "status"]))

    path = write_json(args.json, {"benchmark": "bench_lista", "A": where, "K": args.K,
                                  "batch": args.batch, "dtype": "float32",
                                  "machine": machine(args.device), "runtime": rt, "compile": ct,
                                  "goals": {"ratio": RATIO_GOAL, "compile_s": COMPILE_GOALS}})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
