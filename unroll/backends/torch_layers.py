"""Generate the layer-by-layer form of a compiled module, which the gradient modes run.

Besides the straight-line `_run`, a module built for a gradient mode other than ``unroll`` gets
`_prologue(aux, inputs...)` (operators, consts, learnables and loop-invariant values, as a dict by
graph node), one method `_layer_{k}(aux, _dtype, _device, *values)` per layer returning the values
later layers read, and the tables `_layer_io` (argument and result nodes per layer) and
`_state_nodes` (the state nodes after each layer; `_state_numbers` holds those folded to numbers). `backends.grad_modes` calls them.
"""
from __future__ import annotations

from ..compiler.graph import Namespace
from ..compiler.unfold import Network
from .torch_ops import literal

__all__ = ["write_layered"]


def write_layered(w, u: Network, live: set, computing: list, guarded: frozenset) -> None:
    """Append the `_prologue`, `_layer_k` methods and their tables to the class being written."""
    from .torch_codegen import _body, _leaf_attr  # noqa: PLC0415 - torch_codegen imports us lazily
    g, p = u.graph, u.program
    ctx = {"dtype": "_dtype", "device": "_device"}
    numbers = {n: literal(g[n].attrs[0]) for n in g if g[n].op == "number"}
    inputs = [Namespace().safe(n) for n in p.inputs]
    w(f"def _prologue(self, aux, {''.join(i + ', ' for i in inputs)}):", 1)
    w('"""Operators, consts, learnables (constraints applied) and loop-invariant values by node."""', 2)
    ref = inputs[0] if inputs else None
    w(f"_dtype, _device = {ref}.real.dtype, {ref}.device" if ref else
      "_dtype, _device = torch.get_default_dtype(), None", 2)
    names, defined = dict(numbers), []
    for n in g:
        rec = g[n]
        if n not in live:
            continue
        if rec.op == "input":
            names[n] = Namespace().safe(rec.attrs[0])
            defined.append(n)
        elif rec.op in ("operator", "const", "param", "target"):  # read as _run reads them
            names[n] = n
            defined.append(n)
            w(f"{n} = {_leaf_attr(u, rec, n)}", 2)
    prologue = [n for n in computing if g[n].layer is None and n not in numbers]
    _body(w, g, prologue, names, ctx, 2, guarded=guarded)
    defined += prologue
    w("return {" + ", ".join(f"{n!r}: {names[n]}" for n in defined) + "}", 2)
    w("", 1)

    layer_of = {n: g[n].layer for n in computing}
    outside: set[str] = {n for st in u.state_nodes[1:] for n in st.values()}
    for n in computing:
        outside.update(a for a in g[n].args if layer_of.get(a) != layer_of[n])
    io = []
    for k in range(u.K):
        nodes = [n for n in computing if layer_of[n] == k and n not in numbers]
        inside = set(nodes)
        args: list[str] = []
        for n in nodes:
            args.extend(a for a in g[n].args if a not in inside and a not in numbers and a not in args)
        outs = [n for n in nodes if n in outside]
        w(f"def _layer_{k}(self, aux, _dtype, _device, {''.join(a + ', ' for a in args)}):", 1)
        names = dict(numbers)
        names.update({a: a for a in args})
        _body(w, g, nodes, names, ctx, 2, guarded=guarded)
        w(f"return ({''.join(names[o] + ', ' for o in outs)})", 2)
        w("", 1)
        io.append((tuple(args), tuple(outs)))
    w(f"_layer_io = {tuple(io)!r}", 1)
    states = list(p.states)
    w(f"_state_nodes = {tuple(tuple(st[s] for s in states) for st in u.state_nodes)!r}", 1)
    constant = {n: float(g[n].attrs[0]) for st in u.state_nodes for n in st.values() if n in numbers}
    w(f"_state_numbers = {constant!r}", 1)
    w("", 1)
