"""The prox table: proximal operators of cost terms, keyed on the term's form.

A term is `coefficient · atom(x)` with the atom applied to the variable itself (or to a reshape of
it: `norm21(reshape(x, [G, s]))`, whose prox reshapes there and back); `PROX` maps the
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
    "separable term + nonneg(x) or box(x, lo, hi) → the projection of its prox",
    "any of these on reshape(x, [G, s]) → taken in that shape and reshaped back",
    "one of these on x − c (a centre c) → c + its prox at v − c"]


def _split(term: Value, p: Value) -> tuple[Value, Value] | None:
    """`c · atom(p)` → (c, atom); None when the term has another form."""
    if term.op in PROX and term.args and (_is_var(term.args[0], p) or _centre(
            term.args[0], p) is not None) and not any(al.depends(a, p) for a in term.args[1:]):
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


def _is_var(a: Value, p: Value) -> bool:
    """`a` is the variable, or the variable reshaped (`reshape(x, [G, s])`)."""
    return a is p or (a.op == "reshape" and _is_var(a.args[0], p))


def _centre(arg: Value, p: Value) -> Value | None:
    """c when an atom is applied to `p - c` (−c for `p + c`, `c + p`), c free of p; else None."""
    if arg.op not in ("add", "sub") or arg.shape != p.shape:
        return None
    a, b = arg.args
    if a is p and not al.depends(b, p):
        return b if arg.op == "sub" else al.neg(b)
    if arg.op == "add" and b is p and not al.depends(a, p):
        return al.neg(a)
    return None


def _build(op: str, v: Value, s: Value, atom: Value) -> Value:
    """The prox of s·atom at v. A reshape R between the atom and the variable keeps every entry
    (it is orthogonal), so prox_{g∘R}(v) = R⁻¹ prox_g(R v): v goes to the atom's shape and back."""
    shape = atom.args[0].shape
    if atom.args[0].op != "reshape" or shape == v.shape:
        return PROX[op].build(al, v, s, atom)
    inner = al.mk("reshape", v, attrs=(shape,), shape=shape)
    out = PROX[op].build(al, inner, s, atom)
    return al.mk("reshape", out, attrs=(v.shape,), shape=v.shape)


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
    centred = [(c, a) for c, a in terms if not _is_var(a.args[0], p)]
    if centred:  # prox of g(x - c) at v is c + prox_g(v - c)
        if len(terms) > 1:
            raise scope.err(DerivationError, "a term with a centre (g(x - c)) must be the only "
                            "term of a prox", call, "write the prox of the sum by hand")
        (c, a), = centred
        shift = _centre(a.args[0], p)
        return al.add(_build(a.op, al.sub(v, shift), al.mul(t, c), a), shift)
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
        out = _build("sqnorm", _build("norm1", v, al.mul(t, c1), a1), al.mul(t, c2), a2)
    elif rest:
        c, a = by_op[rest[0]]
        out = _build(rest[0], v, al.mul(t, c), a)
    else:
        out = v
    if proj:
        c, a = by_op[proj[0]]
        out = _build(proj[0], out, t, a)
    return out
