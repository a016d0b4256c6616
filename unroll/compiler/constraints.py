"""The constraint table: one entry per constraint a `learn` can carry, as written in the spec.

`positive` and `unit` are *projected*: the parameter is stored as its value, the forward pass uses it
as is (clamped into the set with an identity gradient, so a custom loop that forgets to project still
gets a feasible value), and `model.project_()` (called by the trainer after every optimizer step)
clamps it back into the set. Adam then moves it as fast as an unconstrained parameter, as in
hand-written LISTA. `positive(softplus)` and `unit(sigmoid)` keep the reparametrisations: stored raw,
used through softplus / sigmoid (always feasible, but a small value moves much slower under Adam).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Constraint", "CONSTRAINTS", "BASES", "POSITIVE_FLOOR", "UNIT_MARGIN"]

POSITIVE_FLOOR = 1e-12  # projected `positive` keeps values >= this (strictly positive, divisible)
UNIT_MARGIN = 1e-6  # projected `unit` keeps values in [margin, 1 - margin] (float32-representable)


@dataclass(frozen=True)
class Constraint:
    """How a constrained learnable is stored and used: `method` is project, softplus or sigmoid;
    `lo`/`hi` bound a projection (None: unbounded on that side); `base` names the set (the word
    the grammar accepts), `domain` the open interval an initial value must lie in."""

    name: str
    base: str
    method: str
    lo: float | None
    hi: float | None
    text: str
    domain: tuple[float | None, float | None] = (None, None)

    def outside(self, v):
        """Where `v` (a number or an array) is not inside `domain`: True/False, or a bool array."""
        lo, hi = self.domain
        out = v != v  # NaN is never inside
        if lo is not None:
            out = out | (v <= lo)
        if hi is not None:
            out = out | (v >= hi)
        return out


CONSTRAINTS: dict[str, Constraint] = {c.name: c for c in (
    Constraint("positive", "positive", "project", POSITIVE_FLOOR, None,
               f"> 0: stored as its value, projected onto [{POSITIVE_FLOOR:g}, inf) after each step",
               (0.0, None)),
    Constraint("positive(softplus)", "positive", "softplus", None, None,
               "> 0: stored raw, used as softplus(raw)", (0.0, None)),
    Constraint("unit", "unit", "project", UNIT_MARGIN, 1 - UNIT_MARGIN,
               f"in (0, 1): stored as its value, projected onto [{UNIT_MARGIN:g}, 1 - {UNIT_MARGIN:g}]"
               " after each step", (0.0, 1.0)),
    Constraint("unit(sigmoid)", "unit", "sigmoid", None, None,
               "in (0, 1): stored raw, used as sigmoid(raw)", (0.0, 1.0)),
)}

BASES = tuple(dict.fromkeys(c.base for c in CONSTRAINTS.values()))
