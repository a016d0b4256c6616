"""Calls whose arguments are fixed in the spec (`grid`, `dct_filters`, `diff_filters`, `otf`,
`ones`, `zeros`) and `reshape`/`vec`: typed from the numbers and dim names written in the call, not from an op rule."""
from __future__ import annotations

from dataclasses import replace

from ..dsl import ast
from ..errors import ShapeError, SpecError, closest
from .channels import size_of_expr
from .ir import Value, fmt_shape
from .sizes import SizeLike, size_mul, size_sub

__all__ = ["call_special", "call_reshape"]


def _int_args(ck, e: ast.Call, items, n: int, what: str) -> list[float]:
    vals = []
    for a in items:
        v = ck.expr(a, "const") if not isinstance(a, ast.ListExpr) else None
        if v is None or not v.is_number:
            raise ck.err(SpecError, f"{e.func} takes {what}", a)
        vals.append(v.attrs[0])
    if len(vals) != n:
        raise ck.err(SpecError, f"{e.func} takes {what}", e)
    return vals


def call_special(ck, e: ast.Call, ctx, env) -> Value:
    """Calls with arguments fixed in the spec: grid, dct_filters, diff_filters, otf, ones, zeros."""
    order = "C"
    if e.func == "dct_filters" and len(e.kwargs) == 1 and e.kwargs[0][0] == "order":
        got = e.kwargs[0][1]
        if not (isinstance(got, ast.Name) and got.id in ("C", "F")):
            raise ck.err(SpecError, "dct_filters takes order = C (row-major atoms, the "
                         "default) or order = F (column-major, as MATLAB reshapes)", got)
        order, e = got.id, replace(e, kwargs=())
    if e.kwargs or e.bound:
        raise ck.err(SpecError, f"{e.func}() takes no keyword arguments", e,
                     "dct_filters takes order = C | F" if e.func == "dct_filters" else None)
    if e.func in ("ones", "zeros"):
        return _filled(ck, e)
    if e.func == "grid":
        n, lo, hi = _int_args(ck, e, e.args, 3, "a count and a range: grid(101, -1, 1)")
        if n < 2 or n != int(n) or not lo < hi:
            raise ck.err(SpecError, "grid needs at least 2 points and lo < hi", e)
        return Value("grid", (), (int(n), lo, hi), (int(n),), False, "real", e.span)
    if e.func == "dct_filters":
        (size,) = _int_args(ck, e, e.args, 1, "the filter size: dct_filters(3)")
        if size < 2 or size != int(size):
            raise ck.err(SpecError, "dct_filters needs a size of at least 2", e)
        k = int(size)
        return Value("dct_filters", (), (k, order), (k * k - 1, k, k), False, "real", e.span)
    if e.func == "diff_filters":
        _int_args(ck, e, e.args, 0, "no arguments")
        return Value("diff_filters", (), (), (2, 3, 3), False, "real", e.span)
    # otf(H, [h, w])
    if len(e.args) != 2 or not isinstance(e.args[1], ast.ListExpr):
        raise ck.err(SpecError, "write otf(H, [h, w])", e)
    h = ck.expr(e.args[0], ctx, env)
    if len(h.shape) != 3 or h.batched:
        raise ck.err(ShapeError, f"otf takes a filter bank [L, a, b], got {fmt_shape(h.shape)}",
                     e.args[0])
    size = []
    for item in e.args[1].items:
        if isinstance(item, ast.Name) and item.id in ck.dims:
            size.append(ck.dims[item.id] or item.id)
        elif isinstance(item, ast.Number) and item.value == int(item.value) and item.value > 0:
            size.append(int(item.value))
        else:
            raise ck.err(ShapeError, "an image size is a dim name or a positive integer", item)
    if len(size) != 2:
        raise ck.err(ShapeError, "otf needs the image size [h, w]", e.args[1])
    return Value("otf", (h,), (), (h.shape[0],) + tuple(size), False, "complex", e.span)


def _shape_list(ck, items) -> tuple[SizeLike, ...]:
    """A shape written as a list: numbers, dims and + - * of them (`[1, h, w]`, `[h * w]`), each
    positive."""
    shape = []
    for item in items:
        size = size_of_expr(ck, item)
        if isinstance(size, int) and size < 1:
            raise ck.err(ShapeError, f"a size must be positive, got {size}", item)
        shape.append(size)
    return tuple(shape)


def _filled(ck, e: ast.Call) -> Value:
    """`ones([r, 1])`, `zeros([n])`: a constant of that shape (sizes: dims and + - * of them)."""
    if len(e.args) != 1 or not isinstance(e.args[0], ast.ListExpr) or not e.args[0].items:
        raise ck.err(SpecError, f"write {e.func}([n]) or {e.func}([r, 1]): the shape is a list",
                     e, "a scalar is the number 1 (or 0)")
    return Value(e.func, (), (), _shape_list(ck, e.args[0].items), False, "real", e.span)


def call_reshape(ck, e: ast.Call, ctx, env) -> Value:
    """`reshape(v, [c, h, w])` and `vec(v)`: the same entries in another shape."""
    want = 1 if e.func == "vec" else 2
    if len(e.args) != want or e.kwargs or e.bound:
        raise ck.err(SpecError, "write reshape(v, [1, 33, 33]) or vec(v)", e)
    v = ck.expr(e.args[0], ctx, env)
    if e.func == "vec":  # the entry count, a product of dims (`4*G`) when they are not bound yet
        shape = (_size(v.shape),)
    else:
        lst = e.args[1]
        if not isinstance(lst, ast.ListExpr):
            raise ck.err(SpecError, "the new shape is a list: reshape(v, [1, 33, 33])", lst)
        for item in lst.items:
            if isinstance(item, ast.Name) and item.id not in ck.dims:
                raise ck.err(ShapeError, "a shape entry is a positive integer, a dim or + - * of "
                             "them", item, closest(item.id, ck.dims))
        shape = _shape_list(ck, lst.items)
    gap = size_sub(_size(shape), _size(v.shape))
    if isinstance(gap, int) and gap != 0:  # a gap that depends on the dims: unfold checks it
        raise ck.err(ShapeError, f"cannot reshape {fmt_shape(v.shape)} ({_size(v.shape)} "
                     f"entries) to {fmt_shape(shape)} ({_size(shape)} entries)", e)
    return Value("reshape", (v,), (shape,), shape, v.batched, v.dtype, e.span)


def _size(shape: tuple) -> SizeLike:
    n: SizeLike = 1
    for d in shape:
        n = size_mul(n, d)
    return n

