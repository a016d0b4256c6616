"""Readable infix text for checked IR values: `to_text(value)` gives `soft(W_e y + S x, theta)`.

Table-driven like sympy's printers, over the facts in `ops`: an op's `infix` symbol and
`precedence`, its `text` form (norms, x[1:3], cat([a, b], 0), leaves) and its spec spelling
(`call`); anything else prints as `op(args)`. Sub-values that carry a name (consts, earlier local
equations) print as that name, so equations read as they were written.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from .algebra import walk
from .ir import Program, Value, fmt_shape
from .ops import OPS, node_info

__all__ = ["to_text", "equation_lines", "shared_lines", "shape_text", "PRECEDENCE"]

# Binding strength (`OpInfo.precedence`): higher binds tighter. Leaves and calls are atoms.
ATOM = 100
PRECEDENCE = {name: o.precedence for name, o in OPS.items() if o.precedence is not None}


def _form(form, v: Value, args: list[str]) -> str:
    """An `OpInfo.text` form filled in: a format string over the arguments, or a function."""
    return form.format(*args) if isinstance(form, str) else form(v, args)


def _leaf(v: Value) -> str:
    o = node_info(v.op)
    if o is not None and o.text is not None:
        return _form(o.text, v, [])
    return str(v.attrs[0]) if v.attrs else v.op


def _prec(v: Value) -> int:
    if not v.args or v.op not in PRECEDENCE:
        return ATOM
    return PRECEDENCE[v.op]


class _Printer:
    """One printing pass; `names` maps sub-values (by identity) to the names they print as."""

    def __init__(self, names: Mapping[int, str] | None = None):
        self.names = dict(names or {})

    def text(self, v: Value, top: bool = False) -> tuple[str, int]:
        """(text, precedence) of `v`."""
        if not top:
            if id(v) in self.names:
                return self.names[id(v)], ATOM
            if v.name:
                return v.name, ATOM
        if not v.args:
            if top and v.op == "number":  # a named number (`const lam = 0.1`) shows its value
                return f"{v.attrs[0]:g}", ATOM
            return _leaf(v), ATOM
        o = node_info(v.op)
        if o is not None and o.text is not None:
            return _form(o.text, v, [self.text(a)[0] for a in v.args]), ATOM
        if v.op == "linop_apply":  # a matrix-free operator reads as a product: A x, A'(A x - y)
            arg = self.wrap(v.args[0], PRECEDENCE["matmul"], strict=True)
            op = str(v.attrs[0]) + ("'" if v.attrs[1] else "")
            return op + ("" if arg.startswith("(") else " ") + arg, PRECEDENCE["matmul"]
        if v.op == "transpose":
            return self.wrap(v.args[0], PRECEDENCE["transpose"], strict=True) + "'", PRECEDENCE["transpose"]
        if v.op == "neg":
            return "-" + self.wrap(v.args[0], PRECEDENCE["neg"], strict=True), PRECEDENCE["neg"]
        if o is not None and o.infix is not None and len(v.args) == 2:
            p = PRECEDENCE[v.op]
            left_strict = v.op == "pow"  # a^b^c is a^(b^c): the left needs brackets at equal strength
            left = self.wrap(v.args[0], p, strict=left_strict)
            right = self.wrap(v.args[1], p, strict=v.op != "pow")
            if v.op == "matmul" and right.startswith("("):
                return left + right, p
            return left + o.infix + right, p
        name = (o.call if o is not None else None) or v.op
        args = [self.text(a)[0] for a in v.args]
        args += [_attr_text(a) for a in v.attrs]
        return f"{name}({', '.join(args)})", ATOM

    def wrap(self, v: Value, outer: int, strict: bool) -> str:
        """Text of an operand, bracketed when it binds looser than its operator (or equally, if strict)."""
        text, p = self.text(v)
        if p < outer or (strict and p == outer):
            return f"({text})"
        return text


def _attr_text(a: object) -> str:
    return f"{a:g}" if isinstance(a, float) else str(a)


def to_text(value: Value, names: Mapping[int, str] | None = None) -> str:
    """Infix text of a checked value, e.g. `soft(W_e y + S x, theta)`.

    Sub-values that carry a `name` (consts, earlier equations) print as that name; `names` maps
    further sub-values, by `id`, to names.
    """
    return _Printer(names).text(value, top=True)[0]


def equation_lines(program: Program) -> list[str]:
    """`name = expression` for each update equation of one iteration, as the spec wrote them;
    a sub-expression used more than once (a CG solve, a shared residual) prints once, by name."""
    reserved = set(program.spans) | set(program.states) | {n for n, _ in program.equations}
    aux = {n for n, st in program.states.items() if st.aux}
    return ["aux " + line if line.split(" = ", 1)[0] in aux else line
            for line in shared_lines(program.equations, reserved)]


def _uses(items: list[tuple[str, Value]]) -> dict[int, int]:
    """How many users each sub-value has over all the items' DAGs (each user counted once)."""
    uses: dict[int, int] = {}
    seen: set[tuple] = set()
    for _, root in items:
        for n in walk(root):
            key = (n.op, n.attrs, tuple(id(a) for a in n.args))  # `x = x_new` copies a node
            if key in seen:
                continue
            seen.add(key)
            for a in n.args:
                uses[id(a)] = uses.get(id(a), 0) + 1
    return uses


def shared_lines(items: list[tuple[str, Value]], reserved: set[str] | frozenset = frozenset()
                 ) -> list[str]:
    """`name = text` for each (name, value); every composite sub-value with more than one user
    (and a composite argument) is printed once as `t1 = ...` before its first use, so the text
    grows with the DAG, not with the tree it unfolds to."""
    uses = _uses(items)
    names: dict[int, str] = {}
    counter = iter(range(1, 1 << 30))
    lines: list[str] = []
    earlier: dict[tuple, str] = {}
    for name, v in items:
        for n in walk(v):
            if (n is v or id(n) in names or n.name or uses.get(id(n), 0) < 2
                    or not any(a.args for a in n.args)):
                continue
            tmp = next(f"t{i}" for i in counter if f"t{i}" not in reserved)
            lines.append(f"{tmp} = {_Printer(names).text(n, top=True)[0]}")
            names[id(n)] = tmp
        key = (v.op, v.attrs, tuple(id(a) for a in v.args))
        rhs = earlier.get(key) if v.args else None
        lines.append(f"{name} = {rhs or _Printer(names).text(v, top=True)[0]}")
        earlier.setdefault(key, name)
    return lines


def shape_text(shape: Iterable) -> str:
    """`[n, m]` (or `[]` for a scalar)."""
    return fmt_shape(tuple(shape))
