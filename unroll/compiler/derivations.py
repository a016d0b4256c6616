"""The spec calls that derivation expands (`grad`, `prox`, `prox_conj`, `argmin`), and the check that runs after
the iterate body. The types pass dispatches here with itself as the `Scope`."""
from __future__ import annotations

from typing import Callable

from ..dsl import ast
from ..errors import DerivationError
from . import derive
from .implicit import check_all_used
from .ir import Value
from .quadratic import argmin
from .scope import Scope

__all__ = ["DERIVED", "finish"]


def _argmin(scope: Scope, call: ast.Call, ctx, env) -> Value:
    return derive.rewrite(scope, argmin(scope, call, ctx, env))


def _prox_conj(scope: Scope, call: ast.Call, ctx, env) -> Value:
    """`prox_conj(F, v, s)`: the prox of s·F* (F's convex conjugate) by Moreau's identity,
    v − s · prox(F, v / s, 1 / s); a dual step of PDHG."""
    if len(call.args) != 3 or call.kwargs or call.bound:
        raise scope.err(DerivationError, "prox_conj takes a cost, a point and a step: "
                        "prox_conj(F, v, s)", call)
    f, v, s = call.args
    at = call.span
    inner = ast.Call(at, "prox", (f, ast.BinOp(at, "div", v, s),
                                  ast.BinOp(at, "div", ast.Number(at, 1.0), s)))
    return scope.expr(ast.BinOp(at, "sub", v, ast.BinOp(at, "mul", s, inner)), ctx, env)


DERIVED: dict[str, Callable[..., Value]] = {"grad": derive.grad, "prox": derive.prox,
                                            "prox_conj": _prox_conj, "argmin": _argmin}
"""Call name -> (scope, call, ctx, env) -> the derived `Value`."""


def finish(scope: Scope, updates: dict[str, Value]) -> None:
    """After the body: every learnable meant for rewriting must have matched a derived step."""
    check_all_used(scope, updates)
