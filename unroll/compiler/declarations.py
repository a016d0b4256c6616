"""The declarations pass: each statement of a spec goes to the handler for its AST class, which
declares its name and types its expressions; `Checker.run` then checks the iterate body, the
outputs and the loss, and assembles the `Program`."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..dsl import ast
from ..errors import NameError_, ShapeError, Span, SpecError, TyingError, closest
from ..limits import MAX_K
from . import blocks as _blocks
from . import derivations, linop as _linop
from .constraints import CONSTRAINTS
from .ir import CostTerm, Learnable, Program, StateVar, Value, fmt_shape
from .names import reserved_reason
from .resolve import IDENT, MODIFIERS_CONSTRAINT, MODIFIERS_TYING, Symbol
from .shapes import ExprChecker
from .sizes import shapes_may_match

__all__ = ["Checker", "HANDLERS"]


@dataclass
class _Parts:
    """The statements a spec has at most one of, found while declaring."""

    algorithm: ast.Algorithm | None = None
    iterate: ast.Iterate | None = None
    final: ast.Final | None = None
    outputs: ast.Output | None = None
    loss: ast.Loss | None = None


def _algorithm(ck: "Checker", s: ast.Algorithm, parts: _Parts) -> None:
    if parts.algorithm is not None:
        raise ck.err(SpecError, "a spec names one algorithm", s)
    if reserved_reason(s.name, "algorithm"):
        raise ck.err(NameError_, reserved_reason(s.name, "algorithm"), s, "rename it")
    parts.algorithm = s


def _dims(ck: "Checker", s: ast.Dims, parts: _Parts) -> None:
    for d in s.dims:
        ck.declare(d.name, "dim", None, d)
        ck.dims[d.name] = d.value
        if d.value is not None:
            ck.symbols[d.name] = Symbol(
                "dim", Value("number", (), (float(d.value),), span=d.span), d.span)
        else:
            ck.symbols[d.name] = Symbol(
                "dim", Value("dim", (), (d.name,), span=d.span), d.span)


def _tensor(ck: "Checker", s: ast.TensorDecl, parts: _Parts) -> None:
    ck.tensors[s.name], leaf = _linop.declare(ck, s)
    if s.default is not None:  # `operator W : [n, m] = expr`: used when W is not given
        t = ck.tensors[s.name]
        if t.in_shape is not None:
            raise ck.err(SpecError, f"matrix-free operator {s.name} cannot have a default", s.default,
                         "it is given as callables when the model is built")
        v = ck.expr(s.default, "default")
        _linop.reject(ck, v, s.default)
        v = ck.fit_shape(v, t.shape, s.default, f"operator {s.name}")
        if v.dtype != t.dtype:
            raise ck.err(ShapeError, f"operator {s.name} is {t.dtype} but its default is {v.dtype}",
                         s.default, "declare the operator complex, or take real(...)")
        ck.tensors[s.name] = replace(t, default=v)
    ck.declare(s.name, s.kind, leaf, s)


def _const(ck: "Checker", s: ast.Const, parts: _Parts) -> None:
    _linop.reject(ck, v := ck.expr(s.expr, "const"), s.expr)
    if v.shape == IDENT:
        raise ck.err(ShapeError, "the size of I is unknown here", s.expr,
                     "use I inside a product or sum with a square matrix")
    ck.consts[s.name] = v.named(s.name)
    leaf = ck.consts[s.name] if v.is_number else Value("const", (), (s.name,), v.shape, False, v.dtype,
                                                       s.span)
    ck.declare(s.name, "const", leaf, s)


def _cost(ck: "Checker", s: ast.Cost, parts: _Parts) -> None:
    ck.declare(s.name, "cost", None, s)
    ck.costs[s.name] = s


def _state(ck: "Checker", s: ast.State, parts: _Parts) -> None:
    shape = ck.shape_of(s.shape)
    v = ck.fit_shape(ck.expr(s.init, "state", {}), shape, s.init, f"state {s.name}")
    ck.states[s.name] = StateVar(s.name, shape, s.dtype, v, v.batched, s.span)
    ck.declare(s.name, "state", Value("state", (), (s.name,), shape, v.batched,
                                      s.dtype, s.span), s)


def _iterate(ck: "Checker", s: ast.Iterate, parts: _Parts) -> None:
    if parts.iterate is not None:
        raise ck.err(SpecError, "a spec has one iterate block", s,
                     "put every update of one layer in a single iterate block")
    parts.iterate = s


def _final(ck: "Checker", s: ast.Final, parts: _Parts) -> None:
    if parts.final is not None:
        raise ck.err(SpecError, "a spec has one `finally` line", s,
                     f"list every state there: finally {', '.join(parts.final.names + s.names)}")
    parts.final = s


def _output(ck: "Checker", s: ast.Output, parts: _Parts) -> None:
    parts.outputs = s


def _loss(ck: "Checker", s: ast.Loss, parts: _Parts) -> None:
    parts.loss = s


HANDLERS: dict[type, Callable] = {
    ast.Algorithm: _algorithm, ast.Dims: _dims, ast.TensorDecl: _tensor, ast.Const: _const,
    ast.Cost: _cost, ast.Learn: lambda ck, s, parts: ck.learn(s), ast.State: _state,
    ast.Iterate: _iterate, ast.Final: _final, ast.Output: _output, ast.Loss: _loss,
    ast.Block: lambda ck, s, parts: _blocks.check_block(ck, s),
}
"""Statement handlers keyed by AST class: (checker, statement, parts found so far) -> None."""


class Checker(ExprChecker):
    """Checks one parsed spec; `run()` returns the `Program` or raises `SpecError`."""

    def run(self) -> Program:
        """Declare every statement through `HANDLERS`, then check the body, outputs and loss."""
        parts = _Parts()
        for s in self.spec.statements:
            handler = HANDLERS.get(type(s))
            if handler is not None:
                handler(self, s, parts)
        iterate = parts.iterate
        if iterate is None:
            raise self.err(SpecError, "the spec has no `iterate K = N:` block", Span(self.spec.file, 1, 1),
                           "add the update equations under `iterate K = 16:`")
        if not self.states:
            raise self.err(SpecError, "the spec declares no state", iterate,
                           "declare what the iteration updates, e.g. `state x : [m] = 0`")
        for c in self.costs.values():
            self.check_cost(c)
        self.count_name = iterate.count_name
        updates, equations, aux = self.body(iterate)
        for c in self.costs.values():  # again, with the states batched as the body left them
            self.check_cost(c)         # (the objective's reshape of a state needs it)
        derivations.finish(self, updates)
        self.check_outputs(parts)
        loss = self.loss(parts.loss) if parts.loss is not None else None
        return self.program(parts, updates, equations, loss)

    def check_outputs(self, parts: _Parts) -> None:
        """`output` and `finally` name states of the iteration."""
        outputs, final, iterate = parts.outputs, parts.final, parts.iterate
        if outputs is None:
            raise self.err(SpecError, "the spec has no `output`", iterate, "add `output x`")
        for o in outputs.names:
            if o not in self.states or self.states[o].aux:
                raise self.err(NameError_, f"output '{o}' is not a state", outputs,
                               closest(o, self.states))
        for n in (final.names if final is not None else ()):
            if n not in self.states or self.states[n].aux:
                raise self.err(NameError_, f"finally '{n}': not a state of the iteration", final,
                               closest(n, [s for s in self.states if not self.states[s].aux])
                               or "finally names states updated in the iterate block")

    def program(self, parts: _Parts, updates, equations, loss) -> Program:
        """The checked `Program` (K from the call, else from the spec, within 1..MAX_K)."""
        iterate, final, outputs = parts.iterate, parts.final, parts.outputs
        name, desc = (parts.algorithm.name, parts.algorithm.description) if parts.algorithm else (None, None)
        K = self.K_override if self.K_override is not None else iterate.count
        if not 1 <= K <= MAX_K:
            raise self.err(SpecError, f"K must be at least 1, got {K}" if K < 1 else
                           f"K must be at most {MAX_K:,}, got {K}", iterate,
                           f"the layer count is an integer from 1 to {MAX_K:,}")
        spans = {n: s.span for n, s in self.symbols.items()}
        return Program(name or "unnamed", desc, self.spec.file, self.src, dict(self.dims),
                       {n: t for n, t in self.tensors.items() if t.kind == "operator"},
                       {n: t for n, t in self.tensors.items() if t.kind == "input"},
                       {n: t for n, t in self.tensors.items() if t.kind == "target"},
                       self.consts, self.learnables, self.states, updates, equations, K,
                       outputs.names, loss, self.cost_terms, self.blocks, spans,
                       tuple(dict.fromkeys(final.names)) if final is not None else ())

    def learn(self, s: ast.Learn) -> None:
        """Declare a learnable: its tying, its constraint and an init that fits its shape."""
        tying = [m for m in s.modifiers if m in MODIFIERS_TYING]
        cons = [m for m in s.modifiers if m.split("(")[0] in MODIFIERS_CONSTRAINT]
        for m in s.modifiers:
            if m not in CONSTRAINTS and m not in MODIFIERS_TYING:
                raise self.err(TyingError, f"learn {s.name}: unknown parametrisation {m!r}",
                               getattr(m, "span", None) or s, "constraints: " + ", ".join(CONSTRAINTS))
        if len(set(tying)) > 1:  # the same tying word twice is harmless; a constraint twice is not
            raise self.err(TyingError, f"learn {s.name} is both {' and '.join(tying)}",
                           getattr(tying[1], "span", None) or s,
                           "choose one tying: shared (one copy) or per_layer (one per layer)")
        if len(cons) > 1:
            raise self.err(TyingError, f"learn {s.name} has two constraints {[str(c) for c in cons]}",
                           getattr(cons[1], "span", None) or s, "keep one constraint per learnable")
        shape = self.shape_of(s.shape)
        v = self.fit_shape(self.expr(s.init, "learn"), shape, s.init, f"learn {s.name}")
        if v.shape == () and shape != ():
            v = replace(v, shape=())  # scalar fills the declared shape at build time
        if cons and v.is_number and CONSTRAINTS[cons[0]].outside(float(v.attrs[0])):
            lo, hi = CONSTRAINTS[cons[0]].domain
            inside = ("(" + ("-inf" if lo is None else f"{lo:g}") + ", "
                      + ("inf" if hi is None else f"{hi:g}") + ")")
            raise self.err(SpecError, f"learn {s.name} is {cons[0]} but its initial value "
                           f"{float(v.attrs[0]):g} is not", s.init,
                           f"a {cons[0]} learnable starts inside {inside}")
        lrn = Learnable(s.name, shape, v, tying[0] if tying else "shared",
                        cons[0] if cons else None, s.span)
        self.learnables[s.name] = lrn
        self.declare(s.name, "learn", Value("param", (), (s.name,), shape, False, "real", s.span), s)

    def check_cost(self, c: ast.Cost) -> None:
        """Type a cost term over its state parameters; it must be a scalar."""
        env = {}
        for p in c.params:
            if p not in self.states:
                raise self.err(NameError_, f"cost parameter '{p}' is not a state", c,
                               closest(p, self.states) or "cost terms are functions of states")
            st = self.states[p]
            env[p] = Value("state", (), (p,), st.shape, st.batched, st.dtype, c.span)
        v = self.expr(c.expr, "cost", env)
        if v.shape != ():
            raise self.err(ShapeError, f"cost {c.name} must be a scalar, got {fmt_shape(v.shape)}",
                           c.expr, "wrap it in a norm (||.||^2, ||.||_1) or sum()")
        self.cost_terms[c.name] = CostTerm(c.name, c.params, v, c.span)

    def body(self, it: ast.Iterate):
        """Type the update equations; states that become batched are re-typed until stable."""
        for _ in range(len(self.states) + 2):
            env: dict[str, Value] = {n: self.symbols[n].value for n in self.states}
            equations, aux = [], {}
            for a in it.body:
                sym = self.symbols.get(a.name)
                if a.aux:
                    if reserved_reason(a.name, "aux"):
                        raise self.err(NameError_, reserved_reason(a.name, "aux"), a)
                    if a.name in self.symbols:
                        raise self.err(NameError_, f"aux '{a.name}' clashes with {sym.kind} "
                                       f"'{a.name}'", a)
                    count = Value("count", (), (), (), False, "real", a.span)  # K, as in the loss
                    v = self.expr(a.expr, "aux", {self.count_name: count, **env})
                    if v.shape != ():
                        raise self.err(ShapeError, f"aux term {a.name} must be a scalar, got "
                                       f"{fmt_shape(v.shape)}", a.expr, "wrap it in sum() or ||.||^2")
                    aux[a.name] = v.named(a.name)
                    equations.append((a.name, aux[a.name]))
                    continue
                if sym is not None and sym.kind != "state":
                    raise self.err(NameError_, f"cannot assign to {sym.kind} '{a.name}'", a,
                                   "only states and new local names are assigned in iterate")
                v = self.expr(a.expr, "body", env)
                if sym is not None:
                    st = self.states[a.name]
                    if v.shape == IDENT or (not shapes_may_match(v.shape, st.shape) and v.shape != ()):
                        raise self.err(ShapeError, f"state {a.name} is {fmt_shape(st.shape)} but "
                                       f"the new value is {fmt_shape(v.shape)}", a.expr,
                                       self.describe(v, a.expr))
                    if v.dtype != st.dtype:
                        raise self.err(ShapeError, f"state {a.name} is {st.dtype} but the new value "
                                       f"is {v.dtype}", a.expr, "declare the state with its update's "
                                       "dtype, or convert with real(...) / complex(a, b)")
                env[a.name] = v.named(a.name)
                equations.append((a.name, env[a.name]))
            changed = False
            for n, st in list(self.states.items()):
                if env[n].batched and not st.batched:
                    self.states[n] = replace(st, batched=True)
                    self.symbols[n] = replace(self.symbols[n], value=replace(
                        self.symbols[n].value, batched=True))
                    changed = True
            if not changed:
                break
        updates = {n: env[n] for n in self.states}
        for n, v in aux.items():
            zero = Value("number", (), (0.0,), span=v.span)
            self.states[n] = StateVar(n, (), "real", zero, v.batched, v.span, aux=True)
            prev = Value("state", (), (n,), (), v.batched, "real", v.span)
            updates[n] = Value("add", (prev, v), (), (), v.batched, "real", v.span, n + "_total")
            self.symbols[n] = Symbol("aux", prev, v.span)
        return updates, equations, aux

    def loss(self, s: ast.Loss) -> Value:
        """Type the loss (a scalar; a per-sample loss is averaged over the batch)."""
        count = Value("count", (), (), (), False, "real", s.span)  # K: the number of layers
        v = self.expr(s.expr, "loss", {self.count_name: count})
        if v.shape != ():
            raise self.err(ShapeError, f"the loss must be a scalar, got {fmt_shape(v.shape)}", s.expr,
                           "use mse(x, x_star) or wrap the expression in sum()")
        if v.batched:  # a per-sample loss is averaged over the batch
            v = Value("batch_mean", (v,), (), (), False, v.dtype, s.span)
        return v

