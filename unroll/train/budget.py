"""Training budgets: a duration read from text, the step count that fits it (so a cosine schedule
ends when the time does), and the torch thread count that is fastest on this (maybe busy) CPU."""
from __future__ import annotations

import contextlib
import copy
import math
import re
import time
from typing import Any, Iterator

import torch

from .trainer import evaluate_layers

__all__ = ["parse_duration", "steps_for_budget", "fastest_threads", "torch_threads"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int | None) -> float | None:
    """Seconds from '600s', '10m', '1.5h' or '90' (a number is seconds; None or '' stays None);
    ValueError for anything else or a duration that is not positive."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(s|m|min|h)?\s*", str(text))
        if not m:
            raise ValueError(f"expected a duration like 600s, 10m or 1h; got {text!r}")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or ""]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"expected a duration like 600s, 10m or 1h; got {text!r}")
    return seconds


def steps_for_budget(model: torch.nn.Module, task: Any, budget_s: float, batch_size: int,
                     lr: float, eval_every: int, device: str = "cpu", trials: int = 6) -> int:
    """Steps that fit in `budget_s`: times a few optimizer steps (on a copy) and one evaluation."""
    probe = copy.deepcopy(model).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(12345)

    def step() -> None:
        batch = {k: v.to(device) for k, v in task.sample(batch_size, gen).items()}
        loss = probe.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(trials):
        step()
    per_step = (time.perf_counter() - t0) / trials
    test = {k: v.to(device) for k, v in task.test_set().items()}
    t0 = time.perf_counter()
    evaluate_layers(probe, test)
    per_eval = time.perf_counter() - t0
    usable = 0.85 * budget_s - 2 * per_eval  # slack for checkpoints, logs and a busier machine
    return max(1, int(math.floor(usable / (per_step + per_eval / eval_every))))


def fastest_threads(size: tuple[int, int] = (250, 500), batch: int = 100, reps: int = 10) -> int:
    """The faster of torch's current intra-op thread count and 1 (timed; the count is left as found).

    NOTE: on a busy machine (more runnable threads than cores) OpenMP's spinning threads can
    make matrix products many times slower than one thread; timing both settings costs < 1 s.
    """
    n = torch.get_num_threads()
    if n <= 1:
        return n
    A, x = torch.randn(*size), torch.randn(batch, size[1])

    def timed(threads: int) -> float:
        torch.set_num_threads(threads)
        torch.nn.functional.linear(torch.nn.functional.linear(x, A), A.T)  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.nn.functional.linear(torch.nn.functional.linear(x, A), A.T)
        return time.perf_counter() - t0

    try:
        many, one = timed(n), timed(1)
    finally:
        torch.set_num_threads(n)
    return n if many <= one else 1


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with torch's intra-op thread count set to `count`, then restore the old one."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)
