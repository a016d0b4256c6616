"""Backward speed of the dense `argmin` with a learnable coefficient: right-hand sides solved as
one batched matrix (the lowering now) against the broadcast solve it replaced.

    python -m benchmarks.bench_argmin [--quick] [--json PATH]

The spec is learned ADMM for the lasso, whose x-update argmin(x: f(x) + rho/2 ||x - z + u||^2)
lowers to solve(A'A + rho I, b) with rho per layer. The broadcast solve (H [n, n] against b
[batch, n, 1]) makes autograd build a [batch, n, n] gradient for H before summing it; the batched
solve (H against b' [n, batch]) gives the [n, n] gradient directly.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks.common import (check_close, compare, machine, parser, set_threads,  # noqa: E402
                               table, train_step, write_json)

SPEC = """algorithm learned_admm_lasso
dims n, m
operator A : [n, m]
input y : [n]
target x_star : [m]
cost f(x) = 1/2 * ||A x - y||^2
learn rho : [] = 1.0 per_layer positive
learn lam : [] = 0.1 per_layer positive
state x : [m] = 0
state z : [m] = 0
state u : [m] = 0
iterate K = {K}:
    x = argmin(x: f(x) + rho / 2 * ||x - z + u||^2)
    z = soft(x + u, lam / rho)
    u = u + x - z
output z
loss mse(z, x_star)
"""


def _broadcast_solve(H, b):
    """The lowering before: H broadcast against every right-hand side."""
    return torch.linalg.solve(H, b.unsqueeze(-1)).squeeze(-1)


def bench(n: int = 250, m: int = 500, batch: int = 256, K: int = 5, repeats: int = 10) -> dict:
    """Median forward+backward time of both solves on the same model and batch."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(n, m, generator=g) / n ** 0.5
    model = unroll.compile(SPEC.format(K=K), A=A)
    x = torch.randn(batch, m, generator=g) * (torch.rand(batch, m, generator=g) < 0.1)
    y = x @ A.T
    scope = type(model)._run.__globals__
    batched = scope["_solve"]

    def with_solve(fn):
        def run():
            scope["_solve"] = fn
            try:
                train_step(model, lambda: model.loss({"y": y, "x_star": x}))()
            finally:
                scope["_solve"] = batched
        return run

    grads = {}
    for name, fn in (("batched", batched), ("broadcast", _broadcast_solve)):
        with_solve(fn)()
        grads[name] = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    check_close(grads["batched"], grads["broadcast"], "gradients of the two solves", rtol=1e-3)
    res = compare({"forward+backward": {"batched": with_solve(batched),
                                        "broadcast": with_solve(_broadcast_solve)}},
                  repeats, "cpu", warmup=1, base="batched")
    r = res["forward+backward"]
    return {"n": n, "m": m, "batch": batch, "K": K, "batched_ms": r["batched"]["median_s"] * 1e3,
            "broadcast_ms": r["broadcast"]["median_s"] * 1e3,
            "speedup": r["broadcast"]["median_s"] / r["batched"]["median_s"]}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_argmin")
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    args = p.parse_args(argv)
    set_threads(args.threads, "cpu")
    r = bench(n=100, m=200, batch=64, K=3, repeats=5) if args.quick else bench()
    print(table([[f"{r['n']}x{r['m']}", r["batch"], r["K"], f"{r['batched_ms']:.1f}",
                  f"{r['broadcast_ms']:.1f}", f"{r['speedup']:.1f}x"]],
                ["A", "batch", "K", "batched solve ms", "broadcast solve ms", "speedup"]))
    write_json(args.json, {"machine": machine("cpu"), "result": r})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
