"""Does a spec's iteration qualify for implicit differentiation (``grad="implicit"``)?

It does when every layer applies the same map x <- T(x; y, params): every learnable and block is
shared, the body never reads the layer index ``k``, and no ``aux`` state accumulates a per-layer loss
term (the loss then depends on the fixed point only). ``implicit_problem`` returns the located reason
when it does not.
"""
from __future__ import annotations

from ..errors import SpecError
from .ir import Program, Value

__all__ = ["implicit_problem"]

_WHY = "grad='implicit' differentiates the fixed point of one map shared by every layer"


def _index_use(v: Value, seen: set[int]) -> Value | None:
    """The first use of the layer index k inside `v`, if any."""
    if id(v) in seen:
        return None
    seen.add(id(v))
    if v.op == "index":
        return v
    for a in v.args:
        hit = _index_use(a, seen)
        if hit is not None:
            return hit
    return None


def implicit_problem(program: Program, K: int | None = None) -> SpecError | None:
    """None if `program` can use grad='implicit', else a SpecError located at the reason."""
    src = program.source
    for name, lrn in program.learnables.items():
        if lrn.tying != "shared":
            return SpecError(f"learn {name} is {lrn.tying}: each layer is a different map, so there is "
                             "no fixed point to differentiate", lrn.span,
                             f"{_WHY}; make it shared, or use grad='checkpoint'", src)
    for name, blk in program.blocks.items():
        if blk.tying != "shared":
            return SpecError(f"block {name} is {blk.tying}: each layer is a different map", blk.span,
                             f"{_WHY}; make it shared, or use grad='checkpoint'", src)
    for name, st in program.states.items():
        if st.aux:
            return SpecError(f"aux state {name} sums a term over every layer, which the fixed point "
                             "alone does not determine", st.span,
                             f"{_WHY}; drop the aux term or use grad='checkpoint'", src)
    final = getattr(program, "final", ())
    if final:
        return SpecError(f"'finally {', '.join(final)}' adds a last layer unlike the others",
                         program.states[final[0]].span, f"{_WHY}; use grad='checkpoint'", src)
    seen: set[int] = set()
    for name, v in program.updates.items():
        hit = _index_use(v, seen)
        if hit is not None:
            return SpecError(f"the update of {name} reads the layer index k, so layers differ",
                             hit.span or program.states[name].span,
                             f"{_WHY}; use grad='checkpoint' for schedules in k", src)
    if K is not None and K < 2:
        return SpecError(f"grad='implicit' needs K >= 2 (got {K})", None,
                         "K is the most iterations the forward pass may take", src)
    return None
