"""Shared helpers for the benchmarks: interleaved A/B timing with medians, tables and JSON output."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

__all__ = ["parser", "interleaved", "sync", "table", "write_json", "machine", "compare", "ratio_table",
           "peak_memory", "data_dir", "cpu_model", "no_grad", "train_step", "check_close",
           "set_threads"]

_REPO = Path(__file__).resolve().parents[1]


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser with the options every benchmark shares (device, data folder,
    CPU threads, JSON output path runs/NAME.json)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None, help="data folder (default: $UNROLL_DATA, ../shared/data)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's, or 1 when that is faster on a busy CPU)")
    p.add_argument("--json", default=str(_REPO / "runs" / f"{name}.json"))
    return p


def sync(device: str) -> None:
    """Wait for queued GPU work so wall-clock timings are real."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3,
                device: str = "cpu") -> dict[str, dict[str, float]]:
    """Time each callable `repeats` times, alternating between them (A B A B ...) so drifts in
    machine load hit all alike; returns median, min and mean seconds per call for each name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            sync(device)
            t = time.perf_counter()
            fns[k]()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "mean_s": statistics.fmean(v),
                "repeats": len(v)} for k, v in times.items()}


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table with aligned columns."""
    cells = [header] + rows
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: str) -> dict:
    """Where the numbers were measured."""
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "device": device, "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    try:
        info["load_avg"] = os.getloadavg()
    except (AttributeError, OSError):
        pass
    return info


def write_json(path: str | Path, data: dict) -> Path:
    """Write `data` as indented JSON, creating the folder."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2) + "\n")
    return p


def data_dir(arg: str | None = None) -> Path | None:
    """The data folder: `arg`, else $UNROLL_DATA, else ../shared/data beside the repository."""
    from unroll.data import resolve_data_dir
    path, _ = resolve_data_dir(arg)
    if path is None and not os.environ.get("UNROLL_DATA"):
        shared = _REPO.parent / "shared" / "data"
        path = shared if shared.is_dir() else None
    return path


def no_grad(call: Callable[[], object]) -> Callable[[], None]:
    """`call` run under torch.no_grad (an inference pass)."""
    def run() -> None:
        with torch.no_grad():
            call()
    return run


def train_step(model: torch.nn.Module, loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """Zero the gradients, compute `loss()` and backpropagate (a training step without the optimizer)."""
    def run() -> None:
        model.zero_grad(set_to_none=True)
        loss().backward()
    return run


def check_close(a: torch.Tensor, b: torch.Tensor, what: str, rtol: float = 1e-4) -> float:
    """Max |a - b|; raises if it exceeds rtol times the larger magnitude (so timings compare like with like)."""
    diff = (a.detach() - b.detach()).abs().max().item()
    scale = max(a.detach().abs().max().item(), b.detach().abs().max().item(), 1.0)
    if diff > rtol * scale:
        raise AssertionError(f"{what}: outputs differ by {diff:.3g} (scale {scale:.3g})")
    return diff


def compare(passes: dict[str, dict[str, Callable[[], object]]], repeats: int, device: str,
            warmup: int = 3, base: str = "hand") -> dict:
    """Interleaved timings of each pass (e.g. forward, forward+backward) for every variant, with each
    variant's median ratio to `base`."""
    out = {}
    for what, fns in passes.items():
        t = interleaved(fns, repeats, warmup=warmup, device=device)
        out[what] = dict(t)
        for k in fns:
            if k != base:
                out[what][f"ratio_{k}"] = t[k]["median_s"] / t[base]["median_s"]
    return out


def ratio_table(results: dict, goal: float | None, variant: str = "compiled", base: str = "hand",
                per_call: int | None = None) -> str:
    """Rows of `compare` results: median ms of `variant` and `base`, their ratio, the goal, and
    samples/s of the variant when `per_call` (the batch) is given."""
    rows = []
    for what, r in results.items():
        a, b = r[variant]["median_s"], r[base]["median_s"]
        row = [what, f"{a * 1e3:.3f}", f"{b * 1e3:.3f}", f"{a / b:.3f}"]
        if per_call:
            row += [f"{per_call / a:.1f}", f"{per_call / b:.1f}"]
        if goal is not None:
            row.append("ok" if a / b <= goal else "MISSED")
        rows.append(row)
    head = ["pass", f"{variant} ms", f"{base} ms", "ratio"]
    if per_call:
        head += [f"{variant} /s", f"{base} /s"]
    if goal is not None:
        head.append(f"goal <= {goal}")
    return table(rows, head)


def peak_memory(fn: Callable[[], object], device: str) -> dict:
    """Peak bytes allocated while `fn` runs, above what was allocated before.

    CUDA: torch.cuda.max_memory_allocated. CPU: torch.profiler's per-op allocation records summed
    in time order (allocations freed inside one op are not seen, so this is a lower bound).
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return {"peak_bytes": torch.cuda.max_memory_allocated() - before,
                "method": "torch.cuda.max_memory_allocated"}
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    cur = best = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        best = max(best, cur)
    return {"peak_bytes": best, "method": "torch.profiler CPU allocations (per-op net, lower bound)"}


def set_threads(threads: int | None, device: str) -> int:
    """Use `threads` torch CPU threads if given; on CPU otherwise the faster of torch's default and 1
    (a busy shared machine makes OpenMP's spinning threads many times slower). Returns the count."""
    if threads:
        torch.set_num_threads(threads)
    elif device == "cpu":
        from unroll.train.budget import fastest_threads
        torch.set_num_threads(fastest_threads())  # a benchmark script owns its process
    return torch.get_num_threads()
