"""The checker's entry point: AST → checked `Program`, by the passes of `resolve` (names and
scopes), `shapes` (expressions through the op rules) and `declarations` (one handler per
statement class), after solver templates are expanded. Every mistake is a `SpecError`."""
from __future__ import annotations

from ..dsl import ast
from .declarations import Checker
from .ir import Program
from .resolve import IDENT
from .templates import expand

__all__ = ["check", "Checker", "IDENT"]


def check(spec: ast.Spec, K: int | None = None) -> Program:
    """Resolve names and infer shapes of a parsed spec; returns the `Program` of one iteration."""
    return Checker(expand(spec), K).run()
