"""Learnable subexpressions: a learnable declared but never named in the iterate body (or the loss,
or a state's init) replaces the part of a derived step (grad, prox, argmin) equal to its init.

The derived step is matched top-down. A vector part linear in the per-sample leaves (states,
inputs) is written Σ Cᵢ leafᵢ with sympy, and becomes Σ Wᵢ leafᵢ when every coefficient Cᵢ equals
the init of some learnable Wᵢ; any other part equal to a learnable's init becomes that learnable.
So from `x = prox(g, x - grad(f, x) / L, 1 / L)` with `learn W_e = A' / L`, `learn S = I - A' A / L`
and `learn theta = lam / L` comes `x = soft(W_e y + S x, theta)`.
"""
from __future__ import annotations

import sympy as sp

from . import algebra as al
from .ir import LEAF_OPS, Value
from .implicit import implicit_learnables
from .symbolic import equal, to_sympy
from .scope import Scope

__all__ = ["rewrite"]


def _linear_terms(expr, leaves: dict) -> dict | None:
    """expanded Σ Cᵢ leafᵢ → {leaf symbol: Cᵢ}; None if some term is not coefficient·leaf."""
    expr = sp.expand(expr)
    terms = expr.args if isinstance(expr, sp.MatAdd) else (expr,)
    out: dict = {}
    for t in terms:
        if t in leaves:
            coef = sp.Identity(t.shape[0])
            leaf = t
        elif isinstance(t, sp.MatMul) and t.args[-1] in leaves:
            leaf = t.args[-1]
            rest = t.args[:-1]
            mats = [r for r in rest if isinstance(r, sp.MatrixExpr)]
            scal = sp.Mul(*[r for r in rest if not isinstance(r, sp.MatrixExpr)])
            coef = scal * (sp.MatMul(*mats) if mats else sp.Identity(leaf.shape[0]))
        else:
            return None
        if any(s in leaves for s in coef.free_symbols):
            return None
        out[leaf] = out[leaf] + coef if leaf in out else coef
    return out


class _Matcher:
    def __init__(self, scope: Scope, names: list[str]):
        self.scope = scope
        self.inits = {n: to_sympy(scope.learnables[n].init) for n in names}
        self.used: set[str] = set()
        self.done: dict[int, Value] = {}  # by node: a derived step is a DAG (CG's is deep)

    def param(self, name: str) -> Value:
        self.used.add(name)
        return self.scope.leaf(name)

    def find(self, form, shape) -> str | None:
        for name, init in self.inits.items():
            lshape = self.scope.learnables[name].shape
            if (lshape == shape or lshape == () or shape == ()) and equal(form, init):
                return name
        return None

    def linear(self, v: Value) -> Value | None:
        atoms: dict = {}
        form = to_sympy(v, atoms)
        leaves = {s: a for s, a in atoms.items()}
        for n in al.walk(v):
            if n.op in ("state", "input") and not n.args:
                leaves[to_sympy(n)] = n
        if not isinstance(form, sp.MatrixExpr):
            return None
        terms = _linear_terms(form, leaves)
        if not terms:
            return None
        picked = {}
        for leaf, coef in terms.items():
            name = self.find(coef, (v.shape[0], leaves[leaf].shape[0]))
            if name is None:
                return None
            picked[name] = leaves[leaf]
        order = [n for n in self.inits if n in picked]
        out = None
        for name in order:
            out = al.add(out, al.matmul(self.param(name), picked[name]))
        return out

    def __call__(self, v: Value) -> Value:
        if id(v) not in self.done:
            self.done[id(v)] = self.match(v)
        return self.done[id(v)]

    def match(self, v: Value) -> Value:
        if v.op in LEAF_OPS:
            return v
        if v.batched and len(v.shape) == 1:
            got = self.linear(v)
            if got is not None:
                return got
        elif not v.batched and not any(n.op in ("state", "index") for n in al.walk(v)):
            name = self.find(to_sympy(v), v.shape)
            if name is not None:
                return self.param(name)
        args = [self(a) for a in v.args]
        if all(a is b for a, b in zip(args, v.args)):
            return v
        return al.rebuild(v, args)


def rewrite(scope: Scope, v: Value) -> Value:
    """v with its parts equal to implicit learnables' inits replaced by those learnables."""
    names = implicit_learnables(scope)
    if not names:
        return v
    return _Matcher(scope, names)(v)

