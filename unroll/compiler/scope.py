"""`Scope`: the one interface derivation (grad, prox, argmin, the learnable rewrite) has to the
checker. Derivation modules take a `Scope` and ask only this; tests/test_scope.py holds them to it.
"""
from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

from ..dsl import ast
from ..errors import Span, SpecError
from .ir import Learnable, Value

__all__ = ["Scope"]


@runtime_checkable
class Scope(Protocol):
    """The checked declarations a derivation reads, and the two ways it types expressions."""

    @property
    def statements(self) -> tuple[ast.Node, ...]:
        """The spec's statements (solver templates expanded)."""

    @property
    def costs(self) -> Mapping[str, ast.Cost]:
        """The declared cost terms by name."""

    @property
    def learnables(self) -> Mapping[str, Learnable]:
        """The declared learnables by name."""

    def expr(self, e: ast.Expr, ctx: str, env: dict[str, Value] | None = None) -> Value:
        """Type expression `e` in context `ctx` (body, cost, loss, ...) with locals `env`."""

    def call_cost(self, e: ast.Call, ctx: str, env: dict[str, Value]) -> Value:
        """The value of a call of a declared cost term, its arguments typed in `ctx`."""

    def err(self, cls: type[SpecError], msg: str, node_or_span: ast.Node | Span,
            hint: str | None = None) -> SpecError:
        """An error of class `cls` located at a node or span of the spec."""

    def leaf(self, name: str) -> Value | None:
        """The leaf value a declared name stands for (None for costs, blocks and undeclared names)."""

    def state(self, name: str) -> Value | None:
        """The leaf of state `name` (None when `name` is not a state)."""
