"""The fast path: run a generated module's unrolled iteration under `torch.compile`.

Shapes and K are static, so one graph covers the whole network: inductor fuses the element-wise
chains (thresholds, momentum, multiplier updates) and, on CUDA, `reduce-overhead` replays it as a
CUDA graph. Compilation happens at the first call; `warmup` triggers it and says how long it took.
On a CPU, steps that build a graph (training) run eager: there torch.compile's backward was slower
than eager (LISTA 1.3x), so the fast path declines with a one-line note; inference stays compiled.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import torch

__all__ = ["accelerate", "warmup", "CPU_TRAINING_NOTE"]

CPU_TRAINING_NOTE = ("fast=True: training on a CPU runs eager (torch.compile's backward was slower than "
                     "eager there: LISTA 1.3x); inference stays compiled")


class _Compiled:
    """Compiles the wrapped function at its first call, choosing the mode from the device."""

    def __init__(self, fn: Callable, backend: str, mode: str | None):
        self.fn, self.backend, self.mode = fn, backend, mode
        self.compiled: Callable | None = None
        self.cuda_graphs = False
        self.declined = False

    def __call__(self, *args: Any, **kwargs: Any):
        cuda = any(torch.is_tensor(a) and a.is_cuda for a in list(args) + list(kwargs.values()))
        if not cuda and torch.is_grad_enabled():
            if not self.declined:  # a training step on CPU: eager is at least as fast
                self.declined = True
                warnings.warn(CPU_TRAINING_NOTE, stacklevel=3)
            return self.fn(*args, **kwargs)
        if self.compiled is None:
            mode = self.mode
            if mode is None and cuda and self.backend == "inductor":
                mode = "reduce-overhead"  # CUDA graphs: the unrolled network has static shapes
            self.cuda_graphs = mode == "reduce-overhead"
            self.compiled = torch.compile(self.fn, backend=self.backend, mode=mode, dynamic=False)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(*args, **kwargs)


def accelerate(module: torch.nn.Module, backend: str = "inductor", mode: str | None = None
               ) -> torch.nn.Module:
    """Make `module` (a compiled unroll module) run its layers under torch.compile, in place."""
    module._run = _Compiled(module._run, backend, mode)
    module.fast = True
    return module


def warmup(module: torch.nn.Module, inputs: dict[str, torch.Tensor], backward: bool = True) -> float:
    """Run forward (and backward) once to trigger compilation; returns the seconds it took."""
    t0 = time.perf_counter()
    out = module(**inputs)
    if backward and out.requires_grad:
        out.float().pow(2).mean().backward()
        module.zero_grad(set_to_none=True)
    if out.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0
