"""Shared helpers for the benchmarks: interleaved A/B timing with medians, tables and JSON output."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

__all__ = ["interleaved", "sync", "table", "write_json", "machine"]


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


def machine(device: str) -> dict:
    """Where the numbers were measured."""
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "device": device,
            "threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import os
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
