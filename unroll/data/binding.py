"""Bind a task's roles (operator, measurement, target) to the names a spec declares."""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["TaskBindingError", "spec_names", "bind_single_roles"]

_KINDS = ("operator_names", "input_names", "target_names")


class TaskBindingError(ValueError):
    """A task's roles cannot be mapped onto a spec's declared names."""


def spec_names(model_or_names: Any) -> dict[str, tuple[str, ...]]:
    """Read ``operator_names``/``input_names``/``target_names`` from a model or a mapping."""
    out: dict[str, tuple[str, ...]] = {}
    for kind in _KINDS:
        if isinstance(model_or_names, Mapping):
            value = model_or_names.get(kind)
        else:
            value = getattr(model_or_names, kind, None)
        if value is None:
            raise TaskBindingError(
                f"cannot bind a task to {type(model_or_names).__name__}: it has no '{kind}' "
                "(expected a compiled model or a mapping with operator_names, input_names, target_names)"
            )
        if isinstance(value, str):
            value = (value,)
        out[kind] = tuple(value)
    return out


def bind_single_roles(model_or_names: Any, task_name: str, roles: Mapping[str, str]) -> dict[str, str]:
    """Map roles {role: kind} onto the spec, requiring exactly one name of each kind used.

    Returns {role: spec name}; raises TaskBindingError naming what the spec declares otherwise.
    """
    names = spec_names(model_or_names)
    words = {"operator_names": "operator", "input_names": "input", "target_names": "target"}
    bound: dict[str, str] = {}
    problems = []
    for role, kind in roles.items():
        declared = names[kind]
        if len(declared) != 1:
            problems.append(
                f"{task_name} needs exactly one {words[kind]} (its {role}) but the spec declares "
                f"{len(declared)}: {', '.join(declared) if declared else 'none'}"
            )
        else:
            bound[role] = declared[0]
    if problems:
        raise TaskBindingError("; ".join(problems))
    return bound
