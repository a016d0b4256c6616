"""Matrix-free operators: `operator A : [m] <- [n] linear` is given at build time as callables
(an object with `A(x)` and `A_adjoint(y)`, deepinv's Physics convention, or a pair (forward,
adjoint)) and is never formed as a matrix. In the IR `A` is a `linop` leaf that may only be applied
(`A x` -> `linop_apply`, `A' y` -> the adjoint) or measured (`norm2(A)` -> `linop_norm`, power
iteration at build time); `argmin` over it lowers to conjugate gradients.
"""
from __future__ import annotations

from ..dsl import ast
from ..errors import ShapeError, SpecError
from .ir import Tensor, Value, fmt_shape

__all__ = ["declare", "make", "reject", "shapes", "is_linop", "USE_HINT"]

USE_HINT = "apply it (A x, A' y) or measure it (norm2(A)); it is never formed as a matrix"


def is_linop(v: Value) -> bool:
    return v.op == "linop"


def declare(ck, s: ast.TensorDecl) -> tuple[Tensor, Value]:
    """The tensor table entry and the leaf value of an operator, input or target declaration."""
    shape = ck.shape_of(s.shape)
    if s.in_shape is None:
        return (Tensor(s.name, s.kind, shape, s.dtype, s.span),
                Value(s.kind, (), (s.name,), shape, s.kind != "operator", s.dtype, s.span))
    in_shape = ck.shape_of(s.in_shape)
    if not shape or not in_shape:
        raise ck.err(ShapeError, "a matrix-free operator maps arrays to arrays", s,
                     "e.g. operator A : [m] <- [n] linear")
    return (Tensor(s.name, "operator", shape, "real", s.span, in_shape),
            Value("linop", (), (s.name, False), shape + in_shape, False, "real", s.span))


def shapes(ck, v: Value) -> tuple[tuple, tuple]:
    """(output shape, input shape) of a linop leaf (swapped for its adjoint)."""
    t = ck.tensors[v.attrs[0]]
    return (t.in_shape, t.shape) if v.attrs[1] else (t.shape, t.in_shape)


def make(ck, opname: str, args: list[Value], node, arg_nodes) -> Value:
    """An op with a matrix-free operator among its arguments: application, adjoint or norm."""
    op = next(a for a in args if is_linop(a))
    name = op.attrs[0]
    if opname == "transpose":  # (c A)' = c A'
        return Value("linop", op.args, (name, not op.attrs[1]), op.shape, False, "real", node.span)
    if opname in ("opnorm", "norm2") and not op.args:  # norm2(A): the operator norm
        return Value("linop_norm", (), (name,), (), False, "real", node.span)
    other = [a for a in args if a is not op]
    if opname in ("mul", "div") and len(other) == 1 and other[0].shape == () and \
            not is_linop(other[0]) and (opname == "mul" or args[0] is op):  # c A, A / c: scaled
        c = other[0] if opname == "mul" else ck.make(
            "div", [Value("number", (), (1.0,), (), False, "real", node.span), other[0]], node,
            [node, arg_nodes[1]])
        if op.args:
            c = ck.make("mul", [op.args[0], c], node, [node, node])
        return Value("linop", (c,), op.attrs, op.shape, False, "real", node.span)
    if opname == "matmul" and is_linop(args[0]) and not is_linop(args[1]):
        out, inp = shapes(ck, args[0])
        b = args[1]
        if b.shape != inp:
            raise ck.err(ShapeError, f"{'adjoint of ' if args[0].attrs[1] else ''}operator {name} "
                         f"takes {fmt_shape(inp)}, got {fmt_shape(b.shape)}", node,
                         ck.describe(b, arg_nodes[1]))
        if b.dtype == "complex":
            raise ck.err(ShapeError, f"matrix-free operator {name} takes real values", arg_nodes[1])
        y = Value("linop_apply", (b,), (name, args[0].attrs[1]), out, b.batched, "real", node.span)
        return ck.make("mul", [args[0].args[0], y], node, [node, node]) if args[0].args else y
    raise ck.err(SpecError, f"matrix-free operator {name} cannot be used in {opname}", node, USE_HINT)


def reject(ck, v: Value, node) -> None:
    """A matrix-free operator cannot be a value of its own (a const, an initial value)."""
    if is_linop(v):
        raise ck.err(SpecError, f"matrix-free operator {v.attrs[0]} is not a value", node, USE_HINT)
