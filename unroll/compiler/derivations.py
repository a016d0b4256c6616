"""The spec calls that derivation expands (`grad`, `prox`, `argmin`), and the check that runs after
the iterate body. The types pass dispatches here with itself as the `Scope`."""
from __future__ import annotations

from typing import Callable

from ..dsl import ast
from . import derive
from .implicit import check_all_used
from .ir import Value
from .quadratic import argmin
from .scope import Scope

__all__ = ["DERIVED", "finish"]


def _argmin(scope: Scope, call: ast.Call, ctx, env) -> Value:
    return derive.rewrite(scope, argmin(scope, call, ctx, env))


DERIVED: dict[str, Callable[..., Value]] = {"grad": derive.grad, "prox": derive.prox, "argmin": _argmin}
"""Call name -> (scope, call, ctx, env) -> the derived `Value`."""


def finish(scope: Scope, updates: dict[str, Value]) -> None:
    """After the body: every learnable meant for rewriting must have matched a derived step."""
    check_all_used(scope, updates)
