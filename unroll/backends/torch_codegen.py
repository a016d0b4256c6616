"""Generate a standalone PyTorch module (Python source) from an unfolded graph.

`generate(unfolded)` returns `Generated`: the source text, the class name, and for every generated
line the graph node and spec location it came from, so a runtime failure in the module points back
at the `.unroll` line. The source is built only from validated identifiers and number literals.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from .._version import __version__
from ..compiler.graph import Graph, Namespace
from ..compiler.unfold import Network
from ..compiler.constraints import CONSTRAINTS
from .torch_ops import HELPERS, TORCH_OPS, literal
from .torch_runtime import BASE, BASE_WITH_OBJECTIVE, RUNTIME, attr_name
from .walk import walk

__all__ = ["Generated", "generate", "attr_name", "use_param"]

_NS = Namespace()  # for `safe` only: hands out no names
_CTX = {"dtype": "_dtype", "device": "_device"}  # dtype and device in the forward methods


def _printable(text: str) -> str:
    """A file name as docstring text: characters that could end or escape it become '?'."""
    return re.sub(r"[^A-Za-z0-9_.,:/<>()+= -]", "?", text)[:200]


@dataclass
class Generated:
    source: str
    class_name: str
    line_map: dict[int, tuple[str, str]] = field(default_factory=dict)  # line -> (node, span)


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.line_map: dict[int, tuple[str, str]] = {}

    def __call__(self, text: str, indent: int = 0, node: str | None = None, span: str = "") -> None:
        line = "    " * indent + text if text else ""
        if span:
            line += f"  # {_printable(str(span))}"
        self.lines.append(line)
        if node is not None:
            self.line_map[len(self.lines)] = (node, span)


def _lift(expr: str, rec, nd: int) -> str:
    """A batched operand with fewer per-sample dims than the result (a per-sample scalar times a
    vector) keeps its batch dim in front: [B] -> [B, 1] before broadcasting."""
    if not rec.batched or len(rec.shape) >= nd:
        return expr
    dims = ", ".join(["-1"] + ["1"] * (nd - len(rec.shape)) + [str(d) for d in rec.shape])
    return f"{expr}.reshape({dims})"


def _deaths(g: Graph, nodes: list[str], keep: set[str], layer_states: dict[str, int]
            ) -> dict[int, list[str]]:
    """For each position in `nodes`, the values whose last use it is (to `del` them there).

    A state value of layer k also lives to the end of layer k (the `upto` return and the per-layer
    output use it); values in `keep` are never deleted.
    """
    pos = {n: i for i, n in enumerate(nodes)}
    first: dict[int, int] = {}
    for i, n in enumerate(nodes):
        if g[n].layer is not None:
            first.setdefault(g[n].layer, i)
    later: dict[int, int] = {}  # k -> position of the first node of any layer after k
    nxt = len(nodes) - 1
    for k in sorted(first, reverse=True):
        later[k] = nxt
        nxt = min(nxt, first[k])

    def after(k: int) -> int:
        """Position of the first node of a layer after k (the layer-k end code comes before it)."""
        if k in later:
            return later[k]
        return min((first[j] for j in first if j > k), default=len(nodes) - 1)
    last: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for a in g[n].args:
            if a in pos:
                last[a] = max(last.get(a, -1), i)
    out: dict[int, list[str]] = {}
    for n, i in last.items():
        if n in keep or g[n].op == "number":
            continue
        if n in layer_states:  # freed after the first node of the next layer, past the layer's end
            i = max(i, after(layer_states[n]))
        out.setdefault(i, []).append(n)
    return out


class _Emit:
    """The torch side of the shared walk (backends/walk.py): a value is the name or literal it is
    written as; each node becomes one assignment line. `on_layer(k)` is called as layer k ends;
    nodes in `guarded` (needed only by aux loss terms) are computed only when `aux` is true;
    `deaths` (position -> names) frees intermediates after their last use, as a hand-written loop
    would; `bind(node, record)` writes a leaf's value and returns its name."""

    table = TORCH_OPS

    def __init__(self, w: _Writer, names: dict[str, str], ctx: dict, indent: int, on_layer=None,
                 guarded: frozenset = frozenset(), deaths: dict | None = None, bind=None):
        self.w, self.names, self.ctx, self.indent = w, names, ctx, indent
        self.on_layer, self.guarded, self.deaths, self.bind = on_layer, guarded, deaths or {}, bind
        self.current: int | None = None

    def number(self, rec) -> str:
        return literal(rec.attrs[0])

    def leaf(self, node: str, rec) -> str | None:
        return None if self.bind is None else self.bind(node, rec)

    def lift(self, expr: str, rec, nd: int) -> str:
        return _lift(expr, rec, nd)

    def emit(self, i: int, n: str, rec, expr: str) -> str:
        if self.on_layer is not None and rec.layer is not None and rec.layer != self.current:
            if rec.layer > 0:
                self.on_layer(rec.layer - 1)  # closes every earlier layer, also those with no node
            self.current = rec.layer
        line = f"{n} = {expr} if aux else None" if n in self.guarded else f"{n} = {expr}"
        self.w(line, self.indent, n, rec.span)
        dead = [d for d in self.deaths.get(i, []) if self.names.get(d) == d]
        if dead:
            self.w(f"del {', '.join(dead)}", self.indent)
        return n


def _body(w: _Writer, g: Graph, nodes, names: dict[str, str], ctx: dict[str, str], indent: int,
          on_layer=None, guarded: frozenset = frozenset(), deaths: dict | None = None,
          bind=None) -> None:
    """Write `nodes` of `g` through the shared walk, one assignment per computing node (see _Emit)."""
    low = _Emit(w, names, ctx, indent, on_layer, guarded, deaths, bind)
    walk(g, nodes, names, low)
    if on_layer is not None and low.current is not None:
        on_layer(low.current)


def generate(u: Network, class_name: str | None = None, layered: bool = False) -> Generated:
    """Python source of an `nn.Module` class computing the unfolded network `u` (with its
    layer-by-layer form for the gradient modes when `layered`, see torch_layers): the helpers and
    the fixed base class (torch_ops.HELPERS, torch_runtime.RUNTIME) verbatim, then a subclass with
    the network's tables, `__init__` and the straight-line `_run`, `_loss` and `_cost`."""
    p = u.program
    cls = _NS.safe(class_name or p.name)
    if not cls[:1].isupper():
        cls = cls[:1].upper() + cls[1:]
    w = _Writer()
    w(f'"""{cls}: {p.name} unrolled K={u.K} times.')
    w("")
    w(f"Generated by unroll {__version__} from {_printable(p.file)}; needs only torch.")
    w('"""')
    w("import torch")
    w("import torch.nn.functional as F")
    for line in HELPERS.splitlines():
        w(line)
    w("")
    w("")
    w("# How constrained learnables are stored and used (unroll's compiler/constraints.py):")
    w("# name -> (method, lo, hi, base).")
    w("_CONSTRAINTS = {")
    for name, c in CONSTRAINTS.items():
        w(f"{name!r}: ({c.method!r}, {_bound(c.lo)}, {_bound(c.hi)}, {c.base!r}),", 1)
    w("}")
    for line in RUNTIME.splitlines():
        w(line)
    w("")
    w("")
    _write_class_head(w, u, cls)
    _write_init(w, u)
    live, computing, guarded = _write_run(w, u)
    if layered:
        from .torch_layers import write_layered
        write_layered(w, u, live, computing, guarded)
    if u.loss_graph is not None:
        _write_loss(w, u)
    if u.objective_graph is not None:
        _write_cost(w, u)
    while w.lines and not w.lines[-1].strip():
        w.lines.pop()
    return Generated("\n".join(w.lines) + "\n", cls, w.line_map)


def _has_layers(u: Network) -> bool:
    return any(info.layer is not None for info in u.params.values()) or any(
        blk.tying == "per_layer" for blk in u.program.blocks.values())


def _write_class_head(w: _Writer, u: Network, cls: str) -> None:
    """The class line, its docstring and the tables the base class reads."""
    p = u.program
    base = BASE_WITH_OBJECTIVE if u.objective_graph is not None else BASE
    w(f"class {cls}({base}):")
    doc = f"The unrolled {p.name}: forward(**inputs) returns {', '.join(p.outputs)}."
    if u.objective_graph is not None:
        first = p.outputs[0]
        doc += (f" objective() gives {' + '.join(c for c, t in p.costs.items() if t.params == (first,))}"
                " after every layer.")
    w(f'"""{doc}"""', 1)
    w(f"spec_name = {p.name!r}", 1)
    w(f"K = {u.iterations}  # iterations (as compiled); layers: {u.K}", 1)
    for label, names in (("input_names", list(p.inputs)), ("target_names", list(p.targets)),
                         ("output_names", list(p.outputs)), ("operator_names", list(p.operators)),
                         ("state_names", list(p.states)),
                         ("defaulted_operators", list(p.defaulted))):
        w(f"{label} = {tuple(names)!r}", 1)
    w(f"_arguments = {tuple(_NS.safe(n) for n in p.inputs)!r}", 1)
    w(f"_layer_count = {u.K}", 1)
    w(f"_has_layers = {_has_layers(u)}", 1)
    w(f"_has_loss = {u.loss_graph is not None}", 1)
    w(f"_loss_layers = {'states' if u.loss_layers else False!r}", 1)
    copies = {n: (u.copies.get(n, u.K) if lrn.tying == "per_layer" else None)
              for n, lrn in p.learnables.items()}
    _table(w, "_learnables", [(n, attr_name(n), copies[n], lrn.constraint)
                              for n, lrn in p.learnables.items()])
    _table(w, "_param_nodes", [(node, attr_name(info.name), info.layer, info.constraint)
                               for node, info in u.params.items()])
    _table(w, "_blocks", [(n, attr_name(n), u.copies.get(n, u.K) if b.tying == "per_layer" else None)
                          for n, b in p.blocks.items()])
    w("", 1)


def _table(w: _Writer, name: str, rows: list[tuple]) -> None:
    """A class attribute holding a tuple of rows, one row a line."""
    if not rows:
        w(f"{name} = ()", 1)
        return
    w(f"{name} = (", 1)
    for row in rows:
        w(f"{row!r},", 2)
    w(")", 1)


def _write_init(w: _Writer, u: Network) -> None:
    """`__init__`: the operators as buffers, the build graph, consts, blocks and learnables."""
    p, b = u.program, u.build
    ops = list(p.operators)
    w(f"def __init__(self, {''.join(f'{_NS.safe(o)}, ' for o in ops)}dtype=torch.float32):", 1)
    w("super().__init__()", 2)
    bnames: dict[str, str] = {}
    for o in ops:
        local = _NS.safe(o)
        if p.operators[o].in_shape is not None:  # matrix-free: kept as callables, not a buffer
            w(f"object.__setattr__(self, '_linop_{local}', _linop({local}, {o!r}))", 2)
            continue
        node = next(n for n in b if b[n].op == "operator" and b[n].attrs[0] == o)
        bnames[node] = local
        dt = "dtype" if b[node].dtype == "real" else "_complex_of(dtype)"
        w(f"{local} = torch.as_tensor({local}, dtype={dt})", 2, node, b[node].span)
        w(f"self.register_buffer({attr_name(o)!r}, {local})", 2)
    _body(w, b, list(b), bnames, {"dtype": "dtype", "device": "None"}, 2)
    for name, node in u.consts.items():
        if b.number(node) is None:
            w(f"self.register_buffer({attr_name(name)!r}, {bnames[node]}.detach().clone())", 2)
    if _has_layers(u):
        w(f"self.layers = torch.nn.ModuleList(torch.nn.Module() for _ in range({u.K}))", 2)
    for name, blk in p.blocks.items():
        layers = tuple((d.kind, d.cin, d.cout, d.kernel, d.bias, d.init, d.scale)
                       for d in u.blocks[name])
        make = f"_block({layers!r}, dtype, residual={blk.residual})"
        if blk.tying == "shared":
            w(f"self.{attr_name(name)} = {make}", 2, None, str(blk.span))
        else:
            w(f"for _layer in self.layers{_upto(u, name)}:", 2)
            w(f"_layer.{attr_name(name)} = {make}", 3, None, str(blk.span))
    for name, lrn in p.learnables.items():
        init = u.inits[name]
        value = bnames[init] if init in bnames else literal(b.number(init))
        if b.number(init) is not None:
            shape = "(" + "".join(f"{d}, " for d in b[init].shape) + ")"
            value = f"_full({value}, {shape}, dtype, None)"
        raw = f"{value}.detach()"
        w(f"_init = {raw if lrn.constraint is None else f'_stored({raw}, {lrn.constraint!r})'}", 2,
          init, str(lrn.span))
        _on_each_copy(w, u, name, " = torch.nn.Parameter(_init.clone())")
    w("", 1)


def use_param(where: str, constraint: str | None) -> str:
    """The expression of a learnable as the network uses it, from its stored attribute `where`."""
    return where if constraint is None else f"_constrained({where}, {constraint!r})"


def _write_run(w: _Writer, u: Network) -> tuple[set, list, frozenset]:
    """`_run`: the unrolled iteration as straight-line code; returns (live nodes, computing nodes,
    nodes needed by aux terms only) for the layer-by-layer form."""
    p, g = u.program, u.graph
    inputs = [_NS.safe(n) for n in p.inputs]
    states = list(p.states)
    names: dict[str, str] = {}
    w(f"def _run(self, {''.join(i + ', ' for i in inputs)}upto=None, return_layers=False, "
      "aux=True):", 1)
    w('"""Run the first `upto` layers (all by default); returns the states and the per-layer '
      'outputs. Aux loss terms are computed only when `aux` (they are None otherwise)."""', 2)
    w("self._check_upto(upto)", 2)
    ref = inputs[0] if inputs else None
    w(f"_dtype, _device = {ref}.real.dtype, {ref}.device" if ref else
      "_dtype, _device = torch.get_default_dtype(), None", 2)
    live = _live(g, [n for st in u.state_nodes[1:] for n in st.values()])
    names.update({n: _NS.safe(g[n].attrs[0]) for n in g if g[n].op == "input"})

    def bind(n: str, rec) -> str:
        w(f"{n} = {_leaf_attr(u, rec, n)}", 2, n, rec.span)
        return n
    _body(w, g, [n for n in g if n in live and g[n].op in ("target", "operator", "const", "param")],
          names, _CTX, 2, bind=bind)
    w("_layers = []", 2)

    def state_tuple(k: int) -> str:
        return "(" + "".join(f"{names[u.state_nodes[k][s]]}, " for s in states) + ")"

    def end_layer(k: int) -> None:
        w("if return_layers:", 2)
        w(f"_layers.append({names[u.state_nodes[k + 1][p.outputs[0]]]} if return_layers != 'states' "
          f"else {state_tuple(k + 1)})", 3)
        if k + 1 < u.K:
            w(f"if upto == {k + 1}:", 2)
            w(f"return {state_tuple(k + 1)}, _layers", 3)

    computing = [n for n in g if n in live and g[n].op not in ("input", "target", "operator",
                                                               "const", "param")]
    main = _live(g, [st[s] for st in u.state_nodes[1:] for s in states if not p.states[s].aux])
    guarded = frozenset(n for n in computing if n not in main)
    # Make sure every layer closes even when a layer computes nothing new (e.g. x = x).
    layer_states = {n: k - 1 for k in range(1, u.K + 1) for n in u.state_nodes[k].values()}
    deaths = _deaths(g, computing, set(u.state_nodes[u.K].values()), layer_states)
    _body(w, g, computing, names, _CTX, 2, on_layer=None if not computing else _closer(u, end_layer),
          guarded=guarded, deaths=deaths)
    for s in states:
        names.setdefault(u.state_nodes[u.K][s], u.state_nodes[u.K][s])
    w(f"return {state_tuple(u.K)}, _layers", 2)
    w("", 1)
    return live, computing, guarded


def _leaf_attr(u: Network, rec, node: str) -> str:
    """A forward-graph leaf read from the module: an operator or const buffer, a learnable
    (its shared copy or its layer's) with its constraint applied, or a target (an aux term's,
    from the batch `loss` passes as `aux`)."""
    if rec.op == "target":
        return f"self._target(aux, {rec.attrs[0]!r})"
    if rec.op != "param":
        return f"self.{attr_name(rec.attrs[0])}"
    info = u.params[node]
    where = (f"self.{attr_name(info.name)}" if info.layer is None else
             f"self.layers[{info.layer}].{attr_name(info.name)}")
    return use_param(where, info.constraint)


def _write_loss(w: _Writer, u: Network) -> None:
    """`_loss`: the loss graph over the states the base class's `loss` ran."""
    states = list(u.program.states)
    w("def _loss(self, batch, _states, _all, upto):", 1)
    w('"""The loss from the states after the layers run (`_all`: after each layer, if read)."""', 2)
    w("_dtype, _device = _states[0].real.dtype, _states[0].device", 2)

    def loss_leaf(rec) -> str:
        if rec.op == "state" and len(rec.attrs) > 1:  # after layer k (the last run, if fewer)
            return f"_all[min({rec.attrs[1]}, len(_all)) - 1][{states.index(rec.attrs[0])}]"
        if rec.op == "state":
            return f"_states[{states.index(rec.attrs[0])}]"
        return f"batch[{rec.attrs[0]!r}]"
    result = _side(w, u, u.loss_graph, u.loss_node, loss_leaf,
                   f"({u.K - 1} if upto is None else upto - 1)")
    w(f"return {result}", 2)
    w("", 1)


def _write_cost(w: _Writer, u: Network) -> None:
    """`_cost`: the cost terms of the first output `_x` after layer `_k`."""
    sig = ", ".join(_NS.safe(n) for n in u.program.inputs)
    w(f"def _cost(self, _x, _k, {sig}):", 1)
    w('"""The cost terms of the first output `_x` after layer `_k` (from 0)."""', 2)
    w("_dtype, _device = _x.real.dtype, _x.device", 2)

    def cost_leaf(rec) -> str:
        return "_x" if rec.op == "state" else _NS.safe(rec.attrs[0])
    w(f"return {_side(w, u, u.objective_graph, u.objective_node, cost_leaf, '_k')}", 2)
    w("", 1)


def _side(w: _Writer, u: Network, g: Graph, result: str, leaf, layer: str = "0") -> str:
    """Write a side graph (loss, objective) through the shared walk: states, targets and inputs
    bound by `leaf(record)`; operators, consts and learnables read from the module (a per-layer
    learnable from layer `layer`, a Python expression)."""
    def bind(n: str, rec) -> str:
        text = leaf(rec) if rec.op in ("state", "target", "input") else _side_attr(u, rec, layer)
        if text != n:
            w(f"{n} = {text}", 2)
        return n
    names: dict[str, str] = {}
    live = _live(g, [result])
    _body(w, g, [n for n in g if n in live], names, _CTX, 2, bind=bind)
    return names[result]


def _side_attr(u: Network, rec, layer: str) -> str:
    """An operator, const or learnable of a side graph, read from the module."""
    where = "self." + attr_name(rec.attrs[0])
    if rec.op != "param":
        return where
    lrn = u.program.learnables[rec.attrs[0]]
    if lrn.tying == "per_layer":
        n_copies = u.copies.get(rec.attrs[0], u.K)  # fewer when `finally` does not use it
        at = layer if n_copies == u.K else f"min({layer}, {n_copies - 1})"
        where = f"self.layers[{at}].{attr_name(rec.attrs[0])}"
    return use_param(where, lrn.constraint)


def _bound(v: float | None) -> str:
    return "None" if v is None else literal(v)


def _on_each_copy(w: _Writer, u: Network, name: str, rest: str) -> None:
    """Emit `<copy of learnable name><rest>` for its one shared copy or for each layer's copy."""
    if u.program.learnables[name].tying == "shared":
        w(f"self.{attr_name(name)}{rest}", 2)
    else:
        w(f"for _layer in self.layers{_upto(u, name)}:", 2)
        w(f"_layer.{attr_name(name)}{rest}", 3)


def _upto(u: Network, name: str) -> str:
    """The slice of self.layers holding copies of a per-layer learnable or block (all of them
    unless the `finally` layer does not use it)."""
    n = u.copies.get(name, u.K)
    return "" if n == u.K else f"[:{n}]"


def _live(g: Graph, roots: list[str]) -> set[str]:
    """Nodes that some root depends on (dead code is not generated)."""
    live, stack = set(), list(roots)
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(g[n].args)
    return live


def _closer(u: Network, end_layer):
    """Calls end_layer for every layer in order, including layers that created no node."""
    done = {"k": -1}

    def on_layer(k: int) -> None:
        while done["k"] < k:
            done["k"] += 1
            end_layer(done["k"])
    return on_layer
