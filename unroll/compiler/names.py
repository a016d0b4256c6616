"""The names a spec may not use, because the generated PyTorch module uses them for itself.

Generated code keeps its own names in a reserved namespace: every internal local, helper and
method starts with '_', or is one of `graph.RESERVED` (which spec names are renamed around, with a
trailing '_'). So a spec name may not start with '_' or be a Python keyword, and an input may not
be one of `graph.RESERVED` (inputs are forward()'s keyword arguments and cannot be renamed).
tests/test_names.py checks every name in the scope of generated modules against these rules.
"""
from __future__ import annotations

import keyword

from ..errors import NameError_, closest
from .constraints import BASES
from .graph import RESERVED

__all__ = ["reserved_reason", "unknown_name"]


def reserved_reason(name: str, kind: str) -> str | None:
    """Why `name` cannot name a `kind` (input, const, learn, ...) in a spec, or None if it can."""
    if name.startswith("_"):
        return (f"'{name}': names starting with '_' are reserved for the code unroll generates")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"'{name}' is a Python keyword, which the generated module cannot use as a name"
    if kind in ("input", "algorithm") and name in RESERVED:
        what = ("the generated forward() has its own argument or name" if kind == "input"
                else "the generated module uses that name")
        return f"'{name}' cannot name an {kind}: {what} '{name}'"
    if kind == "operator" and (name in RESERVED or name in COMPILE_ARGUMENTS):
        return (f"'{name}' cannot name an operator: operators are passed by name to "
                f"unroll.compile(...), which has its own argument or name '{name}'")
    return None


# unroll.compile's own parameters: an operator cannot be passed under these names.
COMPILE_ARGUMENTS = frozenset({"spec", "K", "dims", "dtype", "device", "fast"})


def unknown_name(checker, e, visible: list[str]) -> NameError_:
    """The error for a name that is not declared where it is used, saying what it more likely is:
    a name declared further down, a mistyped norm subscript, or a near miss of a visible name."""
    later = [s for s in checker.spec.statements if getattr(s, "name", None) == e.id] + [
        d for s in checker.spec.statements for d in getattr(s, "dims", ()) if getattr(d, "name", None) == e.id]
    if later and later[0].span.line > e.span.line:
        return checker.err(NameError_, f"'{e.id}' is used before its declaration at line "
                           f"{later[0].span.line}", e, "declare it above its first use")
    line = checker.src.splitlines()[e.span.line - 1] if e.span.line else ""
    if e.id.startswith("_") and line[:max(e.span.col - 1, 0)].rstrip().endswith("||"):
        return checker.err(NameError_, f"unknown norm subscript '{e.id}'", e,
                           "a norm is written ||v||, ||v||_1, ||v||_2, ||v||_0 or ||v||_inf")
    rest = line[e.span.end_col - 1:].split("#")[0].strip() if e.span.end_col else "?"
    if line.lstrip().startswith("learn") and not rest:  # the last word of a learnable's line
        return checker.err(NameError_, f"unknown name '{e.id}'", e, closest(e.id, visible) or
                           "after the initial value come only shared, per_layer, "
                           + ", ".join(BASES[:-1]) + " or " + BASES[-1])
    return checker.err(NameError_, f"unknown name '{e.id}'", e, closest(e.id, visible) or
                       "declare it (dims, operator, input, const, learn, state); names assigned in "
                       "the iterate block are local to it")
