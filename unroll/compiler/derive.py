"""Symbolic derivation: `grad` and `prox` of cost terms, expanded into primitive ops before the
graph is built. Each takes (scope, call, ctx, env) -> Value and reads the checker only through
the `scope.Scope` it is given; `derivations.DERIVED` maps the spec's calls to them and `argmin`.

`grad(f, x)` differentiates cost terms by reverse-mode rules over the IR (each op's vector-Jacobian
rule, `OpInfo.vjp` in `ops`), simplified by the smart constructors of `algebra`; `prox(g, v, t)`
looks the term's form up in `prox.PROX`; `argmin(x: q)` lowers the normal equations of a
quadratic (`quadratic`).
Learnables declared but not used literally in the body are matched into derived steps (`rewrite`).
"""
from __future__ import annotations

from ..dsl import ast
from ..errors import DerivationError
from . import algebra as al
from .ir import Value
from .ops import OPS, NotDifferentiable
from .prox import prox_of
from .scope import Scope

__all__ = ["vjp", "cost_terms", "placeholder", "grad", "prox", "rewrite", "NotDifferentiable",
           "why_not"]


def vjp(cost: Value, wrt: Value) -> Value | None:
    """The gradient of scalar `cost` with respect to the leaf `wrt` (None when it is zero).
    Complex intermediates carry adjoints dL/dRe + i dL/dIm (see `ops`); a real `wrt` gets a real
    one."""
    if cost.dtype == "complex":
        raise NotDifferentiable(cost, "the cost is complex-valued (take real(.) or ||.||^2 of it)")
    order = al.walk(cost)
    pos = {id(n): i for i, n in enumerate(order)}
    dep: dict[int, bool] = {}
    for n in order:
        dep[id(n)] = n is wrt or any(dep[id(a)] for a in n.args)
    if not dep[id(cost)]:
        return None
    adj: dict[int, list] = {id(cost): [(0, al.num(1.0))]}
    is_dep = lambda v: dep.get(id(v), False)  # noqa: E731
    for n in reversed(order):
        if n is wrt or not dep[id(n)] or id(n) not in adj:
            continue
        g = _total(adj[id(n)])
        if g is None:
            continue
        rule = OPS[n.op].vjp if n.op in OPS else None
        if rule is None:
            raise NotDifferentiable(n)
        for a, ga in zip(n.args, rule(al, n, g, is_dep)):
            if dep[id(a)] and ga is not None:
                if ga.dtype == "complex" and a.dtype != "complex":  # a real argument moves Re only
                    ga = al.mk("real", ga)
                if ga.shape == () and a.shape != () and n.op in ("sum", "mean"):
                    ga = Value("expand", (ga,), (), a.shape, ga.batched, ga.dtype, ga.span)
                adj.setdefault(id(a), []).append((pos[id(n)], ga))
    return _total(adj.get(id(wrt), []))


def why_not(nd: NotDifferentiable) -> tuple[str, str | None]:
    """What a `NotDifferentiable` met, in words, and a hint: a prox for a non-smooth atom, never
    for a smooth op that only lacks a derivative rule."""
    op = nd.node.op
    info = OPS.get(op)
    if nd.reason:
        return nd.reason, None
    if info is not None and (not info.smooth or info.prox is not None):
        what = {"norm1": "||.||_1", "norm2": "||.|| (not squared)", "norm0": "||.||_0"}.get(op, op)
        return (f"it contains {what}, which is not smooth",
                "use prox({name}, v, t) for a non-smooth term")
    kind = "complex op" if nd.node.dtype == "complex" or (info and info.out_dtype == "complex") \
        else "op"
    return (f"{kind} {op} has no derivative rule",
            "write its gradient by hand (the adjoint of the op applied to the residual)")


def _total(parts: list) -> Value | None:
    out = None
    for _, g in sorted(parts, key=lambda p: p[0]):
        out = al.add(out, g)
    return out


# ---- cost terms named in a call ----
def cost_terms(scope: Scope, e: ast.Expr) -> list[tuple[ast.Expr | None, float, str]]:
    """`f`, `f + h`, `rho * h - f` → [(coefficient expr or None, sign, cost name)]."""
    if isinstance(e, ast.Name):
        if e.id not in scope.costs:
            known = ", ".join(scope.costs) or "(none declared)"
            raise scope.err(DerivationError, f"'{e.id}' is not a cost term", e,
                            f"name a declared cost: {known}")
        return [(None, 1.0, e.id)]
    if isinstance(e, ast.BinOp) and e.op in ("add", "sub"):
        right = [(c, -s if e.op == "sub" else s, n) for c, s, n in cost_terms(scope, e.right)]
        return cost_terms(scope, e.left) + right
    if isinstance(e, ast.Neg):
        return [(c, -s, n) for c, s, n in cost_terms(scope, e.operand)]
    if isinstance(e, ast.BinOp) and e.op in ("mul", "matmul"):
        for coef, term in ((e.left, e.right), (e.right, e.left)):
            if isinstance(term, ast.Name) and term.id in scope.costs:
                return [(coef, 1.0, term.id)]
    raise scope.err(DerivationError, "expected a cost term or a sum of cost terms", e,
                    "write grad(f, x), grad(f + h, x) or grad(f + rho * h, x)")


def placeholder(name: str, like: Value) -> Value:
    """A fresh leaf standing for the variable of a derivation (compared by identity)."""
    return Value("state", (), (f"__{name}__",), like.shape, like.batched, like.dtype, like.span)


def term_value(scope: Scope, name: str, var: str | None, p: Value, ctx, env) -> Value:
    """Cost `name` with its parameter `var` (its only one by default) bound to `p`."""
    cost = scope.costs[name]
    var = var if var is not None else cost.params[0]
    args = tuple(ast.Name(cost.span, "__p__" if q == var else q) for q in cost.params)
    return al.normalize(scope.call_cost(ast.Call(cost.span, name, args), ctx,
                                        {**env, "__p__": p}))


def _wrt(scope: Scope, call: ast.Call, terms, ctx, env) -> tuple[str | None, Value]:
    """The differentiated parameter (None = each term's only one) and the point."""
    point = scope.expr(call.args[1], ctx, env)
    multi = [n for _, _, n in terms if len(scope.costs[n].params) > 1]
    if multi:
        x = call.args[1]
        if not isinstance(x, ast.Name) or x.id not in scope.costs[multi[0]].params:
            raise scope.err(DerivationError, f"cost {multi[0]} has several parameters; "
                            "name the one to differentiate", x,
                            f"one of: {', '.join(scope.costs[multi[0]].params)}")
        return x.id, point
    return None, point


def grad(scope: Scope, call: ast.Call, ctx, env) -> Value:
    """`grad(f, x)`: the gradient of cost terms by the VJP rules, at the point x."""
    if len(call.args) != 2:
        raise scope.err(DerivationError, "grad takes a cost and a variable: grad(f, x)", call)
    terms = cost_terms(scope, call.args[0])
    var, point = _wrt(scope, call, terms, ctx, env)
    p = placeholder("grad", point)
    total = None
    for coef, sign, name in terms:
        try:
            g = vjp(term_value(scope, name, var, p, ctx, env), p)
        except NotDifferentiable as nd:
            why, hint = why_not(nd)
            raise scope.err(DerivationError, f"cost {name} is not differentiable in "
                            f"{var or scope.costs[name].params[0]}: {why}", call,
                            hint and hint.format(name=name)) from None
        if coef is not None:
            g = al.mul(scope.expr(coef, ctx, env), g)
        total = al.sub(total, g) if sign < 0 else al.add(total, g)
    total = total if total is not None else al.num(0.0)
    out = al.substitute(total, {id(p): point})
    return rewrite(scope, out)


def prox(scope: Scope, call: ast.Call, ctx, env) -> Value:
    """`prox(g, v, t)`: the proximal operator of cost terms, from the table in `prox`."""
    if len(call.args) not in (2, 3):
        raise scope.err(DerivationError, "prox takes a cost, a point and a step: prox(g, v, t)",
                        call)
    terms = cost_terms(scope, call.args[0])
    v = scope.expr(call.args[1], ctx, env)
    t = scope.expr(call.args[2], ctx, env) if len(call.args) == 3 else al.num(1.0)
    p = placeholder("prox", v)
    parts = []
    for coef, sign, name in terms:
        val = term_value(scope, name, None, p, ctx, env)
        if coef is not None:
            val = al.mul(scope.expr(coef, ctx, env), val)
        parts.append(al.neg(val) if sign < 0 else val)
    return rewrite(scope, prox_of(scope, call, [n for _, _, n in terms], parts, p, v, t))


def rewrite(scope: Scope, v: Value) -> Value:
    """A derived step with its parts equal to implicit learnables' inits replaced by them."""
    from .rewrite import rewrite as _rewrite  # sympy, loaded only when a step is derived
    return _rewrite(scope, v)
