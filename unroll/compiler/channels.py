"""Several values as one and back: `cat([a, b], axis)`, `stack([a, b], axis)`, indexing and
ranges (`f[0]`, `f[1:3]`, `h[:, 0:c]`), forward differences `diff(x, axis)` with their adjoint
`diff_t`, reductions along one axis (`sum(v, axis)`, `mean`, `logsumexp`, `amax`), and in the
loss the states after every layer (`x[k]` inside `sum_k(...)`).

Checker hooks: each takes (checker, node, ctx, env) and returns a checked `Value`; axes count the
per-sample dims from 0 (negative counts from the end), sizes may be dims and size expressions.
"""
from __future__ import annotations

from ..dsl import ast
from ..errors import NameError_, ShapeError, SpecError
from .ir import Value, fmt_shape
from .sizes import SizeLike, size_add, size_mul, size_sub

__all__ = ["CALLS", "index", "size_of_expr", "LAYER_OPS"]

# IR-only ops of the loss: a state after a layer, the sum over layers, the layer count K.
LAYER_OPS = ("state_at", "sum_layers", "count")


def size_of_expr(ch, e: ast.Expr) -> SizeLike:
    """An integer size written as an expression: numbers, dims, + - * of them."""
    if isinstance(e, ast.Number):
        if e.value != int(e.value):
            raise ch.err(ShapeError, f"a size or index must be an integer, got {e.value:g}", e)
        return int(e.value)
    if isinstance(e, ast.Neg):
        return size_mul(-1, size_of_expr(ch, e.operand))
    if isinstance(e, ast.Name):
        if e.id not in ch.dims:
            raise ch.err(NameError_, f"'{e.id}' is not a dim", e,
                         "sizes and indices are integers, dims and + - * of them")
        return ch.dims[e.id] or e.id
    if isinstance(e, ast.BinOp) and e.op in ("add", "sub", "mul"):
        f = {"add": size_add, "sub": size_sub, "mul": size_mul}[e.op]
        return f(size_of_expr(ch, e.left), size_of_expr(ch, e.right))
    raise ch.err(ShapeError, "a size or index is an integer, a dim, or + - * of them", e)


def _axis(ch, e: ast.Call, ndim: int, extra: int = 0) -> int:
    """The axis argument (second positional or axis=), default 0, checked against ndim."""
    given = [v for k, v in e.kwargs if k == "axis"] + list(e.args[1:2])
    bad = [k for k, _ in e.kwargs if k != "axis"]
    if bad:
        raise ch.err(SpecError, f"{e.func}() has no option '{bad[0]}'", e, "write axis = N")
    if len(given) > 1 or len(e.args) > 2:
        raise ch.err(SpecError, f"{e.func} takes a value and one axis", e)
    if not given:
        return 0
    a = size_of_expr(ch, given[0])
    if not isinstance(a, int) or not -(ndim + extra) <= a < ndim + extra:
        raise ch.err(ShapeError, f"axis {a} is out of range for a value with {ndim} axes", given[0],
                     "axes count the per-sample dims from 0; the batch is not one of them")
    return a % (ndim + extra)


def _items(ch, e: ast.Call, ctx, env) -> list[Value]:
    if not e.args or not isinstance(e.args[0], ast.ListExpr):
        raise ch.err(SpecError, f"{e.func} takes a list: {e.func}([a, b], 0)", e)
    return [ch.expr(a, ctx, env) for a in e.args[0].items]


def _joined(op: str, vals: list[Value], axis: int, shape: tuple, span) -> Value:
    dtype = "complex" if any(v.dtype == "complex" for v in vals) else "real"
    return Value(op, tuple(vals), (axis,), shape, any(v.batched for v in vals), dtype, span)


def _cat(ch, e: ast.Call, ctx, env) -> Value:
    vals = _items(ch, e, ctx, env)
    first = vals[0]
    if not first.shape:
        raise ch.err(ShapeError, "cat joins values with at least one axis; use stack for scalars",
                     e.args[0].items[0])
    axis = _axis(ch, e, len(first.shape))
    total: SizeLike = 0
    for v, node in zip(vals, e.args[0].items):
        rest = lambda s: s[:axis] + s[axis + 1:]  # noqa: E731
        if len(v.shape) != len(first.shape) or rest(v.shape) != rest(first.shape):
            raise ch.err(ShapeError, f"cat along axis {axis}: {fmt_shape(v.shape)} does not fit "
                         f"{fmt_shape(first.shape)}", node, ch.describe(v, node) +
                         "; every other axis must agree")
        total = size_add(total, v.shape[axis])
    shape = first.shape[:axis] + (total,) + first.shape[axis + 1:]
    return _joined("cat", vals, axis, shape, e.span)


def _stack(ch, e: ast.Call, ctx, env) -> Value:
    vals = _items(ch, e, ctx, env)
    for v, node in zip(vals, e.args[0].items):
        if v.shape != vals[0].shape:
            raise ch.err(ShapeError, f"stack needs equal shapes: {fmt_shape(v.shape)} and "
                         f"{fmt_shape(vals[0].shape)}", node, ch.describe(v, node))
    axis = _axis(ch, e, len(vals[0].shape), extra=1)
    shape = vals[0].shape[:axis] + (len(vals),) + vals[0].shape[axis:]
    return _joined("stack", vals, axis, shape, e.span)


def _diff(ch, e: ast.Call, ctx, env) -> Value:
    if not e.args:
        raise ch.err(SpecError, f"write {e.func}(x, axis)", e)
    v = ch.expr(e.args[0], ctx, env)
    if not v.shape:
        raise ch.err(ShapeError, f"{e.func} needs a vector or an image, got a scalar", e.args[0])
    if v.dtype == "complex":
        raise ch.err(ShapeError, f"{e.func} needs real values", e.args[0], "take real(...) first")
    axis = _axis(ch, e, len(v.shape))
    if isinstance(v.shape[axis], int) and v.shape[axis] < 2:
        raise ch.err(ShapeError, f"{e.func} along axis {axis} needs at least 2 entries, got "
                     f"{v.shape[axis]}", e.args[0])
    return Value(e.func, (v,), (axis,), v.shape, v.batched, v.dtype, e.span)


_AXIS_OPS = {"sum": "sum_axis", "mean": "mean_axis", "logsumexp": "logsumexp", "amax": "amax"}


def _reduce(ch, e: ast.Call, ctx, env) -> Value:
    """`sum(v, axis)`, `mean(v, axis)`, `logsumexp(v, axis)`, `amax(v, axis)`: one axis reduced;
    without an axis, sum and mean take every entry of a sample (ops sum, mean), the others too."""
    if not e.args or e.bound:
        raise ch.err(SpecError, f"write {e.func}(v) or {e.func}(v, axis)", e)
    v = ch.expr(e.args[0], ctx, env)
    if len(e.args) == 1 and not e.kwargs and e.func in ("sum", "mean"):
        return ch.make(e.func, [v], e, [e.args[0]])
    if v.op == "linop" or v.shape == ("*",):
        raise ch.err(ShapeError, f"{e.func} needs a value with a shape, not an operator",
                     e.args[0], "apply the operator first")
    if v.dtype == "complex" and e.func in ("logsumexp", "amax"):
        raise ch.err(ShapeError, f"{e.func} needs real values", e.args[0], "take real(...) first")
    axis = _axis(ch, e, len(v.shape)) if len(e.args) > 1 or e.kwargs else None
    shape = () if axis is None else v.shape[:axis] + v.shape[axis + 1:]
    return Value(_AXIS_OPS[e.func], (v,), (axis,), shape, v.batched, v.dtype, e.span)


def _sum_k(ch, e: ast.Call, ctx, env) -> Value:
    """sum_k(expr): expr summed over the layers k = 1..K (loss only)."""
    if ctx != "loss" or "__in_sum_k__" in env:
        raise ch.err(SpecError, "sum_k(...) sums a loss term over the layers; it is only allowed "
                     "in the loss, not nested", e)
    if len(e.args) != 1 or e.kwargs or e.bound:
        raise ch.err(SpecError, "sum_k takes one expression: sum_k(w * mse(x[k], x_star))", e)
    k = Value("index", (), (), (), False, "real", e.span)
    marker = Value("number", (), (0.0,))
    body = ch.expr(e.args[0], ctx, {**env, "k": k, "__in_sum_k__": marker})
    if body.shape != ():
        raise ch.err(ShapeError, f"sum_k sums scalars, got {fmt_shape(body.shape)}", e.args[0])
    return Value("sum_layers", (body,), (), (), body.batched, body.dtype, e.span)


CALLS = {"cat": _cat, "stack": _stack, "diff": _diff, "diff_t": _diff, "sum_k": _sum_k,
         **{name: _reduce for name in _AXIS_OPS}}


def index(ch, e: ast.Index, ctx, env) -> Value:
    """`v[i, a:b, :]`; in the loss, `x[e]` on a state is x after layer e (1..K)."""
    op = e.operand
    if (ctx == "loss" and isinstance(op, ast.Name) and op.id in ch.states and op.id not in env
            and len(e.items) == 1 and not e.items[0].is_slice):
        return _layer(ch, op, e.items[0].at, env, e)
    v = ch.expr(op, ctx, env)
    if len(e.items) > len(v.shape):
        raise ch.err(ShapeError, f"{len(e.items)} indices for a value of shape {fmt_shape(v.shape)}",
                     e, ch.describe(v, op))
    items, shape = [], []
    for ax, it in enumerate(e.items):
        n = v.shape[ax]
        if not it.is_slice:
            i = _bound(ch, it.at, n)
            _in_range(ch, i, n, it, inclusive=False)
            items.append(("at", i))
            continue
        lo = _bound(ch, it.lo, n) if it.lo is not None else 0
        hi = _bound(ch, it.hi, n) if it.hi is not None else n
        length = size_sub(hi, lo)
        _in_range(ch, lo, n, it, inclusive=False)
        _in_range(ch, hi, n, it, inclusive=True)
        if isinstance(length, int) and length < 1:
            raise ch.err(ShapeError, f"the range {lo}:{hi} is empty", it)
        items.append(("range", lo, hi))
        shape.append(length)
    shape += list(v.shape[len(e.items):])
    return Value("slice", (v,), (tuple(items),), tuple(shape), v.batched, v.dtype, e.span)


def _bound(ch, e: ast.Expr, n: SizeLike) -> SizeLike:
    i = size_of_expr(ch, e)
    return size_add(n, i) if isinstance(i, int) and i < 0 else i  # -1 is the last entry


def _in_range(ch, i: SizeLike, n: SizeLike, node, inclusive: bool) -> None:
    if isinstance(i, int) and isinstance(n, int) and not (0 <= i < n or (inclusive and i == n)):
        raise ch.err(ShapeError, f"index {i} is out of range for an axis of size {n}", node)


def _layer(ch, name: ast.Name, at: ast.Expr, env, e: ast.Index) -> Value:
    st = ch.states[name.id]
    if st.aux:
        raise ch.err(SpecError, f"aux term '{name.id}' is already summed over the layers", e)
    i = ch.expr(at, "loss", env)
    if i.shape != () or i.batched:
        raise ch.err(ShapeError, "a layer index is a number, k or K", at)
    return Value("state_at", (i,), (name.id,), st.shape, st.batched, st.dtype, e.span)
