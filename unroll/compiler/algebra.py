"""Smart constructors for IR `Value`s built by the derivation passes (grad, prox, argmin, rewrite).

They apply the shape rules of `ops.py` without an AST node (a mismatch is a `DerivationError`)
and fold the small identities that keep derived expressions readable (numbers fold, 0 and 1
vanish, scalars move out of products), so that `grad` of ½‖Ax − y‖² is exactly the graph of
the hand-written Aᵀ(Ax − y).
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import DerivationError, Span
from .ir import Value
from .ops import IDENT, OPS, Mismatch, infer_shape

__all__ = ["num", "numval", "is_num", "mk", "add", "sub", "neg", "mul", "div", "matmul", "T",
           "substitute", "depends", "walk", "normalize", "rebuild"]


def num(x: float, span: Span | None = None) -> Value:
    """A number leaf."""
    return Value("number", (), (float(x),), (), False, "real", span)


def numval(v: Value) -> float | None:
    """The value of a number leaf (None otherwise)."""
    return float(v.attrs[0]) if v.op == "number" else None


def is_num(v: Value, x: float) -> bool:
    return v.op == "number" and float(v.attrs[0]) == x


def mk(op: str, *args: Value, attrs: tuple = (), span: Span | None = None,
       shape: tuple | None = None) -> Value:
    """A `Value` for `op` with the shape given by the op's rule (`ops.infer_shape`) or `shape`;
    arguments whose shapes the rule refuses are a `DerivationError`, never a silent guess."""
    batched = any(a.batched for a in args)
    dtype = "complex" if any(a.dtype == "complex" for a in args) else "real"
    if op in OPS and OPS[op].out_dtype != "same":
        dtype = OPS[op].out_dtype
    span = span or next((a.span for a in args if a.span is not None), None)
    if shape is None:
        shape = infer_shape(op, [a.shape for a in args], [a.batched for a in args],
                            [a.is_number for a in args])
        if shape is None:
            raise AssertionError(f"mk({op}) needs an explicit shape")
        if isinstance(shape, Mismatch):
            raise DerivationError(f"a derived expression does not fit: {shape.message}", span,
                                  "the derivation (grad, prox, argmin) built it from the cost "
                                  "terms; write this step by hand")
        if OPS[op].rule == "elementwise" and shape != IDENT:  # `I` takes the size it is used at
            args = tuple(replace(a, shape=shape) if a.shape == IDENT else a for a in args)
    return Value(op, tuple(args), attrs, tuple(shape), batched, dtype, span)


def _fold(op: str, *args: Value) -> Value | None:
    nums = [numval(a) for a in args]
    if all(n is not None for n in nums) and OPS[op].number is not None:
        try:
            return num(OPS[op].number(*nums), args[0].span)
        except (ZeroDivisionError, ValueError, OverflowError):
            return None
    return None


def add(a: Value | None, b: Value | None) -> Value | None:
    """a + b, where None stands for zero."""
    if a is None or is_num(a, 0):
        return b
    if b is None or is_num(b, 0):
        return a
    if b.op == "neg":
        return sub(a, b.args[0])
    return _fold("add", a, b) or mk("add", a, b)


def sub(a: Value | None, b: Value | None) -> Value | None:
    if b is None or is_num(b, 0):
        return a
    if a is None or is_num(a, 0):
        return neg(b)
    return _fold("sub", a, b) or mk("sub", a, b)


def neg(a: Value | None) -> Value | None:
    if a is None:
        return None
    if a.op == "neg":
        return a.args[0]
    if a.op == "sub":
        return sub(a.args[1], a.args[0])
    if a.op == "add" and a.args[0].op == "neg":
        return sub(a.args[0].args[0], a.args[1])
    return _fold("neg", a) or mk("neg", a)


def mul(a: Value | None, b: Value | None) -> Value | None:
    """a * b (element-wise or scalar), folding numbers, 1·x, c·(x/c) and (1/a)·b = b/a."""
    if a is None or b is None or is_num(a, 0) or is_num(b, 0):
        return None
    if is_num(a, 1):
        return b
    if is_num(b, 1):
        return a
    if is_num(a, -1):
        return neg(b)
    if is_num(b, -1):
        return neg(a)
    folded = _fold("mul", a, b)
    if folded is not None:
        return folded
    ca, cb = numval(a), numval(b)
    if ca is None and cb is not None:
        a, b, ca, cb = b, a, cb, ca
    if ca is not None:  # number · b
        if b.op == "div" and numval(b.args[1]) is not None:
            return mul(num(ca / numval(b.args[1])), b.args[0])
        if b.op == "mul" and numval(b.args[0]) is not None:
            return mul(num(ca * numval(b.args[0])), b.args[1])
        if b.op == "neg":
            return mul(num(-ca), b.args[0])
    for x, y in ((a, b), (b, a)):
        if x.op == "div" and is_num(x.args[0], 1) and x.shape == ():
            return div(y, x.args[1])
    return mk("mul", a, b)


def div(a: Value | None, b: Value | None) -> Value | None:
    if b is None or is_num(b, 0):  # None is the symbolic zero
        raise DerivationError("the derivation divides by zero", a.span if a is not None else None,
                              "check the cost terms for a division by zero")
    if a is None or is_num(a, 0):
        return None
    if is_num(b, 1):
        return a
    return _fold("div", a, b) or mk("div", a, b)


def T(a: Value) -> Value:
    """Transpose (scalars and I are their own transpose, A'' = A)."""
    if a.shape == () or a.shape == IDENT or a.op == "identity":
        return a
    if a.op == "transpose":
        return a.args[0]
    return mk("transpose", a)


def matmul(a: Value, b: Value | None) -> Value | None:
    """A b, pulling scalar factors out: A(ρ v) = ρ A v."""
    if b is None:
        return None
    if a.shape == () or b.shape == ():
        return mul(a, b)
    if a.op == "identity":
        return b
    if b.op == "identity":
        return a
    if b.op == "mul" and b.args[0].shape == () and not b.args[0].batched:
        return mul(b.args[0], matmul(a, b.args[1]))
    if b.op == "neg":
        return neg(matmul(a, b.args[0]))
    return mk("matmul", a, b)


def walk(v: Value):
    """Every node of the DAG under v once, arguments before users (iterative: CG DAGs are deep)."""
    seen: set[int] = set()
    order: list[Value] = []
    stack = [(v, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args) if id(a) not in seen)
    return order


def depends(v: Value, leaf: Value) -> bool:
    """Whether v depends on `leaf` (compared by identity)."""
    return any(n is leaf for n in walk(v))


def normalize(v: Value) -> Value:
    """v rebuilt through the smart constructors (numbers folded, 1·x and 0 removed)."""
    return substitute(v, {}, force=True)


def substitute(v: Value, mapping: dict[int, Value], force: bool = False) -> Value:
    """v with the nodes whose id is in `mapping` replaced, rebuilt through the smart constructors."""
    memo: dict[int, Value] = {}
    for n in walk(v):
        if id(n) in mapping:
            memo[id(n)] = mapping[id(n)]
        elif not n.args:
            memo[id(n)] = n
        else:
            args = [memo[id(a)] for a in n.args]
            if not force and all(x is y for x, y in zip(args, n.args)):
                memo[id(n)] = n
            else:
                memo[id(n)] = rebuild(n, args)
    return memo[id(v)]


def _zero_args(op: str) -> tuple:
    """Arguments where a zero makes the op zero (the first of a zero-preserving op; a linear one's)."""
    info = OPS.get(op)
    if info is None:
        return ()
    return ((0,) if info.zero_preserving else ()) + (() if info.linear_in is None else (info.linear_in,))


_SMART = {"add": add, "sub": sub, "mul": mul, "div": div, "matmul": matmul}


def rebuild(n: Value, args: list[Value | None]) -> Value:
    """`n`'s op over new args (None = zero), simplified where a smart constructor exists."""
    if n.op in _SMART:
        out = _SMART[n.op](*args)
    elif n.op == "neg":
        out = neg(args[0])
    elif n.op == "transpose":
        out = T(args[0]) if args[0] is not None else None
    elif any(OPS.get(n.op) and i is not None and (args[i] is None or is_num(args[i], 0))
             for i in _zero_args(n.op)):
        out = None  # zero in, zero out: a derived step never applies an operator to a literal 0
    elif n.op == "linop_apply":
        out = mk(n.op, args[0], attrs=n.attrs, span=n.span, shape=n.shape)
    else:
        args = [a if a is not None else num(0.0) for a in args]
        known = ("elementwise", "matmul", "transpose", "reduce", "matrix_scalar")
        shape = None if OPS.get(n.op) and OPS[n.op].rule in known else n.shape
        out = _fold(n.op, *args) if OPS.get(n.op) else None
        out = out or mk(n.op, *args, attrs=n.attrs, span=n.span, shape=shape)
    if out is None:
        return num(0.0, n.span)
    return out.named(n.name) if n.name and out.name is None and out.args else out
