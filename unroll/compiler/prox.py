"""The prox table: proximal operators of cost terms, keyed on the term's form.

A term is `coefficient · atom(x)` with the atom applied to the variable itself; `PROX` maps the
atom's op to its `OpInfo.prox` (a builder (al, v, t·coefficient, atom) → Value, and its form).
A sum of one separable term and one indicator of a box (or x ≥ 0) is the projection of the
separable prox, exact coordinate-wise.
"""
from __future__ import annotations

from ..errors import DerivationError
from . import algebra as al
from .ir import Value
from .ops import OPS
from .scope import Scope

__all__ = ["PROX", "SUPPORTED", "prox_of"]


# atom op -> its proximal operator (`OpInfo.prox`): build(al, v, s = t·coefficient, atom), form, result
PROX = {name: o.prox for name, o in OPS.items() if o.prox is not None}
_SEPARABLE = tuple(name for name, p in PROX.items() if p.role == "separable")
_PROJECTIONS = tuple(name for name, p in PROX.items() if p.role == "projection")

SUPPORTED = [f"{p.form} → {p.result}" for p in PROX.values()] + [
    "λ‖x‖₁ + μ/2‖x‖² → soft(v, tλ) / (1 + tμ)",
    "separable term + nonneg(x) or box(x, lo, hi) → the projection of its prox"]


def _split(term: Value, p: Value) -> tuple[Value, Value] | None:
    """`c · atom(p)` → (c, atom); None when the term has another form."""
    if term.op in PROX and term.args and term.args[0] is p and not any(
            al.depends(a, p) for a in term.args[1:]):
        return al.num(1.0), term
    if term.op == "mul":
        for c, atom in (term.args, term.args[::-1]):
            if not al.depends(c, p) and c.shape == ():
                got = _split(atom, p)
                if got is not None:
                    return al.mul(c, got[0]), got[1]
    if term.op == "div" and not al.depends(term.args[1], p):
        got = _split(term.args[0], p)
        if got is not None:
            return al.div(got[0], term.args[1]), got[1]
    return None


def _addends(v: Value) -> list[Value]:
    return _addends(v.args[0]) + _addends(v.args[1]) if v.op == "add" else [v]


def prox_of(scope: Scope, call, names: list[str], parts: list[Value], p: Value, v: Value,
            t: Value) -> Value:
    """prox_{t·Σ parts}(v) from the table, or a `DerivationError` listing the supported forms."""
    terms: list[tuple[Value, Value]] = []
    for name, part in zip(names, parts):
        for a in _addends(part):
            got = _split(a, p)
            if got is None:
                raise scope.err(DerivationError, f"no proximal operator for cost {name} in the "
                                "table", call, "supported forms: " + "; ".join(SUPPORTED))
            terms.append(got)
    ops = sorted(a.op for _, a in terms)
    by_op = {a.op: (c, a) for c, a in terms}
    if len(by_op) != len(terms):
        raise scope.err(DerivationError, "combine equal terms into one (e.g. (a + b)‖x‖₁)", call)
    proj = [o for o in ops if o in _PROJECTIONS]
    rest = [o for o in ops if o not in _PROJECTIONS]
    if len(proj) > 1 or (len(rest) > 1 and rest != ["norm1", "sqnorm"]) or (
            proj and rest and rest[0] not in _SEPARABLE):
        raise scope.err(DerivationError, f"no proximal operator for the sum {' + '.join(names)} "
                        "in the table", call, "supported forms: " + "; ".join(SUPPORTED))
    if rest == ["norm1", "sqnorm"]:  # elastic net
        (c1, a1), (c2, a2) = by_op["norm1"], by_op["sqnorm"]
        out = PROX["sqnorm"].build(al, PROX["norm1"].build(al, v, al.mul(t, c1), a1), al.mul(t, c2), a2)
    elif rest:
        c, a = by_op[rest[0]]
        out = PROX[rest[0]].build(al, v, al.mul(t, c), a)
    else:
        out = v
    if proj:
        c, a = by_op[proj[0]]
        out = PROX[proj[0]].build(al, out, t, a)
    return out
