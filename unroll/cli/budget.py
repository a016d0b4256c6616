"""Turn a time budget into a step count, so a cosine schedule ends when the time does."""
from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch

from ..train import evaluate_layers

__all__ = ["steps_for_budget", "pick_threads"]


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


def pick_threads(size: tuple[int, int] = (250, 500), batch: int = 100, reps: int = 10) -> int:
    """Set torch's intra-op threads to the faster of the current count and 1, and return it.

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

    many, one = timed(n), timed(1)
    best = n if many <= one else 1
    torch.set_num_threads(best)
    return best
