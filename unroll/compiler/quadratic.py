"""`argmin(x: q)` for q quadratic in x: the normal equations H x = b, lowered to a linear solve.

The gradient of q is affine in x: b is minus its value at x = 0 and H its linear part. `LOWERINGS`
is tried in order: the Fourier-domain division (a hook, filled when FFT operators exist), a dense
`solve` when H can be formed as a fixed matrix, and conjugate gradients unrolled into primitive ops
(`cg` iterations, differentiable) otherwise. `argmin(x: q, method = cg, iters = 30)` forces one.
"""
from __future__ import annotations

from ..dsl import ast
from ..errors import DerivationError
from . import algebra as al
from .ir import Value

__all__ = ["argmin", "normal_equations", "linear_part", "LOWERINGS", "dense", "cg", "fourier"]

_LINEAR = {"add", "sub", "neg", "mul", "div", "matmul", "transpose"}


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
            elif n.op in ("mul", "matmul") and sum(dep[id(x)] for x in n.args) == 1:
                i = 0 if dep[id(n.args[0])] else 1
                c = n.args[1 - i]
                f = al.mul if n.op == "mul" else al.matmul
                memo[id(n)] = f(a[0], c) if i == 0 else f(c, a[1])
            elif n.op == "div" and dep[id(n.args[0])] and not dep[id(n.args[1])]:
                memo[id(n)] = al.div(a[0], n.args[1])
            else:
                raise ValueError(n.op)
    return memo[id(g)]


def normal_equations(q: Value, p: Value) -> tuple[Value | None, Value]:
    """(gradient of q in p, b) with gradient = H p − b; ValueError if q is not quadratic in p."""
    from .derive import vjp
    g = vjp(q, p)
    if g is None:
        raise ValueError("the expression does not depend on the variable")
    linear_part(g, p, p)  # raises ValueError when g is not affine in p
    b = al.neg(al.substitute(g, {id(p): al.num(0.0)}))
    if b is None or b.shape != p.shape:
        raise ValueError("the right-hand side b is zero, so the minimiser is 0")
    return g, b


def fourier(g: Value, p: Value, b: Value, opts: dict) -> Value | None:
    """Element-wise division in the Fourier domain when every operator in H is diagonalised by the
    FFT (k-space masks, circular convolutions). Hook: returns None until fft2 operators exist."""
    return None


def _scalar_coefficients(g: Value, p: Value) -> bool:
    """Whether every element-wise factor on the way to p is a fixed scalar (H is then a matrix)."""
    dep: dict[int, bool] = {}
    for n in al.walk(g):
        dep[id(n)] = n is p or any(dep[id(a)] for a in n.args)
        if dep[id(n)] and n.op in ("mul", "div"):
            other = [a for a in n.args if not dep[id(a)]]
            if any(o.shape != () or o.batched for o in other):
                return False
        if dep[id(n)] and n.op == "matmul" and (n.args[0].batched or dep[id(n.args[0])]):
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

    def dot(u: Value, w: Value) -> Value:
        return al.mk("maximum", al.mk("vdot", u, w, shape=keep), tiny)

    x, r, d = None, b, b
    rs = dot(r, r)
    for _ in range(int(opts.get("iters", 20))):
        Ad = linear_part(g, p, d)
        alpha = al.div(rs, dot(d, Ad))
        x = al.add(x, al.mul(alpha, d))
        r = al.sub(r, al.mul(alpha, Ad))
        rs_new = dot(r, r)
        d = al.add(r, al.mul(al.div(rs_new, rs), d))
        rs = rs_new
    return x


LOWERINGS = [fourier, dense, cg]


def _options(checker, call: ast.Call) -> dict:
    opts: dict = {}
    for k, e in call.kwargs:
        if k == "method" and isinstance(e, ast.Name) and e.id in ("dense", "cg", "fourier"):
            opts["method"] = e.id
        elif k == "iters" and isinstance(e, ast.Number) and e.value >= 1:
            opts["iters"] = int(e.value)
        else:
            raise checker.err(DerivationError, f"argmin: unknown option {k}", e,
                              "options: method = dense | cg | fourier, iters = N (for cg)")
    return opts


def argmin(checker, call: ast.Call, ctx, env) -> Value:
    """Lower `argmin(x: q)` (q quadratic in x) to a linear solve."""
    from .derive import placeholder
    if len(call.bound) != 1 or call.args:
        raise checker.err(DerivationError, "argmin takes one bound variable: argmin(x: expression)",
                          call, "e.g. argmin(x: f(x) + rho/2 * ||x - z + u||^2)")
    name, expr = call.bound[0]
    like = env.get(name) or (checker.symbols[name].value if name in checker.states else None)
    if like is None:
        raise checker.err(DerivationError, f"argmin variable '{name}' is not a state", call,
                          "minimise over a declared state, e.g. argmin(x: ...)")
    p = placeholder("argmin", like)
    q = al.normalize(checker.expr(expr, ctx, {**env, name: p}))
    if q.shape != ():
        raise checker.err(DerivationError, "argmin needs a scalar expression", expr)
    opts = _options(checker, call)
    try:
        g, b = normal_equations(q, p)
    except ValueError as e:
        raise checker.err(DerivationError, f"argmin needs an expression quadratic in {name}", expr,
                          f"its gradient is not affine in {name} ({e})") from None
    for lower in LOWERINGS:
        if opts.get("method") not in (None, lower.__name__):
            continue
        out = lower(g, p, b, opts)
        if out is not None:
            return out
    raise checker.err(DerivationError, f"argmin: method {opts.get('method')} does not apply here",
                      call, "the fourier path needs FFT-diagonalised operators; dense needs a "
                      "vector variable with fixed scalar coefficients")
