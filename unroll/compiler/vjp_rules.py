"""The vector-Jacobian rules of the ops (`OpInfo.vjp` in `ops`), kept apart from the op table.

A rule is (algebra, node, adjoint of the node, depends(value)) -> one adjoint per argument (None:
zero); `compiler.algebra` is passed in so that no derivation code is imported here. Complex values
follow the real-adjoint convention (see `_cj`).
"""
from __future__ import annotations

from .ir import IDENT, Value
from .sizes import size_add

__all__ = ["NotDifferentiable"]


class NotDifferentiable(Exception):
    """Raised when grad meets a node it cannot differentiate (no VJP rule, or x^y with y not a
    number); `reason`, when given, says why in words."""

    def __init__(self, node: Value, reason: str | None = None):
        super().__init__(reason or node.op)
        self.node = node
        self.reason = reason


def _unb(al, g: Value | None, a: Value) -> Value | None:
    """Sum an adjoint over the entries a scalar argument (or size-1 axes) was broadcast to."""
    if g is not None and a.shape == () and g.shape != ():
        return al.mk("sum", g)
    if g is None or len(g.shape) != len(a.shape) or IDENT in (a.shape, g.shape):
        return g
    wide = [i for i, (da, dg) in enumerate(zip(a.shape, g.shape)) if da == 1 and dg != 1]
    for i in reversed(wide):
        g = al.mk("sum_axis", g, attrs=(i,), shape=g.shape[:i] + g.shape[i + 1:])
    return al.mk("reshape", g, attrs=(a.shape,), shape=a.shape) if wide else g


def _size(al, a: Value) -> Value:
    out = al.num(1.0)
    for d in a.shape:
        out = al.mul(out, al.num(d) if isinstance(d, int) else Value("dim", (), (d,)))
    return out


# Complex values follow the real-adjoint convention: the adjoint of a complex z is
# dL/dRe z + i dL/dIm z for the real scalar cost L, so a holomorphic op's rule multiplies by the
# conjugate of its derivative, a linear map's rule applies its adjoint (fft2's is ifft2), and a
# real argument takes the real part of its adjoint (derive.vjp).
def _cj(al, v: Value) -> Value:
    """conj(v); a real value is its own conjugate."""
    return al.mk("conj", v) if v.dtype == "complex" else v


def _mul_vjp(al, n: Value, g: Value, dep):
    a, b = n.args
    return [_unb(al, al.mul(g, _cj(al, b)), a) if dep(a) else None,
            _unb(al, al.mul(g, _cj(al, a)), b) if dep(b) else None]


def _matmul_vjp(al, n: Value, g: Value, dep):
    a, b = n.args
    ga = None if not dep(a) else al.matmul(g, al.T(_cj(al, b))) if len(b.shape) == 2 else None
    if dep(a) and ga is None:
        raise NotDifferentiable(n)
    return [ga, al.matmul(al.T(_cj(al, a)), g)]


def _pow_vjp(al, n: Value, g: Value, dep):
    a, c = n.args
    if al.numval(c) is None:
        raise NotDifferentiable(n, "x^y has a derivative rule only for a number y")
    e = al.numval(c)
    da = al.mul(al.num(e), al.mk("pow", a, al.num(e - 1)) if e != 2 else a)
    return [_unb(al, al.mul(g, _cj(al, da)), a), None]


def _div_vjp(al, n: Value, g: Value, dep):
    a, b = n.args
    return [_unb(al, al.div(g, _cj(al, b)), a),
            _unb(al, al.neg(al.div(al.mul(g, _cj(al, a)), _cj(al, al.mul(b, b)))), b)]


def _imag_vjp(al, n: Value, g: Value, dep):  # imag(a) moves a's imaginary part: adjoint i g
    return [al.mk("complex", al.num(0.0), g) if n.args[0].dtype == "complex" else None]


def _complex_vjp(al, n: Value, g: Value, dep):  # a + i b: a gets Re g, b gets Im g
    if g.dtype != "complex":
        return [g, None]
    return [al.mk("real", g), al.mk("imag", g)]


def _conv_vjp(adjoint: str):
    """The rule of cconv (cconv_t): its adjoint cconv_t (cconv) with the same filters, in the
    image argument; the filters have no rule."""
    def rule(al, n: Value, g: Value, dep) -> list:
        if dep(n.args[0]):
            raise NotDifferentiable(n, f"{n.op} has a derivative rule in its image argument only, "
                                       "not in the filters")
        return [None, al.mk(adjoint, n.args[0], g)]
    return rule


def _lead(shape: tuple, axis: int) -> tuple:
    return tuple(("range", 0, shape[i]) for i in range(axis))


def _slice_vjp(al, n: Value, g: Value, dep) -> list:  # a range's adjoint embeds it into zeros
    src = n.args[0]
    return [Value("embed", (g,), (n.attrs[0], src.shape), src.shape, g.batched, g.dtype, g.span)]


def _embed_vjp(al, n: Value, g: Value, dep) -> list:
    return [Value("slice", (g,), (n.attrs[0],), n.args[0].shape, g.batched, g.dtype, g.span)]


def _cat_vjp(al, n: Value, g: Value, dep) -> list:  # a join's adjoint takes its ranges
    axis, lo, out = n.attrs[0], 0, []
    for a in n.args:
        hi = size_add(lo, a.shape[axis])
        items = _lead(n.shape, axis) + (("range", lo, hi),)
        out.append(Value("slice", (g,), (items,), a.shape, g.batched, g.dtype, g.span))
        lo = hi
    return out


def _stack_vjp(al, n: Value, g: Value, dep) -> list:
    axis = n.attrs[0]
    return [Value("slice", (g,), (_lead(n.shape, axis) + (("at", i),),), a.shape, g.batched,
                  g.dtype, g.span) for i, a in enumerate(n.args)]


def _count(al, d) -> Value:
    return al.num(d) if isinstance(d, int) else Value("dim", (), (d,))


def _back(al, g: Value, a: Value, axis: int | None) -> Value:
    """An along-axis reduction's adjoint g put back on its argument's shape (repeated along axis)."""
    if axis is None or g.shape == ():
        return Value("expand", (g,), (), a.shape, g.batched, g.dtype, g.span)
    return al.mk("spread", g, attrs=(axis,), shape=a.shape)


def _lse_vjp(al, n: Value, g: Value, dep) -> list:  # softmax along the axis times the adjoint
    a, axis = n.args[0], n.attrs[0]
    return [al.mul(_back(al, g, a, axis), al.mk("exp", al.sub(a, _back(al, n, a, axis))))]
