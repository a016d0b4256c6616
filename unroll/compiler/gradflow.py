"""Honest gradients: which learnables the loss cannot train because every path from the loss to
them crosses an op whose derivative is zero there (`hard`'s threshold, `sign`, `||.||_0`,
indicators; `OpInfo.zero_grad` says which arguments). Works on the checked IR, so it needs no sizes.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from .ir import Program, Value
from .ops import OPS

__all__ = ["NoGradient", "GradientWarning", "no_gradient", "REMEDIES"]

# What to write instead of an op that cuts the gradient (`OpInfo.remedy`).
REMEDIES = {name: o.remedy for name, o in OPS.items() if o.remedy}


class GradientWarning(SpecError):
    kind = "warning"


@dataclass(frozen=True)
class NoGradient:
    """Learnable `name` gets no gradient from the loss; `cut` is the op on its path (None: it does
    not reach the loss at all)."""

    name: str
    cut: Value | None

    def message(self) -> str:
        if self.cut is None:
            return f"learn {self.name} gets no gradient: the loss does not depend on it"
        pos = ", ".join(str(i + 1) for i in OPS[self.cut.op].zero_grad)
        return (f"learn {self.name} gets no gradient: it reaches the loss only through "
                f"{self.cut.op} (argument {pos}), whose derivative there is zero")

    def warning(self, program: Program, error: bool = False) -> SpecError:
        """The finding as a located warning (or error), at the cutting op."""
        span = self.cut.span if self.cut is not None else program.learnables[self.name].span
        hint = REMEDIES.get(self.cut.op) if self.cut is not None else None
        cls = SpecError if error else GradientWarning
        return cls(self.message(), span, hint, program.source)


def _walk(roots: list[Value], program: Program) -> tuple[set[str], set[str], dict[str, Value]]:
    """(states and learnables reached differentiably, the same reached at all, first cut per name)
    from `roots`, following state updates and initial values."""
    diff_names: set[str] = set()
    any_names: set[str] = set()
    cut_of: dict[str, Value] = {}
    seen: set[tuple[int, bool]] = set()
    stack = [(r, True, None) for r in roots]
    while stack:
        v, live, cut = stack.pop()
        if (id(v), live) in seen:
            continue
        seen.add((id(v), live))
        if v.op in ("param", "state", "state_at") and v.attrs:  # state_at: x[k] in the loss
            name = v.attrs[0]
            key = f"{'state' if v.op == 'state_at' else v.op}:{name}"
            if live:
                diff_names.add(key)
            elif key not in any_names and cut is not None:
                cut_of.setdefault(key, cut)
            any_names.add(key)
            if v.op in ("state", "state_at") and name in program.states:
                for nxt in (program.updates.get(name), program.states[name].init):
                    if nxt is not None:
                        stack.append((nxt, live, cut))
            continue
        zero = OPS[v.op].zero_grad if v.op in OPS else ()
        for i, a in enumerate(v.args):
            if live and i in zero:
                stack.append((a, False, v))
            else:
                stack.append((a, live, cut))
    return diff_names, any_names, cut_of


def no_gradient(program: Program) -> list[NoGradient]:
    """The learnables the loss cannot train (empty without a loss), in declaration order."""
    if program.loss is None:
        return []
    diff, reached, cut_of = _walk([program.loss], program)
    out = []
    for name in program.learnables:
        key = f"param:{name}"
        if key not in diff:
            out.append(NoGradient(name, cut_of.get(key) if key in reached else None))
    return out
