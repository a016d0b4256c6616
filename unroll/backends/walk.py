"""The one graph walk both backends share: each node in order, numbers and leaves through the
backend's leaf binding, every other node through its lowering table (one entry per op name, the
same names as compiler.ops.OPS), with batched operands of element-wise ops lifted first.

The torch backend lowers to Python source (a value is the name or literal it is written as); the
NumPy oracle to float64 arrays. Each supplies a `Lowering`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol

from ..compiler.graph import Graph, NodeRecord
from ..compiler.ops import OPS

__all__ = ["Lowering", "LEAF_KINDS", "GRAPH_OPS", "LIFTED_RULES", "walk"]

# Leaves a backend binds itself (from the module, the inputs or the states), never lowered by a table.
LEAF_KINDS = frozenset({"input", "target", "operator", "const", "param", "state"})
# Values the graph builds itself besides the ops of compiler.ops.OPS (folded zeros, the identity,
# a value broadcast to a declared shape): the lowering tables have entries for them too.
GRAPH_OPS = frozenset({"zeros", "identity", "expand"})
# Shape rules whose operands broadcast entry by entry, so a per-sample scalar operand is lifted.
LIFTED_RULES = ("elementwise", "soft_ss")


class Lowering(Protocol):
    """What a backend supplies to the walk."""

    table: dict[str, Callable[[list, NodeRecord, list[NodeRecord], Any], Any]]
    ctx: Any  # passed to every table entry (dtype/device text; block weights)

    def number(self, rec: NodeRecord) -> Any: ...
    def leaf(self, node: str, rec: NodeRecord) -> Any: ...  # None: not bound (unused here)
    def lift(self, value: Any, rec: NodeRecord, nd: int) -> Any: ...
    def emit(self, i: int, node: str, rec: NodeRecord, value: Any) -> Any: ...


def walk(g: Graph, nodes: Iterable[str], values: dict[str, Any], low: Lowering) -> dict[str, Any]:
    """Lower `nodes` of `g` in order into `values` (node -> value; nodes already there are kept)."""
    for i, n in enumerate(nodes):
        if n in values:
            continue
        rec = g[n]
        if rec.op == "number":
            values[n] = low.number(rec)
            continue
        if rec.op in LEAF_KINDS:
            got = low.leaf(n, rec)
            if got is not None:
                values[n] = got
            continue
        args = [values[a] for a in rec.args]
        arg_recs = [g[a] for a in rec.args]
        if rec.batched and rec.op in OPS and OPS[rec.op].rule in LIFTED_RULES:
            args = [low.lift(v, s, len(rec.shape)) for v, s in zip(args, arg_recs)]
        values[n] = low.emit(i, n, rec, low.table[rec.op](args, rec, arg_recs, low.ctx))
    return values
