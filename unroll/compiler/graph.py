"""The dataflow graph: a `networkx.DiGraph` with one frozen record per node, changed only through
`Graph.add`, which hands out unique Python-safe names, shares equal nodes (common subexpressions)
and folds constants and zeros through a small rewrite table. `lint` checks the invariants and every
node's shape against its op's rule; `str(graph)` is a table of the nodes.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import networkx as nx

from ..errors import Span
from .ir import LEAF_OPS, fmt_shape
from .ops import OPS, ZERO_PRESERVING, Mismatch, infer_shape

__all__ = ["Graph", "NodeRecord", "Namespace", "GraphLintError", "PHASES", "tabulate"]

# When a node runs: once at build time, per forward call, in the loss, or in the objective.
PHASES = ("build", "forward", "loss", "objective")

# Names the generated code uses for itself; spec names that collide get a trailing underscore.
RESERVED = frozenset(set(keyword.kwlist) | {
    "self", "torch", "F", "np", "math", "nn", "super", "range", "len", "float", "int", "tuple",
    "list", "dict", "print", "upto", "return_layers", "batch", "layers", "inputs", "outputs",
    "dtype", "device", "soft", "hard", "hard_ste", "hard_smooth", "plf", "object", "type", "min",
    "max", "sum", "abs",
    "aux", "states", "enumerate", "isinstance", "getattr", "hasattr", "zip", "bool", "complex",
    "slice", "ValueError", "TypeError", "NotImplementedError"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class GraphLintError(AssertionError):
    pass


class Namespace:
    """Hands out unique, Python-safe names: `theta_3`, `matmul_2`, `matmul_2_1`, ..."""

    def __init__(self):
        self.used: set[str] = set()
        self._next: dict[str, int] = {}

    def safe(self, name: str) -> str:
        if not _IDENT.match(name):
            name = re.sub(r"\W", "_", name) or "v"
            if name[0].isdigit():
                name = "v" + name
        return name + "_" if name in RESERVED else name

    def fresh(self, hint: str) -> str:
        base = self.safe(hint)
        name, i = base, self._next.get(base, 1)
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self._next[base] = i
        self.used.add(name)
        return name


@dataclass(frozen=True)
class NodeRecord:
    """What a node computes: op, op attributes, concrete shape (per sample), dtype, whether it has
    a batch dimension, the layer that created it (None for prologue), its spec span, a label, its
    argument nodes, its own name, its phase (PHASES) and the spec name it was computed for."""

    op: str
    attrs: tuple
    shape: tuple
    dtype: str
    batched: bool
    layer: int | None
    span: str
    label: str
    args: tuple = field(default=())
    name: str = ""
    phase: str = "forward"
    spec_name: str | None = None


class Graph:
    """A dataflow graph in creation (= topological) order over a `networkx.DiGraph`."""

    def __init__(self, namespace: Namespace | None = None, phase: str = "forward"):
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.nx = nx.DiGraph()
        self.ns = namespace or Namespace()
        self.phase = phase
        self.order: list[str] = []
        self._keys: dict[tuple, str] = {}

    def __repr__(self) -> str:
        return f"<Graph {self.phase}: {len(self)} nodes, {self.nx.number_of_edges()} edges>"

    def __str__(self) -> str:
        return tabulate([self[n] for n in self.order])

    # ---- reading ----
    def __getitem__(self, node: str) -> NodeRecord:
        # NOTE: networkx keeps node attributes in the dict `_node`; reading it directly skips
        # building a NodeView per lookup, the hottest call of unfolding and code generation.
        return self.nx._node[node]["record"]

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter(self.order)

    def users(self, node: str) -> list[str]:
        return list(self.nx.successors(node))

    def number(self, node: str) -> float | None:
        r = self[node]
        return r.attrs[0] if r.op == "number" else None

    def is_zero(self, node: str) -> bool:
        r = self[node]
        return r.op == "zeros" or (r.op == "number" and r.attrs[0] == 0)

    # ---- building ----
    def add(self, op: str, args: tuple[str, ...], attrs: tuple, shape: tuple, dtype: str,
            batched: bool, layer: int | None, span: Span | None, hint: str | None = None,
            label: str | None = None, share: bool = True, spec_name: str | None = None) -> str:
        """Add a node (or return an equal existing one, or a folded replacement)."""
        folded = self._fold(op, args, attrs, shape, dtype, batched, layer, span)
        if folded is not None:
            return folded
        key = (op, attrs, args, shape, dtype, batched)
        if share and key in self._keys:
            return self._keys[key]
        name = self.ns.fresh(hint or (f"{op}_{layer}" if layer is not None else op))
        rec = NodeRecord(op, attrs, tuple(shape), dtype, batched, layer,
                         str(span) if span else "", label or self._label(op, attrs, args), tuple(args),
                         name, self.phase, spec_name)
        attrs_nx = dict(record=rec, op=op, shape=fmt_shape(shape), dtype=dtype,
                        layer=-1 if layer is None else layer, span=rec.span, label=rec.label)
        self.nx.add_node(name, **attrs_nx)
        for pos, a in enumerate(args):
            self.nx.add_edge(a, name, pos=pos)
        self.order.append(name)
        if share:
            self._keys[key] = name
        return name

    def _label(self, op: str, attrs: tuple, args: tuple) -> str:
        if op == "number":
            return f"{attrs[0]:g}"
        if op in ("block", "block_t"):
            return str(attrs[0]) + ("'" if op == "block_t" else "")
        if attrs and op in LEAF_OPS:
            return str(attrs[0])
        return op

    def _fold(self, op, args, attrs, shape, dtype, batched, layer, span) -> str | None:
        """The rewrite table: numbers fold, zeros propagate, x+0, x*1 and friends disappear."""
        if not args:
            return None
        info = OPS.get(op)
        nums = [self.number(a) for a in args]
        if info is not None and info.number is not None and all(n is not None for n in nums):
            try:
                val = float(info.number(*nums))
            except (ValueError, ZeroDivisionError, OverflowError):
                return None
            return self.add("number", (), (val,), (), "real", False, None, span)
        zero = [self.is_zero(a) for a in args]

        def zeros() -> str:
            return self.add("zeros", (), (), shape, dtype, False, None, span)

        def same(a: str) -> str | None:
            return a if tuple(self[a].shape) == tuple(shape) and self[a].dtype == dtype else None

        if op == "add" and any(zero):
            return same(args[1] if zero[0] else args[0])
        if op == "sub" and zero[1]:
            return same(args[0])
        if op == "sub" and zero[0]:
            return self.add("neg", (args[1],), (), shape, dtype, batched, layer, span)
        if op in ("mul", "matmul") and any(zero):
            return zeros()
        if op in ("div", "transpose") and zero[0]:
            return zeros()
        if op in ZERO_PRESERVING and zero[0]:
            return zeros()
        ones = [n == 1.0 or self[a].op == "ones" for a, n in zip(args, nums)]
        if op == "mul" and any(ones):
            return same(args[1] if ones[0] else args[0])
        if op == "div" and ones[1]:
            return same(args[0])
        return None

    # ---- checking ----
    def lint(self) -> None:
        """Check invariants: acyclic, every node has a record, args exist and come first, names are
        safe, shapes are concrete and agree with the op's shape rule (compiler/ops.py)."""
        if not nx.is_directed_acyclic_graph(self.nx):
            raise GraphLintError("graph has a cycle")
        seen: set[str] = set()
        for n in self.order:
            rec = self[n]
            if rec.op not in OPS and rec.op not in LEAF_OPS and rec.op not in _EXTRA_OPS:
                raise GraphLintError(f"node {n}: unknown op {rec.op!r}")
            for a in rec.args:
                if a not in seen:
                    raise GraphLintError(f"node {n}: argument {a} is not defined before it")
            if not _IDENT.match(n) or n in RESERVED:
                raise GraphLintError(f"node {n}: not a safe Python name")
            if any(not isinstance(d, int) for d in rec.shape):
                raise GraphLintError(f"node {n}: shape {rec.shape} is not concrete")
            want = expected_shape(rec, [self[a] for a in rec.args])
            if want is not None and want != tuple(rec.shape):
                raise GraphLintError(f"node {n} ({rec.op} at {rec.span or '?'}): shape "
                                     f"{fmt_shape(rec.shape)}, but its arguments "
                                     f"{', '.join(fmt_shape(self[a].shape) for a in rec.args)} give "
                                     f"{fmt_shape(want)}")
            seen.add(n)


_EXTRA_OPS = frozenset({"expand"})


_MISMATCH = ("mismatch",)


def expected_shape(rec: NodeRecord, args: list[NodeRecord]) -> tuple | None:
    """The shape `rec`'s op rule (`ops.infer_shape`) gives for its arguments' shapes (None for ops
    whose shape comes from their attributes); a shape that cannot be right when the rule rejects them."""
    info = OPS.get(rec.op)
    if info is None or not args:
        return None
    if not info.arity[0] <= len(args) <= info.arity[1]:
        return _MISMATCH
    got = infer_shape(rec.op, [tuple(a.shape) for a in args])
    return _MISMATCH if isinstance(got, Mismatch) else got


_COLUMNS = ("phase", "layer", "name", "op", "args", "shape", "dtype", "spec", "span")


def tabulate(records: list[NodeRecord]) -> str:
    """Nodes as a plain-text table (one row per node, as torch.fx's print_tabular)."""
    rows = [_COLUMNS]
    for r in records:
        shape = ("B, " if r.batched and r.shape else "B" if r.batched else "") + ", ".join(map(str, r.shape))
        what = r.label if r.label != r.op else (r.spec_name or "")
        rows.append((r.phase, "-" if r.layer is None else str(r.layer), r.name, r.op,
                     ", ".join(r.args), f"[{shape}]", r.dtype, what, r.span))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
