"""Bind dims to sizes and unfold the checked iteration K times into a `Network`.

`unfold(program, dims, K)` returns a `Network`: its nodes in four phases, each a `Graph`: build
(consts and initial values of the learnables, computed once when a model is built), forward
(prologue and K layers), loss and objective. `print(net)` lists every node. Shared learnables are one
node used by every layer; per-layer ones are K nodes named `theta_0 … theta_{K-1}`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..errors import ShapeError, SpecError
from ..limits import MAX_DIM, MAX_ELEMENTS, MAX_K
from .algebra import walk
from .blocks import concrete_layers
from .graph import Graph, Namespace, NodeRecord, tabulate
from .ir import Program, Value, fmt_shape
from .ops import OPS, Mismatch, infer_shape
from .sizes import Size, size_value

__all__ = ["Network", "Unfolded", "ParamInfo", "bind_dims", "unfold", "default_graph"]


@dataclass(frozen=True)
class ParamInfo:
    """A learnable's node in the forward graph: its spec name, layer (None if shared), constraint."""

    node: str
    name: str
    layer: int | None
    shape: tuple
    constraint: str | None


@dataclass
class Network:
    """The unfolded network: what the backends lower and what `unroll graph` draws.

    Its nodes live in four graphs, one per phase: `build` (run once when a model is built),
    `graph` (the forward pass: prologue and K layers; `graph.nx` is its networkx.DiGraph),
    `loss_graph` and `objective_graph` (None when the spec has none). Tables join them by name:
    `consts`/`inits` (build nodes), `params` and `state_nodes` (forward nodes), `loss_states`.
    `print(net)` lists every node with its phase, layer, op, arguments, shape and spec span.
    """

    program: Program
    dims: dict[str, int]
    K: int
    build: Graph
    graph: Graph
    loss_graph: Graph | None
    consts: dict[str, str] = field(default_factory=dict)          # const name -> build node
    inits: dict[str, str] = field(default_factory=dict)           # learnable -> build node
    params: dict[str, ParamInfo] = field(default_factory=dict)    # forward node -> info
    state_nodes: list[dict[str, str]] = field(default_factory=list)  # [k] -> state -> node
    loss_node: str | None = None
    loss_states: dict[str, str] = field(default_factory=dict)     # state -> loss-graph leaf
    objective_graph: Graph | None = None  # the cost terms of the first output, per layer
    objective_node: str | None = None
    copies: dict[str, int] = field(default_factory=dict)  # per-layer learnable/block -> copies
    blocks: dict = field(default_factory=dict)  # block name -> its layers with concrete sizes
    loss_layers: bool = False  # whether the loss reads states after layers before the last

    @property
    def iterations(self) -> int:
        """Full iterations; K counts one more layer when the spec ends with `finally`."""
        return self.K - (1 if self.program.final else 0)

    @property
    def nx(self):
        """The forward graph as a networkx.DiGraph (nodes carry op, shape, dtype, layer, span, label)."""
        return self.graph.nx

    @property
    def graphs(self) -> dict[str, Graph]:
        """The graph of each phase the network has, in run order (build, forward, loss, objective)."""
        got = {"build": self.build, "forward": self.graph, "loss": self.loss_graph,
               "objective": self.objective_graph}
        return {k: g for k, g in got.items() if g is not None}

    def nodes(self, phase: str | None = None) -> list[NodeRecord]:
        """Every node's record (each knows its name and phase), in run order; or one phase's."""
        return [g[n] for ph, g in self.graphs.items() if phase in (None, ph) for n in g]

    def lint(self) -> None:
        """Lint every phase's graph (invariants and shapes against the op rules)."""
        for g in self.graphs.values():
            g.lint()

    def summary(self) -> str:
        """One line: the spec, K, dims and the node count of each phase."""
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items()) or "no dims"
        counts = ", ".join(f"{ph} {len(g)}" for ph, g in self.graphs.items())
        return f"Network {self.program.name}: K={self.K} layers, {dims}; nodes: {counts}"

    def print_tabular(self, phase: str | None = None) -> None:
        """Print the nodes as a table (all phases, or one)."""
        print(tabulate(self.nodes(phase)))

    def __str__(self) -> str:
        outs = ", ".join(f"{o} = {self.output_nodes()[i]}" for i, o in enumerate(self.program.outputs))
        tail = [f"outputs: {outs}"]
        if self.loss_node is not None:
            tail.append(f"loss: {self.loss_node}")
        if self.objective_node is not None:
            tail.append(f"objective (per layer): {self.objective_node}")
        return "\n".join([self.summary(), tabulate(self.nodes())] + tail)

    def __repr__(self) -> str:
        return f"<{self.summary()}>"

    def output_nodes(self, k: int | None = None) -> list[str]:
        """Forward nodes of the outputs after layer k (default: the last)."""
        st = self.state_nodes[self.K if k is None else k]
        return [st[o] for o in self.program.outputs]


Unfolded = Network  # the earlier name, still used by callers


def bind_dims(program: Program, shapes: Mapping[str, tuple], given: Mapping[str, int] | None = None
              ) -> dict[str, int]:
    """Sizes for every dim: from the spec's defaults, `given`, then the shapes of the operators."""
    dims: dict[str, int] = {n: v for n, v in program.dims.items() if v is not None}
    origin = {n: "the spec" for n in dims}
    for n, v in (given or {}).items():
        if n not in program.dims:
            raise SpecError(f"unknown dim '{n}' given at compile time", None,
                            f"the spec declares dims {', '.join(program.dims) or '(none)'}")
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_DIM:
            raise SpecError(f"dim {n} = {v!r}: a size is an integer from 1 to {MAX_DIM:,}")
        if program.dims[n] is not None and int(v) != program.dims[n]:
            raise ShapeError(f"dim {n} is fixed to {program.dims[n]} by the spec; {n} = {v} was given",
                             program.spans.get(n) if hasattr(program, "spans") else None,
                             f"leave {n} out, or change the spec's `dims {n} = ...`", program.source)
        dims[n], origin[n] = int(v), "the command line"
    for name, t in program.operators.items():
        if name not in shapes:
            continue
        got = tuple(shapes[name])
        if any(not isinstance(g, (int, np.integer)) or isinstance(g, bool) for g in got):
            raise ShapeError(f"operator {name} must be an array, got {type(shapes[name]).__name__} "
                             f"{str(got)[:60]}", t.span, None, program.source)
        if len(got) != len(t.shape):
            raise ShapeError(f"operator {name} is declared {fmt_shape(t.shape)} but was given an "
                             f"array of shape {got}", t.span, None, program.source)
        for d, g in zip(t.shape, got):
            if isinstance(d, Size):
                continue  # `2*c`-style sizes are checked once every dim is bound
            if isinstance(d, int):
                ok = d == g
            elif d in dims:
                ok = dims[d] == g
            else:
                dims[d], origin[d], ok = int(g), f"operator {name}", True
            if not ok:
                want = d if isinstance(d, int) else f"{d} = {dims[d]} (from {origin[d]})"
                raise ShapeError(f"operator {name} was given shape {got}, which does not fit "
                                 f"{fmt_shape(t.shape)} with {want}", t.span, None, program.source)
    for name, t in program.operators.items():
        got = tuple(shapes.get(name, ()))
        if 0 in got or any(g > MAX_DIM for g in got):
            raise ShapeError(f"operator {name} has shape {got}: every axis needs 1 to {MAX_DIM:,} "
                             "entries", t.span, None, program.source)
    missing = [n for n in program.dims if n not in dims]
    if missing:
        raise SpecError(f"the size of dim {', '.join(missing)} is unknown", None,
                        "give the operators, or the sizes: --dim " + " --dim ".join(
                            f"{n}=..." for n in missing))
    return dims


class _Instantiator:
    """Copies checked `Value` DAGs into a `Graph`, with leaves looked up in `leaves`."""

    def __init__(self, graph: Graph, dims: dict[str, int], program: Program):
        self.g, self.dims, self.program = graph, dims, program
        self._variant: dict[int, bool] = {}
        self.k: int | None = None   # the layer sum_k is at, in the loss
        self.K = program.K
        self.layer_leaf = None      # (state, layer) -> leaf node, in the loss

    def state_at(self, v: Value, leaves: dict, layer, memo) -> str:
        """The leaf for state v.attrs[0] after the layer its index evaluates to (1..K)."""
        i = self.g.number(self(v.args[0], leaves, layer, memo))
        if self.layer_leaf is None or i is None or i != int(i) or not 1 <= i <= self.K:
            what = "is not a whole number" if i is None or i != int(i) else f"is {int(i)}"
            raise ShapeError(f"the layer index of {v.attrs[0]}[...] {what}; the loss reads the "
                             f"layers 1..K (K = {self.K})", v.span, None, self.program.source)
        return self.layer_leaf(v.attrs[0], int(i))

    def concrete(self, shape: tuple, span) -> tuple:
        if shape == ("*",):
            raise ShapeError("the size of I is unknown here", span, "use I in a sum or product "
                             "with a square matrix", self.program.source)
        out = tuple(size_value(d, self.dims) for d in shape)
        if any(d < 1 for d in out):
            raise ShapeError(f"the shape {fmt_shape(shape)} has a size below 1 with "
                             f"{', '.join(f'{k}={v}' for k, v in self.dims.items())}", span, None,
                             self.program.source)
        return out

    def __call__(self, v: Value, leaves: dict[tuple, str], layer: int | None,
                 memo: dict[int, str]) -> str:
        got = memo.get(id(v))
        if got is not None:
            return got
        g = self.g
        if v.op == "number":
            out = g.add("number", (), (float(v.attrs[0]),), (), "real", False, None, v.span)
        elif v.op == "dim":
            out = g.add("number", (), (float(size_value(v.attrs[0], self.dims)),), (), "real", False,
                        None, v.span)
        elif v.op == "index":
            k = layer if self.k is None else self.k
            out = g.add("number", (), (float(k),), (), "real", False, None, v.span)
        elif v.op == "count":
            out = g.add("number", (), (float(self.K),), (), "real", False, None, v.span)
        elif v.op == "sum_layers":
            out = None
            for k in range(1, self.K + 1):
                self.k = k
                term = self(v.args[0], leaves, layer, {})
                out = term if out is None else g.add("add", (out, term), (), (), "real",
                                                     g[term].batched or g[out].batched, None, v.span)
            self.k = None
        elif v.op == "state_at":
            out = self.state_at(v, leaves, layer, memo)
        elif v.op in ("grid", "dct_filters", "diff_filters", "ones", "zeros"):
            out = g.add(v.op, (), tuple(v.attrs), self.concrete(v.shape, v.span), "real", False, None,
                        v.span, v.op)
        elif v.op == "identity":
            shape = self.concrete(v.shape, v.span)
            out = g.add("identity", (), (), shape, "real", False, None, v.span, "I")
        elif v.op == "linop_norm":
            t = self.program.operators[v.attrs[0]]
            out = g.add("linop_norm", (), (v.attrs[0], self.concrete(t.in_shape, t.span)), (), "real",
                        False, None, v.span, f"norm2_{v.attrs[0]}", f"norm2({v.attrs[0]})")
        elif v.op == "linop":
            raise SpecError(f"matrix-free operator {v.attrs[0]} is not a value", v.span,
                            "apply it (A x, A' y) or measure it (norm2(A)); it is never formed as a "
                            "matrix", self.program.source)
        elif not v.args:
            key = (v.op,) + tuple(v.attrs)
            if key not in leaves:
                raise SpecError(f"{v.op} '{v.attrs[0]}' cannot be used here", v.span, None,
                                self.program.source)
            out = leaves[key]
        else:
            args = tuple(self(a, leaves, layer, memo) for a in v.args)
            # NOTE: a node belongs to layer k when it depends on the state, the index k or a
            # per-layer learnable; anything else is loop-invariant and goes to the prologue.
            own = layer if layer is not None and self.variant(v, leaves) else None
            hint = None
            if v.name:
                hint = f"{v.name}_{layer}" if own is not None else v.name
            attrs, label = tuple(v.attrs), None
            shape = self.concrete(v.shape, v.span)
            if v.op in ("block", "block_t"):
                per_layer = self.program.blocks[v.attrs[0]].tying == "per_layer"
                attrs = (v.attrs[0], layer) if per_layer else (v.attrs[0], None)
                label = f"{v.attrs[0]}[{layer}]" if per_layer else v.attrs[0]
                label += "'" if v.op == "block_t" else ""
            elif v.op in ("slice", "embed"):
                attrs = (tuple((it[0],) + tuple(size_value(b, self.dims) for b in it[1:])
                               for it in v.attrs[0]),) + tuple(
                    self.concrete(s, v.span) for s in v.attrs[1:])  # embed: the source shape
            elif v.op == "reshape":
                attrs = (shape,)
            self.check_sizes(v, args, shape, layer)
            # batched only if an argument still is (a folded zero state has no batch axis)
            batched = v.batched and (not args or any(g[a].batched for a in args))
            out = g.add(v.op, args, attrs, shape, v.dtype, batched, own, v.span, hint, label,
                        spec_name=v.name)
        memo[id(v)] = out
        return out

    def check_sizes(self, v: Value, args: tuple[str, ...], shape: tuple, layer: int | None) -> None:
        """What the checker could not decide before the sizes were known: a reshape keeps its
        entry count, and a level or fraction (`OpInfo.unit_args`) that folded to a number for this
        layer (a schedule in k) lies in [0, 1]."""
        if v.op == "reshape" and _size(self.g[args[0]].shape) != _size(shape):
            raise ShapeError(f"cannot reshape {fmt_shape(self.g[args[0]].shape)} to "
                             f"{fmt_shape(shape)}: the sizes differ", v.span, None, self.program.source)
        info = OPS.get(v.op)
        want = infer_shape(v.op, [self.g[a].shape for a in args]) if info is not None else None
        if isinstance(want, Mismatch) or (want is not None and want != shape):
            why = want.message if isinstance(want, Mismatch) else (
                f"{v.op} of {', '.join(fmt_shape(self.g[a].shape) for a in args)} is "
                f"{fmt_shape(want)}, not {fmt_shape(shape)}")
            raise ShapeError(f"{why} with {self.sizes()}", v.span, "the spec's shapes "
                             f"{', '.join(fmt_shape(a.shape) for a in v.args)} could only be "
                             "compared once the dims were bound", self.program.source)
        for i in info.unit_args if info is not None else ():
            n = self.g.number(args[i])
            if n is not None and not 0.0 <= n <= 1.0:
                where = f" in layer {layer}" if layer is not None else ""
                raise SpecError(f"argument {i + 1} of {info.call or v.op} is {n:g}{where}, outside "
                                "[0, 1]", v.span, info.doc, self.program.source)

    def sizes(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.dims.items()) or "no dims"

    def expect(self, node: str, shape: tuple, span, what: str) -> None:
        """A located error unless the value `node` fits `shape` (equal, a scalar, or broadcast
        along leading axes): what the checker left to the bound sizes (`[m]` and `4*G`)."""
        got = tuple(self.g[node].shape)
        if got == tuple(shape) or got == () or (len(got) < len(shape) and all(
                a == b or a == 1 for a, b in zip(reversed(got), reversed(shape)))):
            return
        raise ShapeError(f"{what} is {fmt_shape(shape)} but its value is {fmt_shape(got)} with "
                         f"{self.sizes()}", span, "the sizes differ once the dims are bound",
                         self.program.source)

    def variant(self, v: Value, leaves: dict[tuple, str]) -> bool:
        """Whether `v` changes from layer to layer (state, index k or per-layer learnable)."""
        got = self._variant.get(id(v))
        if got is None:
            if v.op in ("state", "index"):
                got = True
            elif v.op == "param":
                got = self.g[leaves[("param",) + tuple(v.attrs)]].layer is not None
            elif v.op in ("block", "block_t") and self.program.blocks[v.attrs[0]].tying == "per_layer":
                got = True
            else:
                got = any(self.variant(a, leaves) for a in v.args)
            self._variant[id(v)] = got
        return got

    def fill(self, node: str, shape: tuple, dtype: str, span, what: str = "the declared value") -> str:
        """Broadcast a scalar value to a declared shape (zeros stay symbolic zeros)."""
        rec = self.g[node]
        if tuple(rec.shape) == tuple(shape):
            return node
        self.expect(node, shape, span, what)
        if self.g.is_zero(node):
            return self.g.add("zeros", (), (), shape, dtype, False, None, span)
        return self.g.add("expand", (node,), (), shape, dtype, rec.batched, rec.layer, span)


def _size(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def unfold(program: Program, dims: dict[str, int], K: int | None = None) -> Network:
    """Unfold `program` K times (default: the spec's K) with concrete `dims`; a `finally` line
    adds one more layer (so the result has K + 1 layers) updating only the states it names.
    Each pass (build, forward, loss, objective) lints its graph when it is done."""
    K = program.K if K is None else K
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)):
        raise SpecError(f"K must be an integer, got {K!r}")
    if K < 1:
        raise SpecError(f"K must be at least 1, got {K}")
    if K > MAX_K:
        raise SpecError(f"K must be at most {MAX_K:,}, got {K}")
    K = int(K)
    layers = K + (1 if program.final else 0)
    out = Network(program, dict(dims), layers, Graph(Namespace(), "build"), Graph(Namespace()), None)
    out.blocks = {n: concrete_layers(b, dims, program.source) for n, b in program.blocks.items()}
    in_final = _final_uses(program)
    for name, blk in program.blocks.items():
        if blk.tying == "per_layer":
            out.copies[name] = K + (name in in_final)
    _build_pass(out)
    out.build.lint()
    leaves, per_layer = _forward_leaves(out, K, in_final)
    _layers_pass(out, K, leaves, per_layer)
    out.graph.lint()
    if program.loss is not None:
        out.loss_graph, out.loss_node, out.loss_states = _side_graph(program, dims, leaves, out,
                                                                     program.loss, "loss")
    objective = _objective(program)
    if objective is not None:
        out.objective_graph, out.objective_node, _ = _side_graph(program, dims, leaves, out,
                                                                 objective, "objective")
    for g in (out.build, out.graph):
        for n in g:
            size = math.prod(g[n].shape)
            if size > MAX_ELEMENTS:
                raise ShapeError(f"{g[n].label} would have shape {fmt_shape(g[n].shape)} = {size:,} entries, "
                                 f"over the limit of {MAX_ELEMENTS:,} per tensor (at {g[n].span})",
                                 None, "use smaller sizes", program.source)
    return out


def default_graph(program: Program, dims: dict[str, int], missing: list[str]
                  ) -> tuple[Graph, dict[str, str]]:
    """A build-time graph computing the defaults (`operator W : [n, m] = expr`) of the operators
    in `missing` from the others (its `operator` leaves); returns it and each default's node."""
    g = Graph(Namespace(), "build")
    inst = _Instantiator(g, dims, program)
    leaves: dict[tuple, str] = {}
    out: dict[str, str] = {}
    memo: dict[int, str] = {}
    for name, t in program.operators.items():  # declaration order: a default reads those above it
        shape = inst.concrete(t.shape, t.span)
        if name in missing:
            node = inst.fill(inst(t.default, leaves, None, memo), shape, t.dtype, t.span,
                             f"operator {name}")
            out[name] = node
        elif t.in_shape is None:
            node = g.add("operator", (), (name,), shape, t.dtype, False, None, t.span, name, name,
                         spec_name=name)
        else:
            continue
        leaves[("operator", name)] = node
    g.lint()
    return g, out


def _build_pass(out: Network) -> None:
    """Build time: operators are leaves, consts and initial values are computed once."""
    program, build = out.program, out.build
    bi = _Instantiator(build, out.dims, program)
    bleaves: dict[tuple, str] = {}
    for name, t in program.operators.items():
        if t.in_shape is not None:  # matrix-free: no tensor, applied by name
            continue
        bleaves[("operator", name)] = build.add("operator", (), (name,), bi.concrete(t.shape, t.span),
                                                t.dtype, False, None, t.span, name, name, spec_name=name)
    bmemo: dict[int, str] = {}
    for name, v in program.consts.items():
        node = bi(v, bleaves, None, bmemo)
        out.consts[name] = node
        bleaves[("const", name)] = node
    for name, lrn in program.learnables.items():
        node = bi(lrn.init, bleaves, None, bmemo)
        out.inits[name] = bi.fill(node, bi.concrete(lrn.shape, lrn.span), "real", lrn.span,
                                  f"learn {name}")


def _forward_leaves(out: Network, K: int, in_final: set[str]
                    ) -> tuple[dict[tuple, str], dict[str, list[str]]]:
    """The forward graph's leaves, in declaration order: inputs, operators, consts (not folded to
    numbers) and learnables (one shared node, or one per layer). Returns them by (kind, name)
    and the per-layer copies by learnable."""
    program, graph, build = out.program, out.graph, out.build
    fi = _Instantiator(graph, out.dims, program)
    leaves: dict[tuple, str] = {}
    for name, t in program.inputs.items():
        leaves[("input", name)] = graph.add("input", (), (name,), fi.concrete(t.shape, t.span),
                                            t.dtype, True, None, t.span, name, name, spec_name=name)
    for name in _body_targets(program):  # read by aux terms; bound from the batch by loss()
        t = program.targets[name]
        leaves[("target", name)] = graph.add("target", (), (name,), fi.concrete(t.shape, t.span),
                                             t.dtype, True, None, t.span, name, name, spec_name=name)
    for name, t in program.operators.items():
        if t.in_shape is not None:
            continue
        leaves[("operator", name)] = graph.add("operator", (), (name,), fi.concrete(t.shape, t.span),
                                               t.dtype, False, None, t.span, name, name, spec_name=name)
    for name, v in program.consts.items():
        if build.number(out.consts[name]) is None:
            shape = build[out.consts[name]].shape
            leaves[("const", name)] = graph.add("const", (), (name,), shape, v.dtype, False, None,
                                                v.span, name, name, spec_name=name)
    per_layer: dict[str, list[str]] = {}
    for name, lrn in program.learnables.items():
        shape = fi.concrete(lrn.shape, lrn.span)
        if lrn.tying == "shared":
            node = graph.add("param", (), (name,), shape, "real", False, None, lrn.span, name, name,
                             spec_name=name)
            leaves[("param", name)] = node
            out.params[node] = ParamInfo(node, name, None, shape, lrn.constraint)
        else:
            per_layer[name] = []
            out.copies[name] = K + (name in in_final)
            for k in range(out.copies[name]):
                node = graph.add("param", (), (name, k), shape, "real", False, k, lrn.span,
                                 f"{name}_{k}", f"{name}[{k}]", spec_name=name)
                per_layer[name].append(node)
                out.params[node] = ParamInfo(node, name, k, shape, lrn.constraint)
    return leaves, per_layer


def _body_targets(program: Program) -> list[str]:
    """The targets the iteration reads (only aux terms may), in declaration order."""
    found = {v.attrs[0] for n, root in program.updates.items() if program.states[n].aux
             for v in walk(root) if v.op == "target"}
    return [n for n in program.targets if n in found]


def _layers_pass(out: Network, K: int, leaves: dict[tuple, str], per_layer: dict[str, list[str]]
                 ) -> None:
    """The initial states, then the layers (K, plus the `finally` one), each updating the states."""
    program = out.program
    fi = _Instantiator(out.graph, out.dims, program)
    fi.K = out.K  # K in an aux term: the layer count, as in the loss
    memo: dict[int, str] = {}
    state0: dict[str, str] = {}
    for name, st in program.states.items():
        node = fi(st.init, leaves, None, memo)
        state0[name] = fi.fill(node, fi.concrete(st.shape, st.span), st.dtype, st.span,
                               f"state {name}")
        leaves[("state", name)] = state0[name]
    out.state_nodes.append(state0)
    for k in range(out.K):
        lv = dict(leaves)
        for name, nodes in per_layer.items():
            if k < len(nodes):  # the final layer has copies of what its updates use only
                lv[("param", name)] = nodes[k]
        for name in program.states:
            lv[("state", name)] = out.state_nodes[-1][name]
        lmemo: dict[int, str] = {}
        now = program.states if k < K else program.final
        after = dict(out.state_nodes[-1])
        for name in now:
            after[name] = fi(program.updates[name], lv, k, lmemo)
            fi.expect(after[name], fi.concrete(program.states[name].shape, None),
                      program.updates[name].span, f"state {name}")
        out.state_nodes.append(after)


def _final_uses(program: Program) -> set[str]:
    """Names of the learnables and blocks that the `finally` updates read."""
    used: set[str] = set()
    for name in program.final:
        for v in walk(program.updates[name]):
            if v.op in ("param", "block", "block_t") and v.attrs:
                used.add(v.attrs[0])
    return used


def _objective(program: Program) -> Value | None:
    """The sum of the cost terms that are functions of the first output alone (None if none)."""
    first = program.outputs[0]
    total = None
    for c in program.costs.values():
        if tuple(c.params) == (first,):
            total = c.expr if total is None else Value(
                "add", (total, c.expr), (), (), total.batched or c.expr.batched, "real", c.span)
    return total


def _side_graph(program: Program, dims: dict[str, int], fwd_leaves: dict[tuple, str],
                out: Network, value: Value, phase: str) -> tuple[Graph, str, dict[str, str]]:
    """A small graph computing `value` over states, targets, inputs and shared values (the loss
    over the final states; the objective over one layer's output). A per-layer learnable is one
    leaf with attrs (name, "k"): the backends give it layer k's copy (the last layer's in the loss)."""
    g = Graph(Namespace(), phase)
    li = _Instantiator(g, dims, program)
    li.K = out.K
    leaves: dict[tuple, str] = {}
    for (kind, *rest), node in fwd_leaves.items():
        if kind in ("input", "operator", "const", "param"):
            rec = out.graph[node]
            leaves[(kind, *rest)] = g.add(kind, (), tuple(rest), rec.shape, rec.dtype, rec.batched,
                                          None, rec.span or None, node, rec.label, spec_name=rec.spec_name)
    for name, lrn in program.learnables.items():
        if lrn.tying == "per_layer":  # the layer's own copy, chosen when the side graph runs
            leaves[("param", name)] = g.add("param", (), (name, "k"), li.concrete(lrn.shape, lrn.span),
                                            "real", False, None, lrn.span, f"{name}_k", f"{name}[k]",
                                            spec_name=name)
    for name, t in program.targets.items():
        leaves[("target", name)] = g.add("target", (), (name,), li.concrete(t.shape, t.span),
                                         t.dtype, True, None, t.span, name, name, spec_name=name)
    states = {}
    for name, st in program.states.items():
        node = g.add("state", (), (name,), li.concrete(st.shape, st.span), st.dtype, st.batched,
                     None, st.span, name, name, spec_name=name)
        leaves[("state", name)] = node
        states[name] = node

    def layer_leaf(name: str, k: int) -> str:
        """State `name` after layer k (the final state's leaf when k = K)."""
        if k == out.K:
            return states[name]
        out.loss_layers = True
        st = program.states[name]
        return g.add("state", (), (name, k), li.concrete(st.shape, st.span), st.dtype, st.batched,
                     None, st.span, f"{name}_{k}", f"{name}[{k}]", spec_name=name)
    li.layer_leaf = layer_leaf
    result = li(value, leaves, None, {})
    g.lint()
    return g, result, states
