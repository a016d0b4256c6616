"""Implicit learnables: a learnable declared but never named where values are used (the iterate
body, the loss, a state's init) stands for the part of a derived step equal to its init (matched in
`rewrite`). Finding them walks the AST only, so a spec without derivation never loads sympy.
"""
from __future__ import annotations

import warnings

from ..dsl import ast
from ..errors import DerivationError
from . import algebra as al
from .ir import Value
from .scope import Scope

__all__ = ["implicit_learnables", "check_all_used", "UnusedLearnableWarning"]


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


def implicit_learnables(scope: Scope) -> list[str]:
    """Learnables never named where values are used (body, loss, state inits), in order."""
    used: set[str] = set()
    for s in scope.statements:
        if isinstance(s, (ast.Iterate, ast.Loss, ast.State, ast.Output)):
            _names(s, used)
    return [n for n in scope.learnables if n not in used]


def _params(v: Value) -> set[str]:
    return {n.attrs[0] for n in al.walk(v) if n.op == "param"}


def check_all_used(scope: Scope, updates: dict[str, Value]) -> None:
    """A learnable meant for rewriting that matched nothing is an error at its declaration."""
    names = implicit_learnables(scope)
    calls: set[str] = set()
    _calls(scope.statements, calls)
    if not names:
        return
    if not calls & {"grad", "prox", "argmin"}:
        _check_named(scope, names, calls)
        return
    used: set[str] = set()
    for v in updates.values():
        used |= _params(v)
    for n in names:
        if n not in used:
            lrn = scope.learnables[n]
            raise scope.err(DerivationError, f"learn {n} is not used in the body and its init "
                              "matches no part of a derived step (grad, prox, argmin)", lrn.span,
                              "use it by name in an update, or make its init equal to a "
                              "coefficient of the expanded step")


def _check_named(scope: Scope, names: list[str], calls: set[str]) -> None:
    """Without derived steps nothing can match a learnable by its init: one never named is warned
    about (it would train nothing and still count as a parameter)."""
    named: set[str] = set(calls)
    _names(scope.statements, named)
    for n in names:
        if n not in named:
            warnings.warn(f"{scope.learnables[n].span}: learn {n} is never used (no update, loss or "
                          "cost names it) but still counts as a parameter", UnusedLearnableWarning,
                          stacklevel=2)


class UnusedLearnableWarning(UserWarning):
    """A declared learnable that no part of the network reads."""
