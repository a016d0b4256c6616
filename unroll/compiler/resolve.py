"""The resolve pass: the names a spec declares, which of them each context may read, and the sizes
and shapes written in declarations. `Resolver` holds the tables the later passes fill and read."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..dsl import ast
from ..errors import NameError_, ShapeError, Span, SpecError, closest
from . import linop as _linop
from .constraints import BASES
from .ir import BlockDef, CostTerm, Learnable, StateVar, Tensor, Value, fmt_shape
from .names import reserved_reason, unknown_name
from .ops import IDENT
from .sizes import shapes_may_match, size_add, size_mul, size_sub

__all__ = ["Resolver", "Symbol", "CONTEXTS", "IDENT", "MODIFIERS_TYING", "source_text"]


MODIFIERS_TYING = ("shared", "per_layer")
MODIFIERS_CONSTRAINT = BASES


@dataclass(frozen=True)
class Symbol:
    """A declared name: its kind and the leaf value that refers to it."""

    kind: str
    value: Value | None
    span: Span


# Which kinds of names each context may read (the rest give a named error).
CONTEXTS = {
    "const": {"dim", "operator", "const"},
    "default": {"dim", "operator"},
    "learn": {"dim", "operator", "const"},
    "state": {"dim", "operator", "const", "learn", "input", "state"},
    "cost": {"dim", "operator", "const", "learn", "input", "param", "cost"},
    "body": {"dim", "operator", "const", "learn", "input", "state", "local", "index", "cost",
             "block"},
    "loss": {"dim", "operator", "const", "learn", "input", "state", "target", "aux", "cost"},
}
CONTEXTS["aux"] = CONTEXTS["body"] | {"target"}  # an aux term (a per-layer loss term) sees targets
_WHY = {
    "const": "consts are computed once when the model is built, from dims, operators and consts",
    "learn": "initial values are computed when the model is built, from dims, operators and consts",
    "default": "an operator's default is computed from dims and the operators declared above it",
    "state": "initial states are computed from inputs, operators, consts, learnables and earlier states",
    "cost": "cost terms see their parameters, inputs, operators, consts and learnables",
    "body": "targets are only visible to the loss and to aux terms (aux name = ...)",
    "aux": "an aux term sees what the iterate body sees, and the targets",
    "loss": "the loss sees final states, targets, inputs and aux terms",
}


def source_text(source: str, span: Span | None) -> str:
    """The spec text under `span` (its first line when it spans several); "?" when unknown."""
    if span is None or not span.line:
        return "?"
    lines = source.splitlines()
    if span.line > len(lines):
        return "?"
    if span.end_line == span.line and span.end_col > span.col:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    return lines[span.line - 1][span.col - 1:].strip()


class Resolver:
    """Scopes and names: the declared symbols, their tables, and the context rules for reading them."""

    def __init__(self, spec: ast.Spec, K: int | None = None):
        self.spec = spec
        self.src = spec.source
        self.K_override = K
        self.symbols: dict[str, Symbol] = {}
        self.dims: dict[str, int | None] = {}
        self.tensors: dict[str, Tensor] = {}
        self.consts: dict[str, Value] = {}
        self.learnables: dict[str, Learnable] = {}
        self.states: dict[str, StateVar] = {}
        self.costs: dict[str, ast.Cost] = {}
        self.cost_terms: dict[str, CostTerm] = {}
        self.blocks: dict[str, BlockDef] = {}

    # ---- errors ----
    def err(self, cls, msg: str, node_or_span, hint: str | None = None) -> SpecError:
        span = node_or_span if isinstance(node_or_span, Span) else node_or_span.span
        return cls(msg, span, hint, self.src)

    def describe(self, v: Value, node: ast.Node) -> str:
        text = source_text(self.src, node.span)
        out = f"`{text}` is {fmt_shape(v.shape)}"
        leaves, stack, seen = [], [v], set()
        while stack and len(leaves) < 2:  # the declarations the shape comes from
            n = stack.pop(0)
            if n.op in ("operator", "input", "target", "param", "state", "const") and n.attrs:
                if n.attrs[0] not in seen:
                    seen.add(n.attrs[0])
                    leaves.append(n)
            else:
                stack.extend(n.args)
        where = []
        for n in leaves:
            sym = self.symbols.get(n.attrs[0])
            if sym is not None:
                kind = "learn" if sym.kind == "learn" else sym.kind
                where.append(f"{kind} {n.attrs[0]} : {fmt_shape(n.shape)}, line {sym.span.line}")
        return out + (f" (from {'; '.join(where)})" if where else "")

    # ---- declarations ----
    def declare(self, name: str, kind: str, value: Value | None, node: ast.Node) -> None:
        why = reserved_reason(name, kind)
        if why:
            raise self.err(NameError_, why, node, "rename it")
        if name in ("k", "I"):
            raise self.err(NameError_, f"'{name}' is reserved", node,
                           "k is the layer index and I the identity; pick another name")
        if name in self.symbols:
            prev = self.symbols[name]
            raise self.err(NameError_, f"'{name}' is already declared as {prev.kind} "
                           f"at line {prev.span.line}", node, "each name is declared once")
        self.symbols[name] = Symbol(kind, value, node.span)

    def shape_of(self, dims: tuple[ast.Dim, ...]) -> tuple:
        out = []
        for d in dims:
            size = self.dim_size(d)
            if isinstance(size, int) and size <= 0:
                raise self.err(ShapeError, "a dimension must be positive", d, "sizes are integers >= 1")
            out.append(size)
        return tuple(out)

    def dim_size(self, d: ast.Dim | str):
        """A parsed size (a dim name, an integer or `2*c`-style expression) as int, name or Size;
        a dim with a size in the spec (`dims N = 1089`) is that number from here on."""
        if isinstance(d, str):
            d = ast.Dim(Span(self.spec.file), d)
        if isinstance(d.value, tuple):
            op, a, b = d.value
            f = {"add": size_add, "sub": size_sub, "mul": size_mul}[op]
            return f(self.dim_size(a), self.dim_size(b))
        if isinstance(d.value, str):
            if d.value not in self.dims:
                raise self.err(NameError_, f"unknown dim '{d.value}'", d,
                               closest(d.value, self.dims) or "declare it with `dims`")
            return self.dims.get(d.value) or d.value
        return d.value

    def fit_shape(self, v: Value, shape: tuple, node: ast.Node, what: str) -> Value:
        """Check that an init value fits a declared shape (scalars fill, I takes the size)."""
        _linop.reject(self, v, node)
        if v.shape == () or (v.shape != IDENT and shapes_may_match(v.shape, shape)):
            return v  # sizes only the bound dims can compare are checked by unfold
        if v.shape == IDENT and len(shape) == 2 and shape[0] == shape[1]:
            return replace(v, shape=shape)
        if v.shape != IDENT and len(v.shape) < len(shape) and all(
                a == b or a == 1 for a, b in zip(reversed(v.shape), reversed(shape))):
            return v  # broadcast along the leading axes when the model is built
        raise self.err(ShapeError, f"{what} is declared {fmt_shape(shape)} but its value has shape "
                       f"{fmt_shape(v.shape)}", node, self.describe(v, node))

    def name(self, e: ast.Name, ctx: str, env: dict[str, Value]) -> Value:
        """The value a name stands for in context `ctx` (locals in `env` first), or a `NameError_`."""
        if e.id in env:
            return env[e.id]
        if e.id == "I":
            return Value("identity", (), (), IDENT, False, "real", e.span)
        if e.id == "k":
            if "index" not in CONTEXTS[ctx]:
                raise self.err(NameError_, "the layer index k is only defined inside iterate", e,
                               "use k in the iterate block or in sum_k(...)")
            return Value("index", (), (), (), False, "real", e.span)
        sym = self.symbols.get(e.id)
        if sym is None:
            visible = [n for n, s in self.symbols.items() if s.kind in CONTEXTS[ctx]] + list(env)
            raise unknown_name(self, e, visible)
        if sym.kind not in CONTEXTS[ctx]:
            raise self.err(NameError_, f"{sym.kind} '{e.id}' cannot be used here", e, _WHY[ctx])
        if sym.value is None:
            raise self.err(NameError_, f"{sym.kind} '{e.id}' is not a value", e,
                           f"call it: {e.id}(...)")
        return replace(sym.value, span=e.span)

    # ---- the `Scope` that derivation reads (scope.py) ----
    @property
    def statements(self) -> tuple[ast.Node, ...]:
        return self.spec.statements

    def leaf(self, name: str) -> Value | None:
        """The leaf value declared `name` stands for; None when there is none."""
        sym = self.symbols.get(name)
        return None if sym is None else sym.value

    def state(self, name: str) -> Value | None:
        """The leaf of state `name`; None when it is not a state."""
        return self.symbols[name].value if name in self.states else None
