"""Arithmetic on numbers written in a spec, checked where it is written: a division by zero, an
overflow, a complex power or a NaN is an error at the expression, not an inf in the network; and
costs calling costs, bounded so that no spec can reach Python's recursion limit."""
from __future__ import annotations

import math
from contextlib import contextmanager

from ..errors import NameError_, SpecError
from ..limits import MAX_COST_NESTING
from .ops import OPS

__all__ = ["check_number_op", "check_unit_args", "number_of", "cost_call"]


@contextmanager
def cost_call(checker, call):
    """Expanding cost `call.func` inside `checker`: refuses a cost that calls itself, directly or
    through others, and chains of costs deeper than MAX_COST_NESTING."""
    calling = checker.__dict__.setdefault("_cost_stack", [])
    if call.func in calling or len(calling) >= MAX_COST_NESTING:
        chain = " -> ".join([*calling, call.func])
        raise checker.err(NameError_, f"cost {call.func} calls itself ({chain})" if call.func in calling
                          else f"costs nest more than {MAX_COST_NESTING} deep ({chain})", call,
                          "a cost is a sum of terms; it cannot be defined through itself")
    calling.append(call.func)
    try:
        yield
    finally:
        calling.pop()


def check_number_op(checker, opname: str, args: list, node) -> None:
    """When every operand of `opname` is a number, compute it and raise a SpecError at `node` if
    the result is not a finite real number."""
    info = OPS.get(opname)
    if info is None or not args:
        return
    check_unit_args(checker, opname, args, node)
    if info.number is None:
        return
    nums = [number_of(checker, a) for a in args]
    if any(n is None for n in nums):
        return
    shown = f" ({' , '.join(f'{n:g}' for n in nums)})" if len(nums) <= 3 else ""
    try:
        val = info.number(*nums)
    except ZeroDivisionError:
        raise checker.err(SpecError, "this constant expression divides by zero", node,
                          "a value written in the spec must be finite") from None
    except OverflowError:
        raise checker.err(SpecError, f"{opname} of numbers{shown} overflows a 64-bit float", node,
                          "a value written in the spec must be finite") from None
    except (ValueError, TypeError) as e:
        raise checker.err(SpecError, f"{opname} of numbers{shown} is undefined ({e})", node) from None
    if isinstance(val, complex):
        raise checker.err(SpecError, f"{opname} of numbers{shown} is complex ({val:g})", node,
                          "a negative number to a fractional power has no real value")
    if not math.isfinite(float(val)):
        raise checker.err(SpecError, f"{opname} of numbers{shown} is {float(val)}, not a finite number",
                          node, "a value written in the spec must be finite")


def check_unit_args(checker, opname: str, args: list, node) -> None:
    """The arguments `OPS[opname].unit_args` names (a level, a fraction) lie in [0, 1] where they
    are numbers; a SpecError at `node` otherwise."""
    for i in OPS[opname].unit_args:
        n = number_of(checker, args[i]) if i < len(args) else None
        if n is not None and not 0.0 <= n <= 1.0:
            raise checker.err(SpecError, f"argument {i + 1} of {OPS[opname].call or opname} is "
                              f"{n:g}, outside [0, 1]", node, OPS[opname].doc)


def number_of(checker, v) -> float | None:
    """The number a Value made only of numbers (and consts of numbers) stands for, else None;
    its operations were checked when they were made, so this only recomputes them."""
    if v.op == "number":
        return float(v.attrs[0])
    if v.op == "const" and v.attrs and v.attrs[0] in getattr(checker, "consts", {}):
        inner = checker.consts[v.attrs[0]]
        return None if inner is v else number_of(checker, inner)
    info = OPS.get(v.op)
    if info is None or info.number is None or not v.args:
        return None
    nums = []
    for a in v.args:  # stop at the first non-number: a shared DAG (CG) must not be walked per path
        n = number_of(checker, a)
        if n is None:
            return None
        nums.append(n)
    try:
        val = info.number(*nums)
    except (ArithmeticError, ValueError, TypeError):
        return None
    return float(val) if not isinstance(val, complex) else None
