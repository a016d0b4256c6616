"""Errors raised for mistakes in a spec, each pointing at file:line:col with the offending line.

Every pass raises a `SpecError` (or a subclass) carrying a `Span`; `SpecError.__str__` renders the
excerpt with a caret, so the command line only has to print it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "Span", "SpecError", "SpecSyntaxError", "NameError_", "ShapeError", "TyingError",
    "DerivationError", "LoweringError", "closest",
]


@dataclass(frozen=True)
class Span:
    """A region of a spec: file name, 1-based line and column, end line and column."""

    file: str = "<spec>"
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(Exception):
    """A mistake in a spec, with where it is, what was expected and found, and at most one hint."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 source: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source = source

    def with_source(self, source: str) -> "SpecError":
        """Attach the spec text so the rendering can show the offending line."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return render(self)


class SpecSyntaxError(SpecError):
    kind = "syntax error"


class NameError_(SpecError):
    kind = "name error"


class ShapeError(SpecError):
    kind = "shape error"


class TyingError(SpecError):
    kind = "tying error"


class DerivationError(SpecError):
    kind = "derivation error"


class LoweringError(SpecError):
    kind = "lowering error"


def render(err: SpecError) -> str:
    """Format `err` as `file:line:col: kind: message`, the source line, a caret and the hint."""
    span = err.span
    head = f"{span}: {err.kind}: {err.message}" if span and span.line else f"{err.kind}: {err.message}"
    lines = [head]
    if span and span.line and err.source:
        src_lines = err.source.splitlines()
        if 0 < span.line <= len(src_lines):
            text = src_lines[span.line - 1].rstrip("\n")
            width = 1
            if span.end_line == span.line and span.end_col > span.col:
                width = span.end_col - span.col
            lines.append(f"  {span.line:4d} | {text}")
            pad = "".join("\t" if c == "\t" else " " for c in text[:max(span.col - 1, 0)])
            pad += " " * max(span.col - 1 - len(text), 0)  # tabs kept, so the caret lines up under them
            lines.append("       | " + pad + "^" * max(width, 1))
    if err.hint:
        lines.append(f"hint: {err.hint}")
    return "\n".join(lines)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint listing the candidates closest to `name`, or None."""
    near = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.5)
    if not near:
        return None
    return "did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
