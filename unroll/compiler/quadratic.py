"""`argmin(x: q)` for q quadratic in x: the normal equations H x = b, lowered to a linear solve.

The gradient of q is affine in x: b is minus its value at x = 0 and H its linear part. `LOWERINGS`
is tried in order: the Fourier-domain division (costs diagonalised by fft2 or cconv), a dense
`solve` when H can be formed as a fixed matrix, and conjugate gradients unrolled into primitive ops
(`cg` iterations, differentiable) otherwise. `argmin(x: q, method = cg, iters = 30)` forces one.
"""
from __future__ import annotations

from ..dsl import ast
from ..limits import MAX_SOLVER_ITERS
from ..errors import DerivationError
from . import algebra as al
from .derive import NotDifferentiable, placeholder, vjp, why_not
from .ir import Value
from .ops import OPS
from .scope import Scope

__all__ = ["argmin", "normal_equations", "linear_part", "LOWERINGS", "dense", "cg", "fourier"]

def _linear_in(n: Value, dep: dict) -> int | None:
    """The argument of n that depends on p, when n is linear in it and the others do not."""
    i = OPS[n.op].linear_in if n.op in OPS else None
    if i is None or not all(dep[id(x)] == (j == i) for j, x in enumerate(n.args)):
        return None
    return i


def linear_part(g: Value, p: Value, v: Value) -> Value | None:
    """The linear part of the affine g(p), applied to v (None when it is zero)."""
    memo: dict[int, Value | None] = {}
    dep: dict[int, bool] = {}
    for n in al.walk(g):
        dep[id(n)] = n is p or any(dep[id(a)] for a in n.args)
        if n is p:
            memo[id(n)] = v
        elif not dep[id(n)]:
            memo[id(n)] = None
        else:
            a = [memo[id(x)] for x in n.args]
            if n.op == "add":
                memo[id(n)] = al.add(a[0], a[1])
            elif n.op == "sub":
                memo[id(n)] = al.sub(a[0], a[1])
            elif n.op == "neg":
                memo[id(n)] = al.neg(a[0])
            elif n.op == "transpose":
                memo[id(n)] = None if a[0] is None else al.T(a[0])
            elif n.op == "linop_apply":
                memo[id(n)] = al.rebuild(n, a)
            elif n.op in ("mul", "matmul") and sum(dep[id(x)] for x in n.args) == 1:
                i = 0 if dep[id(n.args[0])] else 1
                c = n.args[1 - i]
                f = al.mul if n.op == "mul" else al.matmul
                memo[id(n)] = f(a[0], c) if i == 0 else f(c, a[1])
            elif _linear_in(n, dep) is not None:  # linear in the one argument that depends on p
                i = _linear_in(n, dep)
                args = [a[i] if j == i else x for j, x in enumerate(n.args)]
                memo[id(n)] = None if a[i] is None else al.mk(n.op, *args, attrs=n.attrs,
                                                              shape=n.shape)
            elif n.op == "div" and dep[id(n.args[0])] and not dep[id(n.args[1])]:
                memo[id(n)] = al.div(a[0], n.args[1])
            else:
                raise ValueError(n.op)
    return memo[id(g)]


def normal_equations(q: Value, p: Value) -> tuple[Value | None, Value]:
    """(gradient of q in p, b) with gradient = H p − b; ValueError if q is not quadratic in p."""
    try:
        g = vjp(q, p)
    except NotDifferentiable as nd:
        raise ValueError(f"it is not differentiable: {why_not(nd)[0]}") from None
    if g is None:
        raise ValueError("the expression does not depend on the variable")
    linear_part(g, p, p)  # raises ValueError when g is not affine in p
    b = al.neg(al.substitute(g, {id(p): al.num(0.0)}))
    if b is None or b.shape != p.shape:
        raise ValueError("the right-hand side b is zero, so the minimiser is 0")
    return g, b


def _v(op: str, *args: Value, shape: tuple, dtype: str, attrs: tuple = ()) -> Value:
    return Value(op, tuple(args), attrs, tuple(shape), any(a.batched for a in args), dtype,
                 next((a.span for a in args if a.span is not None), None))


def _terms(v: Value, p: Value, coef: Value | None) -> list[tuple[Value | None, Value]]:
    """q as a sum of (constant scalar coefficient, term) pairs."""
    if v.op == "add":
        return _terms(v.args[0], p, coef) + _terms(v.args[1], p, coef)
    if v.op in ("mul", "div"):
        a, b = v.args
        if v.op == "mul" and not al.depends(a, p) and a.shape == () and not a.batched:
            return _terms(b, p, al.mul(coef, a) if coef is not None else a)
        if not al.depends(b, p) and b.shape == () and not b.batched:
            c = b if v.op == "mul" else al.div(al.num(1.0), b)
            return _terms(a, p, al.mul(coef, c) if coef is not None else c)
    return [(coef, v)]


def _residual(e: Value, p: Value) -> tuple[tuple, Value | None] | None:
    """e = M(p) - r with M one of p, fft2(p), P * fft2(p), cconv(H, p): ((kind, const), r)."""
    parts: list[tuple[int, Value]] = []

    def flat(v: Value, sign: int) -> None:
        if v.op in ("add", "sub"):
            flat(v.args[0], sign)
            flat(v.args[1], sign if v.op == "add" else -sign)
        elif v.op == "neg":
            flat(v.args[0], -sign)
        else:
            parts.append((sign, v))
    flat(e, 1)
    live = [(s, v) for s, v in parts if al.depends(v, p)]
    if len(live) != 1 or live[0][0] != 1:
        return None
    m = live[0][1]
    if m is p:
        kind = ("id", None)
    elif m.op == "fft2" and m.args[0] is p:
        kind = ("fft", None)
    elif m.op == "mul" and any(a.op == "fft2" and a.args[0] is p for a in m.args):
        mask = next(a for a in m.args if not (a.op == "fft2" and a.args[0] is p))
        if al.depends(mask, p) or mask.batched:
            return None
        kind = ("mask", mask)
    elif m.op == "cconv" and m.args[1] is p and not al.depends(m.args[0], p):
        kind = ("conv", m.args[0])
    else:
        return None
    r = None
    for s, v in parts:
        if v is not m:
            r = al.add(r, v if s < 0 else al.neg(v))
    return kind, r


def _core(t: Value) -> tuple[Value | None, Value] | None:
    """(weight, e) for ||e||^2, sum(e^2) or sum(w * e^2)."""
    if t.op == "sqnorm":
        return None, t.args[0]
    if t.op != "sum":
        return None
    inner = t.args[0]
    w = None
    if inner.op == "mul":
        sq = [a for a in inner.args if a.op == "pow" and al.is_num(a.args[1], 2.0)]
        if len(sq) != 1:
            return None
        w = next(a for a in inner.args if a is not sq[0])
        inner = sq[0]
    if inner.op == "pow" and al.is_num(inner.args[1], 2.0):
        return w, inner.args[0]
    return None


def fourier(q: Value, p: Value) -> Value | None:
    """argmin of a sum of weighted squared residuals of FFT-diagonalised operators of p (identity,
    fft2, k-space masks, circular convolutions): one element-wise division in the Fourier domain.
    Returns None when q is not of that form."""
    if len(p.shape) != 2:
        return None
    h, w_ = p.shape
    lam: Value | None = None
    rhs: Value | None = None
    for coef, t in _terms(q, p, None):
        if not al.depends(t, p):
            continue  # constants do not move the minimiser
        core = _core(t)
        if core is None:
            return None
        weight, e = core
        res = _residual(e, p)
        if res is None or (weight is not None and (al.depends(weight, p) or weight.batched)):
            return None
        (kind, op), r = res
        eff = al.mul(al.num(2.0), coef if coef is not None else al.num(1.0))
        if weight is not None:
            eff = _v("mul", eff, weight, shape=weight.shape, dtype="real")
        if kind in ("id", "fft"):
            lam_i = eff
            rr = (None if r is None else _v("fft2", _v("mul", eff, r, shape=r.shape, dtype=r.dtype),
                                             shape=r.shape, dtype="complex")) if kind == "id" else \
                (None if r is None else _v("mul", eff, r, shape=r.shape, dtype=r.dtype))
        elif kind == "mask":
            lam_i = _v("mul", eff, _v("mul", op, op, shape=op.shape, dtype="real"), shape=op.shape,
                       dtype="real")
            rr = None if r is None else _v("mul", _v("mul", eff, op, shape=op.shape, dtype="real"),
                                           r, shape=r.shape, dtype="complex")
        else:  # circular convolution with a filter bank [L, a, b]
            L = op.shape[0]
            otf = _v("otf", op, shape=(L, h, w_), dtype="complex")
            sq = _v("pow", _v("abs", otf, shape=otf.shape, dtype="real"), al.num(2.0),
                    shape=otf.shape, dtype="real")
            lam_i = _v("sum_l", _v("mul", eff, sq, shape=otf.shape, dtype="real"), shape=(h, w_),
                       dtype="real")
            rr = None
            if r is not None:
                fr = _v("fft2", _v("mul", eff, r, shape=r.shape, dtype=r.dtype), shape=r.shape,
                        dtype="complex")
                rr = _v("sum_l", _v("mul", _v("conj", otf, shape=otf.shape, dtype="complex"), fr,
                                    shape=r.shape, dtype="complex"), shape=(h, w_), dtype="complex")
        lam = lam_i if lam is None else _v("add", lam, lam_i, shape=_bs(lam, lam_i), dtype="real")
        if rr is not None:
            rhs = rr if rhs is None else _v("add", rhs, rr, shape=(h, w_), dtype="complex")
    if lam is None or rhs is None:
        return None
    x = _v("ifft2", _v("div", rhs, lam, shape=(h, w_), dtype="complex"), shape=(h, w_),
           dtype="complex")
    return x if p.dtype == "complex" else _v("real", x, shape=(h, w_), dtype="real")


def _bs(a: Value, b: Value) -> tuple:
    return a.shape if len(a.shape) >= len(b.shape) else b.shape


_SHAPED = frozenset(name for name, o in OPS.items() if o.along_axis)


def _scalar_coefficients(g: Value, p: Value) -> bool:
    """Whether every element-wise factor on the way to p is a fixed scalar (H is then a matrix)."""
    dep: dict[int, bool] = {}
    for n in al.walk(g):
        dep[id(n)] = n is p or any(dep[id(a)] for a in n.args)
        if dep[id(n)] and n.op in _SHAPED:  # act on an axis: applied to I they would misread it
            return False
        if dep[id(n)] and n.op in ("mul", "div"):
            other = [a for a in n.args if not dep[id(a)]]
            if any(o.shape != () or o.batched for o in other):
                return False
        if dep[id(n)] and n.op == "matmul" and (n.args[0].batched or dep[id(n.args[0])]):
            return False
        if dep[id(n)] and n.op == "linop_apply":  # matrix-free: never formed, solved by CG
            return False
    return True


def dense(g: Value, p: Value, b: Value, opts: dict) -> Value | None:
    """solve(H, b) with H formed once as a fixed [m, m] matrix (vectors only)."""
    if opts.get("method") not in (None, "dense") or len(p.shape) != 1:
        return None
    if not _scalar_coefficients(g, p):
        return None
    eye = Value("identity", (), (), (p.shape[0], p.shape[0]), False, "real", p.span)
    H = linear_part(g, p, eye)
    if H is None or H.batched:
        return None
    if H.shape != eye.shape:
        H = al.mul(H, eye)
    return al.mk("solve", H, b, shape=p.shape)


def cg(g: Value, p: Value, b: Value, opts: dict) -> Value:
    """`iters` conjugate-gradient steps from 0, unrolled into primitive ops (differentiable)."""
    keep = (1,) * len(p.shape)
    tiny = al.num(1e-30)

    def dot(u: Value, w: Value) -> Value:  # Re<u, w>: H is self-adjoint in the real inner product
        uw = al.mk("vdot", u, w, shape=keep)
        return al.mk("real", uw) if uw.dtype == "complex" else uw

    def floor(v: Value) -> Value:  # only denominators: a converged residual's steps stay ~0
        return al.mk("maximum", v, tiny)

    x, r, d = None, b, b
    rs = dot(r, r)
    for _ in range(int(opts.get("iters", 20))):
        Ad = linear_part(g, p, d)
        alpha = al.div(rs, floor(dot(d, Ad)))
        x = al.add(x, al.mul(alpha, d))
        r = al.sub(r, al.mul(alpha, Ad))
        rs_new = dot(r, r)
        d = al.add(r, al.mul(al.div(rs_new, floor(rs)), d))
        rs = rs_new
    return x


LOWERINGS = [dense, cg]  # tried after `fourier`, which works on the cost itself


def _options(scope: Scope, call: ast.Call) -> dict:
    opts: dict = {}
    for k, e in call.kwargs:
        if k == "method" and isinstance(e, ast.Name) and e.id in ("dense", "cg", "fourier"):
            opts["method"] = e.id
        elif k == "iters" and isinstance(e, ast.Number) and 1 <= e.value <= MAX_SOLVER_ITERS:
            opts["iters"] = int(e.value)
        else:
            raise scope.err(DerivationError, f"argmin: unknown option {k}", e,
                            "options: method = dense | cg | fourier, iters = N (for cg)")
    return opts


def argmin(scope: Scope, call: ast.Call, ctx, env) -> Value:
    """Lower `argmin(x: q)` (q quadratic in x) to a linear solve."""
    if len(call.bound) != 1 or call.args:
        raise scope.err(DerivationError, "argmin takes one bound variable: argmin(x: expression)",
                        call, "e.g. argmin(x: f(x) + rho/2 * ||x - z + u||^2)")
    name, expr = call.bound[0]
    like = env.get(name) or scope.state(name)
    if like is None:
        raise scope.err(DerivationError, f"argmin variable '{name}' is not a state", call,
                        "minimise over a declared state, e.g. argmin(x: ...)")
    p = placeholder("argmin", like)
    q = al.normalize(scope.expr(expr, ctx, {**env, name: p}))
    if q.shape != ():
        raise scope.err(DerivationError, "argmin needs a scalar expression", expr)
    opts = _options(scope, call)
    if opts.get("method") in (None, "fourier"):
        out = fourier(q, p)
        if out is not None:
            return out
        if opts.get("method") == "fourier":
            raise scope.err(DerivationError, "argmin: the fourier path does not apply here", call,
                            "it needs a sum of weighted ||M x - r||^2 with M one of x, fft2(x), "
                            "P * fft2(x), cconv(H, x)")
    try:
        g, b = normal_equations(q, p)
    except ValueError as e:
        raise scope.err(DerivationError, f"argmin needs an expression quadratic in {name}", expr,
                        f"its gradient is not affine in {name} ({e})") from None
    for lower in LOWERINGS:
        if opts.get("method") not in (None, lower.__name__):
            continue
        out = lower(g, p, b, opts)
        if out is not None:
            return out
    raise scope.err(DerivationError, f"argmin: method {opts.get('method')} does not apply here",
                    call, "the fourier path needs FFT-diagonalised operators; dense needs a "
                    "vector variable with fixed scalar coefficients")
