"""The fast path (`unroll.compile(..., fast=True)`: torch.compile, CUDA graphs on a GPU) against the
eager compiled module, bf16 autocast accuracy and speed, and LISTA's share of the matmul peak.

    python -m benchmarks.bench_fast [--device cuda] [--quick] [--ista-net] [--json PATH]

Per network (LISTA K = 16, 250x500, batch 256; ISTA-Net+ batch 64, on CUDA or with --ista-net):
cold start (seconds of the first inference call and of the first training step, inductor caches
off), then eager vs fast steady-state forward and training step (loss, backward, Adam step),
interleaved medians. For ISTA-Net+ the hand-written eager network of bench_ista_net is timed too:
the goal is fast training steps/s >= 3x hand-written eager at batch 64 on a GPU. bf16: max and mean
relative output error against fp32 and the forward time under autocast (TF32 too on CUDA).
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks import bench_ista_net  # noqa: E402
from benchmarks.common import (check_close, compare, data_dir, machine, no_grad, parser,  # noqa: E402
                               ratio_table, set_threads, sync, table, write_json)
from unroll.backends.fast import warmup  # noqa: E402
from unroll.data import load_standard_problem  # noqa: E402

TRAIN_GOAL = 3.0  # fast ISTA-Net+ training steps/s over hand-written eager, batch 64, GPU
FLOPS_GOAL = 0.5  # LISTA inference at batch 8192 over the dense fp32 matmul throughput, GPU


def optimizer_step(model: torch.nn.Module, loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One training step: zero the gradients, loss, backward, Adam step (Adam made once, here)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()
    return run


def cold_start(model: torch.nn.Module, inputs: dict, batch: dict, device: str) -> dict:
    """Seconds of the first inference call (fast.warmup) and of the first training step."""
    with torch.no_grad():
        infer = warmup(model, inputs, backward=False)
    t = time.perf_counter()
    model.loss(batch).backward()
    model.zero_grad(set_to_none=True)
    sync(device)
    return {"inference_s": infer, "training_step_s": time.perf_counter() - t}


def fast_vs_eager(make: Callable[[bool], torch.nn.Module], batch: dict, device: str, repeats: int,
                  hand: tuple[torch.nn.Module, Callable[[], torch.Tensor], Callable[[], object]] | None = None
                  ) -> dict:
    """Cold start of the fast module, then eager vs fast (vs hand-written eager) steady-state times."""
    eager, fast = make(False), make(True)
    fast.load_state_dict(eager.state_dict())
    inputs = {k: batch[k] for k in eager.input_names}
    cold = cold_start(fast, inputs, batch, device)
    with torch.no_grad():
        diff = check_close(fast(**inputs), eager(**inputs), "fast and eager", rtol=1e-3)
    passes = {"forward": {"eager": no_grad(lambda: eager(**inputs)), "fast": no_grad(lambda: fast(**inputs))},
              "training step": {"eager": optimizer_step(eager, lambda: eager.loss(batch)),
                                "fast": optimizer_step(fast, lambda: fast.loss(batch))}}
    if hand is not None:
        model, loss, forward = hand
        passes["forward"]["hand"] = no_grad(forward)
        passes["training step"]["hand"] = optimizer_step(model, loss)
    return {"cold_start": cold, "max_abs_diff": diff,
            "runtime": compare(passes, repeats, device, warmup=3, base="eager")}


@contextlib.contextmanager
def tf32(on: bool):
    """Allow TF32 matrix products and convolutions inside the block (CUDA only)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def precision(model: torch.nn.Module, inputs: dict, device: str, repeats: int) -> dict:
    """bf16 autocast (and TF32 on CUDA) against fp32: relative output errors and forward times."""
    dev = "cuda" if device.startswith("cuda") else "cpu"
    variants = {"fp32": contextlib.nullcontext,
                "bf16 autocast": lambda: torch.autocast(dev, dtype=torch.bfloat16)}
    if dev == "cuda":
        variants["tf32"] = lambda: tf32(True)
    with torch.no_grad():
        ref = model(**inputs).float()
        out = {}
        for name, ctx in variants.items():
            with ctx():
                err = (model(**inputs).float() - ref).abs()
            out[name] = {"max_rel_error": (err.max() / ref.abs().max()).item(),
                         "mean_rel_error": (err.mean() / ref.abs().mean()).item()}

    def timed(ctx):
        def run():
            with ctx():
                model(**inputs)
        return no_grad(run)
    t = compare({"forward": {k: timed(c) for k, c in variants.items()}}, repeats, device, base="fp32")
    for name in variants:
        out[name]["forward"] = t["forward"][name]
        out[name]["ratio_to_fp32"] = t["forward"][name]["median_s"] / t["forward"]["fp32"]["median_s"]
    return out


def lista_flops(A: np.ndarray, K: int, batch: int, device: str, repeats: int, matmul_n: int) -> dict:
    """LISTA inference TFLOP/s (eager and fast) at `batch` against a dense fp32 n x n matmul's."""
    m, n = A.shape
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(batch, m, generator=gen).to(device)
    eager = unroll.compile("zoo:lista", K=K, device=device, A=A)
    fast = unroll.compile("zoo:lista", K=K, device=device, A=A, fast=True)
    with torch.no_grad():
        warmup(fast, {"y": y}, backward=False)
    a = torch.randn(matmul_n, matmul_n, generator=gen).to(device)
    with tf32(False):
        t = compare({"x": {"matmul": lambda: a @ a, "eager": no_grad(lambda: eager(y=y)),
                           "fast": no_grad(lambda: fast(y=y))}}, repeats, device, base="matmul")["x"]
    peak = 2 * matmul_n ** 3 / t["matmul"]["median_s"] / 1e12
    flops = 2 * batch * (m * n + (K - 1) * n * n)
    out = {"batch": batch, "K": K, "matmul_n": matmul_n, "matmul_tflops": peak}
    for k in ("eager", "fast"):
        tf = flops / t[k]["median_s"] / 1e12
        out[k] = {"median_s": t[k]["median_s"], "tflops": tf, "fraction_of_matmul": tf / peak}
    return out


def _lista_setup(A: np.ndarray, K: int, batch: int, device: str):
    gen = torch.Generator().manual_seed(0)
    n = A.shape[1]
    x_star = torch.randn(batch, n, generator=gen) * (torch.rand(batch, n, generator=gen) < 0.1)
    x_star = x_star.to(device)
    y = x_star @ torch.as_tensor(A, dtype=torch.float32, device=device).T
    return lambda fast: unroll.compile("zoo:lista", K=K, device=device, A=A, fast=fast), \
        {"y": y, "x_star": x_star}


def bench(device: str, repeats: int, lista_batch: int = 256, ista_batch: int = 64,
          ista_net: bool = False, flops_batch: int | None = None, data: Path | None = None) -> dict:
    """All the fast-path measurements; ISTA-Net+ only when `ista_net`, FLOP share when `flops_batch`."""
    A, _, where = load_standard_problem(data)
    make, batch = _lista_setup(A, 16, lista_batch, device)
    out = {"A": where, "lista": fast_vs_eager(make, batch, device, repeats)}
    out["lista"]["precision"] = precision(make(False), {"y": batch["y"]}, device, repeats)
    if ista_net:
        compiled, hand, b, phi = bench_ista_net.setup(ista_batch, device, data)
        state = compiled.state_dict()

        def make_ista(fast: bool) -> torch.nn.Module:
            m = unroll.compile("zoo:ista_net_plus", device=device, Phi=compiled.Phi.cpu().numpy(),
                               Q=compiled.Q.cpu().numpy(), fast=fast)
            m.load_state_dict(state)
            return m
        y, x_star = b["y"], b["x_star"]
        r = fast_vs_eager(make_ista, b, device, repeats,
                          hand=(hand, lambda: hand.loss(y, x_star), lambda: hand(y, sym=False)))
        r["phi"], r["batch"] = phi, ista_batch
        r["precision"] = precision(compiled, {"y": y}, device, repeats)
        out["ista_net_plus"] = r
    if flops_batch:
        out["lista_flops"] = lista_flops(A, 16, flops_batch, device, repeats,
                                         8192 if device.startswith("cuda") else 2048)
    return out


def _print(name: str, r: dict, per_call: int) -> None:
    c = r["cold_start"]
    print(f"\n{name}: cold start (torch.compile) {c['inference_s']:.1f} s first inference call, "
          f"{c['training_step_s']:.1f} s first training step; fast vs eager max |diff| {r['max_abs_diff']:.1e}")
    print(ratio_table(r["runtime"], None, variant="fast", base="eager", per_call=per_call))
    if "ratio_hand" in r["runtime"]["training step"]:
        st = r["runtime"]["training step"]
        gain = st["hand"]["median_s"] / st["fast"]["median_s"]
        print(f"training steps/s: fast {1 / st['fast']['median_s']:.2f}, eager {1 / st['eager']['median_s']:.2f}, "
              f"hand-written eager {1 / st['hand']['median_s']:.2f} -> fast / hand {gain:.2f}x "
              f"(goal >= {TRAIN_GOAL}x on a GPU at batch 64)")
    rows = [[k, f"{v['max_rel_error']:.2e}", f"{v['mean_rel_error']:.2e}",
             f"{v['forward']['median_s'] * 1e3:.3f}", f"{v['ratio_to_fp32']:.3f}"] for k, v in r["precision"].items()]
    print(table(rows, ["precision", "max rel err", "mean rel err", "forward ms", "time / fp32"]))


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_fast")
    p.add_argument("--repeats", type=int, default=None, help="timed runs of each (default 30; 8 with --quick)")
    p.add_argument("--quick", action="store_true", help="a short CPU run: LISTA only, 8 repeats")
    p.add_argument("--ista-net", action="store_true", help="ISTA-Net+ too (default: on CUDA only)")
    p.add_argument("--ista-batch", type=int, default=None, help="ISTA-Net+ batch (default 64; 16 with --quick)")
    p.add_argument("--flops-batch", type=int, default=None,
                   help="LISTA batch for the matmul-share figure (default 8192 on CUDA; 1024 on CPU)")
    p.add_argument("--warm-cache", action="store_true", help="let inductor reuse its on-disk caches")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    repeats = args.repeats or (8 if args.quick else 30)
    if not args.warm_cache:
        import torch._inductor.config as inductor_config
        inductor_config.force_disable_caches = True  # a true cold start, not a cache hit
    set_threads(args.threads, args.device)
    info = machine(args.device)
    print(f"machine: {info}")
    r = bench(args.device, repeats, ista_net=args.ista_net or cuda,
              ista_batch=args.ista_batch or (16 if args.quick else 64),
              flops_batch=args.flops_batch or (8192 if cuda else 1024), data=data_dir(args.data))
    _print("LISTA K=16, 250x500, batch 256", r["lista"], 256)
    if "ista_net_plus" in r:
        _print(f"ISTA-Net+ 9 phases, batch {r['ista_net_plus']['batch']}", r["ista_net_plus"],
               r["ista_net_plus"]["batch"])
    f = r["lista_flops"]
    print(f"\nLISTA inference, batch {f['batch']}: eager {f['eager']['tflops']:.3f} TFLOP/s "
          f"({f['eager']['fraction_of_matmul']:.0%} of matmul), fast {f['fast']['tflops']:.3f} TFLOP/s "
          f"({f['fast']['fraction_of_matmul']:.0%}); dense fp32 {f['matmul_n']}^2 matmul "
          f"{f['matmul_tflops']:.3f} TFLOP/s (goal >= {FLOPS_GOAL:.0%} on a GPU at batch 8192)")
    path = write_json(args.json, {"benchmark": "bench_fast", "machine": info, "repeats": repeats,
                                  "inductor_caches": "on" if args.warm_cache else "off", **r,
                                  "goals": {"train_vs_hand": TRAIN_GOAL, "flops_fraction": FLOPS_GOAL}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
