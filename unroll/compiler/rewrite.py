"""Learnable subexpressions: a learnable declared but never named in the iterate body (or the loss,
or a state's init) replaces the part of a derived step (grad, prox, argmin) equal to its init.

The derived step is matched top-down. A vector part linear in the per-sample leaves (states,
inputs) is written Σ Cᵢ leafᵢ with sympy, and becomes Σ Wᵢ leafᵢ when every coefficient Cᵢ equals
the init of some learnable Wᵢ; any other part equal to a learnable's init becomes that learnable.
So from `x = prox(g, x - grad(f, x) / L, 1 / L)` with `learn W_e = A' / L`, `learn S = I - A' A / L`
and `learn theta = lam / L` comes `x = soft(W_e y + S x, theta)`.
"""
from __future__ import annotations

import warnings

import sympy as sp

from ..dsl import ast
from ..errors import DerivationError
from . import algebra as al
from .ir import LEAF_OPS, Value
from .symbolic import equal, to_sympy

__all__ = ["rewrite", "implicit_learnables", "check_all_used", "UnusedLearnableWarning"]


def _nodes(e):
    """Every AST node in `e` (a node or a tuple of them), depth first."""
    if isinstance(e, ast.Node):
        yield e
        for f in e.__dataclass_fields__:
            yield from _nodes(getattr(e, f))
    elif isinstance(e, tuple):
        for x in e:
            yield from _nodes(x)


def _names(e, out: set) -> None:
    out.update(n.id for n in _nodes(e) if isinstance(n, ast.Name))


def _calls(e, out: set) -> None:
    out.update(n.func for n in _nodes(e) if isinstance(n, ast.Call))


def implicit_learnables(checker) -> list[str]:
    """Learnables never named where values are used (body, loss, state inits), in order."""
    used: set[str] = set()
    for s in checker.spec.statements:
        if isinstance(s, (ast.Iterate, ast.Loss, ast.State, ast.Output)):
            _names(s, used)
    return [n for n in checker.learnables if n not in used]


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
    def __init__(self, checker, names: list[str]):
        self.checker = checker
        self.inits = {n: to_sympy(checker.learnables[n].init) for n in names}
        self.used: set[str] = set()

    def param(self, name: str) -> Value:
        self.used.add(name)
        return self.checker.symbols[name].value

    def find(self, form, shape) -> str | None:
        for name, init in self.inits.items():
            lshape = self.checker.learnables[name].shape
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


def rewrite(checker, v: Value) -> Value:
    """v with its parts equal to implicit learnables' inits replaced by those learnables."""
    names = implicit_learnables(checker)
    if not names:
        return v
    return _Matcher(checker, names)(v)


def _params(v: Value) -> set[str]:
    return {n.attrs[0] for n in al.walk(v) if n.op == "param"}


def check_all_used(checker, updates: dict[str, Value]) -> None:
    """A learnable meant for rewriting that matched nothing is an error at its declaration."""
    names = implicit_learnables(checker)
    calls: set[str] = set()
    _calls(checker.spec.statements, calls)
    if not names:
        return
    if not calls & {"grad", "prox", "argmin"}:
        _check_named(checker, names, calls)
        return
    used: set[str] = set()
    for v in updates.values():
        used |= _params(v)
    for n in names:
        if n not in used:
            lrn = checker.learnables[n]
            raise checker.err(DerivationError, f"learn {n} is not used in the body and its init "
                              "matches no part of a derived step (grad, prox, argmin)", lrn.span,
                              "use it by name in an update, or make its init equal to a "
                              "coefficient of the expanded step")


def _check_named(checker, names: list[str], calls: set[str]) -> None:
    """Without derived steps nothing can match a learnable by its init: one never named is warned
    about (it would train nothing and still count as a parameter)."""
    named: set[str] = set(calls)
    _names(checker.spec.statements, named)
    for n in names:
        if n not in named:
            warnings.warn(f"{checker.learnables[n].span}: learn {n} is never used (no update, loss or "
                          "cost names it) but still counts as a parameter", UnusedLearnableWarning,
                          stacklevel=2)


class UnusedLearnableWarning(UserWarning):
    """A declared learnable that no part of the network reads."""
