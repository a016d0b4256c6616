"""What the command line checks before any work starts (devices, numeric options) and how it
reports a failure that is a bug in unroll (exit 3, traceback saved to a file) rather than a user's."""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .common import CLIError

__all__ = ["check_device", "check_args", "report_internal_error", "EXIT_USER", "EXIT_DIVERGED",
           "EXIT_INTERNAL"]

EXIT_DIVERGED, EXIT_USER, EXIT_INTERNAL = 1, 2, 3


def check_device(text: str) -> str:
    """The device string normalised (`cpu`, `cuda`, `cuda:1`), or a CLIError saying why it is not
    usable here: unknown, CUDA or MPS not available, or a GPU index that does not exist."""
    import torch

    name = text.strip().lower()
    if name == "cpu":
        return "cpu"
    kind, _, index = name.partition(":")
    if kind == "cuda" and (index == "" or index.isdigit()):
        if not torch.cuda.is_available():
            raise CLIError(f"--device {text}: CUDA is not available on this machine; use --device cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise CLIError(f"--device {text}: there are only {torch.cuda.device_count()} CUDA devices "
                           f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
        return name
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise CLIError(f"--device {text}: Apple MPS is not available on this machine; use --device cpu")
        raise CLIError(f"--device {text}: unroll supports cpu and cuda, not mps")
    raise CLIError(f"--device {text!r} is not a device unroll can use: give cpu, cuda or cuda:N")


# Numeric options of any command that must be finite and positive (when given), and those that
# must be positive integers; checked once here so no command trains on, or divides by, a zero.
_POSITIVE_FLOATS = ("lr", "ratio", "time_budget")
_POSITIVE_INTS = ("K", "steps", "batch_size", "eval_every", "blocks", "size", "mask", "n_test",
                  "baseline_iters", "iters", "checkpoint_every")
_FINITE_FLOATS = ("p", "snr")
MAX_INT_OPTION = 10**9


def check_args(args: argparse.Namespace) -> None:
    """Validate the parsed options every command shares; a bad one is a CLIError naming it."""
    if isinstance(getattr(args, "device", None), str):
        args.device = check_device(args.device)
    for name in _POSITIVE_FLOATS:
        v = getattr(args, name, None)
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise CLIError(f"--{name.replace('_', '-')} must be a positive finite number, got {v}")
    for name in _POSITIVE_INTS:
        v = getattr(args, name, None)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
        if isinstance(v, int) and v > MAX_INT_OPTION:
            raise CLIError(f"--{name.replace('_', '-')} must be at most {MAX_INT_OPTION:,}, got {v}")
    for name in _FINITE_FLOATS:
        v = getattr(args, name, None)
        if isinstance(v, float) and not math.isfinite(v):
            raise CLIError(f"--{name} must be a finite number, got {v}")
    p = getattr(args, "p", None)
    if isinstance(p, float) and not 0 < p <= 1:
        raise CLIError(f"--p is a probability in (0, 1], got {p:g}")
    lr = getattr(args, "lr", None)
    if isinstance(lr, float) and lr > 1e30:
        raise CLIError(f"--lr {lr:g} is far too large (limit 1e30)")


def report_internal_error(exc: BaseException, argv) -> int:
    """Save the traceback of an unexpected exception to a file and print a short bug notice."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    where = Path(os.environ.get("UNROLL_CRASH_DIR") or tempfile.gettempdir())
    path = None
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"unroll-crash-{time.strftime('%Y%m%d-%H%M%S')}-",
                                    suffix=".txt", dir=where)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"unroll {' '.join(map(str, argv or sys.argv[1:]))}\n\n{text}")
        path = name
    except OSError:
        pass
    summary = f"{type(exc).__name__}: {str(exc)[:300]}"
    print(f"internal error: {summary}\nThis is a bug in unroll, not in your input. "
          + (f"The traceback is saved in {path}; please include it in a bug report."
             if path else "The traceback could not be saved."), file=sys.stderr)
    return EXIT_INTERNAL
