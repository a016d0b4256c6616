"""Helpers shared by the commands: argument types, loading specs, sizes and parameter counts."""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Mapping

from ..compiler.ir import Program
from ..compiler.unfold import Unfolded

__all__ = ["CLIError", "dim_arg", "duration_arg", "dims_of", "add_spec_args", "load_program",
           "known_dims", "parameter_count", "format_dims"]


class CLIError(Exception):
    """A user-facing error: printed as `error: message` and the command exits with `code`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def dim_arg(text: str) -> tuple[str, int]:
    """argparse type for `--dim n=250`."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([0-9]+)\s*", text)
    from ..limits import MAX_DIM
    if not m or not 0 < int(m.group(2)) <= MAX_DIM:
        raise argparse.ArgumentTypeError(f"expected NAME=SIZE with a size from 1 to {MAX_DIM:,}, e.g. "
                                         f"n=250; got {text!r}")
    return m.group(1), int(m.group(2))


def duration_arg(text: str) -> float:
    """argparse type for `--time-budget 10m` / `600s` / `1.5h` / `90` (seconds)."""
    from ..train.budget import parse_duration  # torch: only when a duration option is given
    try:
        return parse_duration(text.strip() or "-")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def dims_of(args: argparse.Namespace) -> dict[str, int]:
    """The `--dim` options as a dict; a dim given twice with different sizes is a CLIError."""
    out: dict[str, int] = {}
    for name, size in getattr(args, "dim", None) or []:
        if out.get(name, size) != size:
            raise CLIError(f"--dim {name} is given twice ({out[name]} and {size}); give it once")
        out[name] = size
    return out


def add_spec_args(p: argparse.ArgumentParser, dims: bool = True, K: bool = True) -> None:
    """The SPEC positional plus --K and --dim, as most commands take them."""
    p.add_argument("spec", metavar="SPEC",
                   help="a .unroll file, or a zoo spec (`zoo:lista` or just `lista`)")
    if K:
        p.add_argument("--K", type=int, default=None, metavar="N",
                       help="number of layers (iterations) to unfold; default: the spec's `iterate K = ...`")
    if dims:
        p.add_argument("--dim", type=dim_arg, action="append", default=[], metavar="NAME=SIZE",
                       help="size of a dim symbol, e.g. --dim n=250 --dim m=500 (repeatable)")


def load_program(spec: str, K: int | None = None) -> Program:
    """Parse and check a spec; a missing file is a CLIError, a bad spec raises SpecError."""
    from ..api import check
    if K is not None and K < 1:
        raise CLIError(f"--K must be at least 1, got {K}")
    if spec and "\n" in spec and Path(spec).exists():
        spec = Path(spec)  # SPEC is a file or zoo name, never spec text
    elif not spec.strip() or "\n" in spec:
        raise CLIError(f"no spec file {spec!r}: give a .unroll file or a zoo spec (zoo:lista)")
    try:
        return check(spec, K)
    except FileNotFoundError as e:
        raise CLIError(str(e)) from None
    except IsADirectoryError:
        raise CLIError(f"{spec} is a directory, not a .unroll file") from None
    except KeyError as e:
        raise CLIError(e.args[0] if e.args else str(e)) from None
    except UnicodeDecodeError:
        raise CLIError(f"{spec} is not a text file") from None


def known_dims(program: Program, given: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
    """(sizes known from the spec's defaults and `given`, names still unknown); unknown given
    names are a CLIError."""
    bad = [n for n in given if n not in program.dims]
    if bad:
        raise CLIError(f"unknown dim {', '.join(bad)}: the spec declares "
                       f"{', '.join(program.dims) or 'no dims'}")
    dims = {n: v for n, v in program.dims.items() if v is not None}
    fixed = [f"{n} = {dims[n]}" for n, v in given.items() if n in dims and dims[n] != v]
    if fixed:
        raise CLIError(f"the spec fixes {', '.join(fixed)}; --dim cannot change a size the spec "
                       "gives (leave it out)")
    dims.update(given)
    return dims, [n for n in program.dims if n not in dims]


def _layer_params(layer) -> int:
    """Weights (and bias) of one block layer: conv cin*cout*k*k, linear cin*cout."""
    if layer.kind == "conv":
        return layer.cin * layer.cout * layer.kernel ** 2 + (layer.cout if layer.bias else 0)
    if layer.kind == "linear":
        return layer.cin * layer.cout + (layer.cout if layer.bias else 0)
    return 0


def parameter_count(u: Unfolded) -> int:
    """Trainable numbers in the unfolded network: learnables (per copy) plus learnable blocks."""
    total = sum(math.prod(info.shape) for info in u.params.values())
    for name, blk in getattr(u.program, "blocks", {}).items():
        copies = u.copies.get(blk.name, u.K) if blk.tying == "per_layer" else 1
        total += copies * sum(_layer_params(layer) for layer in u.blocks[name])  # sizes bound
    return total


def format_dims(dims: Mapping[str, int]) -> str:
    """`n=250, m=500`."""
    return ", ".join(f"{k}={v}" for k, v in dims.items())


def grad_arg(text: str) -> str:
    """A gradient mode for --grad: unroll, checkpoint, truncated:T or implicit."""
    from ..backends.grad_modes import parse_grad
    try:
        parse_grad(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text
