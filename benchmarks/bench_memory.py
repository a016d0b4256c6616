"""Peak memory and step time against K for each gradient mode (unroll, checkpoint, truncated, implicit).

    python -m benchmarks.bench_memory [--K 16,100,1000] [--lista-batch 16] [--ista-batch 2]
                                      [--repeats 2] [--device cpu] [--json PATH]

LISTA (`zoo:lista`, tied, A = sparse/D.mat 250x500) and ISTA-Net+ (`zoo:ista_net_plus`, 33x33 blocks,
CS ratio 25 %, Q = Phi'), float32, at their initial weights. A step is loss + backward. Memory: the
peak bytes allocated during one step above what was allocated before it (CPU: torch.profiler's
allocation records, a lower bound; CUDA: max_memory_allocated); it includes the parameter gradients.
Time: median of `--repeats` steps in CPU seconds of this process (`time.process_time`, one thread)
on a CPU, so other jobs on a shared machine do not inflate it; wall seconds on a GPU. "forward" is the no-grad forward pass through all K layers (the
forward to convergence the implicit mode is measured against). Goals: checkpoint and implicit at
K = 1000 within 2x of the K = 16 unrolled memory; implicit step within 3x of the forward pass.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks.common import (data_dir, machine, parser, peak_memory, set_threads, sync,  # noqa: E402
                               table, write_json)
from unroll.data import load_standard_problem  # noqa: E402
from unroll.errors import SpecError  # noqa: E402

MODES = ("unroll", "checkpoint", "truncated:16", "implicit")


def _lista(data, batch: int, device: str):
    A, _, where = load_standard_problem(data)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, A.shape[1], generator=gen) * (torch.rand(batch, A.shape[1], generator=gen) < 0.1)
    y = x @ torch.as_tensor(A, dtype=torch.float32).T
    return "zoo:lista", {"A": A}, {"y": y.to(device), "x_star": x.to(device)}, where


def _ista_net(data, batch: int, device: str):
    path = Path(data) / "cs_phi" / "phi_0_25_1089.mat" if data is not None else None
    if path is not None and path.is_file():
        import scipy.io
        phi, where = np.asarray(scipy.io.loadmat(str(path))["phi"], dtype=np.float64), str(path)
    else:
        q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((1089, 272)))
        phi, where = q.T, "generated 272x1089 row-orthonormal Phi"
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1089, generator=gen)
    y = x @ torch.as_tensor(phi, dtype=torch.float32).T
    return "zoo:ista_net_plus", {"Phi": phi, "Q": phi.T}, {"y": y.to(device), "x_star": x.to(device)}, where


def _clock(device: str):
    return time.perf_counter if device.startswith("cuda") else time.process_time


def _forward_s(model, inputs: dict, device: str, repeats: int) -> float:
    """Mean time of a forward pass without a graph."""
    clock = _clock(device)
    with torch.no_grad():
        t = clock()
        for _ in range(repeats):
            model(**inputs)
        sync(device)
    return (clock() - t) / repeats


def measure(spec: str, ops: dict, batch: dict, K: int, grad: str, device: str, repeats: int) -> dict:
    """Peak memory and median step time of one (spec, K, mode); the reason if the mode is refused."""
    torch.manual_seed(0)
    try:
        model = unroll.compile(spec, K=K, device=device, grad=grad, **ops)
    except SpecError as e:
        return {"refused": e.message}
    inputs = {n: batch[n] for n in model.input_names}

    def step():
        model.zero_grad(set_to_none=True)
        model.loss(batch).backward()
        sync(device)
    step()  # warm-up (allocator, first-call costs)
    mem = peak_memory(step, device)
    clock = _clock(device)
    times = []
    for _ in range(repeats):
        t = clock()
        step()
        times.append(clock() - t)
    out = {"peak_bytes": mem["peak_bytes"], "step_s": statistics.median(times)}
    info = getattr(model._run, "info", None)
    if info:
        out.update(info)
        if "forward_iterations" in info:  # a forward pass of just the iterations the fixed point needed
            short = unroll.compile(spec, K=int(info["forward_iterations"]), device=device, **ops)
            out["forward_to_convergence_s"] = _forward_s(short, inputs, device, repeats)
            del short
    if grad == "unroll":
        out["forward_s"] = _forward_s(model, inputs, device, repeats)
    del model
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_memory")
    p.add_argument("--K", default="16,100,1000", help="comma-separated K")
    p.add_argument("--lista-batch", type=int, default=16)
    p.add_argument("--ista-batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--only", choices=("lista", "ista_net_plus"), default=None)
    args = p.parse_args(argv)
    threads = set_threads(args.threads or (1 if args.device == "cpu" else None), args.device)
    data = data_dir(args.data)
    Ks = [int(k) for k in args.K.split(",") if k]
    nets = {"lista": _lista(data, args.lista_batch, args.device),
            "ista_net_plus": _ista_net(data, args.ista_batch, args.device)}
    results: dict = {}
    for name, (spec, ops, batch, where) in nets.items():
        if args.only and name != args.only:
            continue
        print(f"{name}: {where}, batch {batch['y'].shape[0]}", flush=True)
        results[name] = {"data": where, "batch": batch["y"].shape[0], "runs": {}}
        for K in Ks:
            for grad in MODES:
                if grad.startswith("truncated") and int(grad.split(":")[1]) >= K:
                    continue
                r = measure(spec, ops, batch, K, grad, args.device, args.repeats)
                results[name]["runs"][f"{grad}@{K}"] = r
                print(f"  K={K:<5} {grad:<13} " + (f"refused: {r['refused']}" if "refused" in r else
                      f"{r['peak_bytes'] / 2**20:9.1f} MiB  {r['step_s']:8.3f} s/step"
                      + (f"  (forward {r['forward_s']:.3f} s)" if "forward_s" in r else "")
                      + (f"  ({r['forward_iterations']} fwd it. / {r['adjoint_iterations']} adjoint "
                         f"products; forward to convergence {r['forward_to_convergence_s']:.3f} s, "
                         f"step = {r['step_s'] / r['forward_to_convergence_s']:.2f}x)"
                         if "adjoint_iterations" in r else "")), flush=True)
    print()
    for name, res in results.items():
        runs = res["runs"]
        base = runs.get(f"unroll@{min(Ks)}", {}).get("peak_bytes")
        rows = []
        for key, r in runs.items():
            grad, K = key.split("@")
            if "refused" in r:
                rows.append([grad, K, "refused", "", "", "", r["refused"][:60]])
                continue
            fwd = runs.get(f"unroll@{K}", {}).get("forward_s")
            rows.append([grad, K, f"{r['peak_bytes'] / 2**20:.1f}",
                         f"{r['peak_bytes'] / base:.2f}" if base else "", f"{r['step_s']:.3f}",
                         f"{r['step_s'] / fwd:.2f}" if fwd else "", ""])
        print(f"{name}, batch {res['batch']}, {args.device}, {threads} thread(s)")
        print(table(rows, ["grad", "K", "peak MiB", f"x unroll@{min(Ks)}", "step s", "x forward", "note"]))
        print()
    path = write_json(args.json, {"benchmark": "bench_memory", "machine": machine(args.device),
                                  "K": Ks, "results": results,
                                  "goals": {"memory_x_unroll16": 2.0, "implicit_x_forward": 3.0}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
