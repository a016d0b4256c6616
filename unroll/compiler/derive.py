"""Symbolic derivation hooks: spec calls (grad, prox, argmin) that the compiler expands into
primitive ops before building the graph. Each entry takes (checker, call, ctx, env) -> Value.
"""
from __future__ import annotations

__all__ = ["DERIVED"]

DERIVED: dict = {}
