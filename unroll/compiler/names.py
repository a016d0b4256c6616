"""The names a spec may not use, because the generated PyTorch module uses them for itself.

Generated code keeps its own names in a reserved namespace: every internal local, helper and
method starts with '_', or is one of `graph.RESERVED` (which spec names are renamed around, with a
trailing '_'). So a spec name may not start with '_' or be a Python keyword, and an input may not
be one of `graph.RESERVED` (inputs are forward()'s keyword arguments and cannot be renamed).
tests/test_names.py checks every name in the scope of generated modules against these rules.
"""
from __future__ import annotations

import keyword

from .graph import RESERVED

__all__ = ["reserved_reason"]


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
