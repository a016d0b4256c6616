"""Solver templates: `solve f + g with ista(L = L)` writes the iterate block (and any extra states)
in terms of grad, prox and argmin, before checking.

Smooth terms (no l1/l0/plain norm, abs or indicator) go to the gradient step, the others to the
prox. Each template builds its statements as AST nodes, all given the span of the `solve`
statement, so `unroll show` prints the equations it wrote and errors point at it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Callable

from ..dsl import ast
from ..limits import MAX_K
from ..errors import SpecError, Span
from .ops import FUNCTIONS, OPS

__all__ = ["TEMPLATES", "Template", "expand", "smooth"]


def _smooth_call(name: str) -> bool:
    """Whether the spec function `name` is smooth (`OpInfo.smooth`; costs and unknown names are)."""
    return name not in FUNCTIONS or OPS[FUNCTIONS[name]].smooth


def smooth(e) -> bool:
    """Whether a cost expression is differentiable (judged on its syntax)."""
    if isinstance(e, ast.BinOp) and e.op == "pow" and isinstance(e.left, ast.Norm) and \
            e.left.p == "2" and isinstance(e.right, ast.Number) and e.right.value == 2:
        return smooth(e.left.operand)
    if isinstance(e, ast.Norm):
        return False
    if isinstance(e, ast.Call) and not _smooth_call(e.func):
        return False
    if isinstance(e, ast.Node):
        return all(smooth(getattr(e, f.name)) for f in fields(e) if f.name != "span")
    if isinstance(e, tuple):
        return all(smooth(x) for x in e)
    return True


def _bin(op: str, a: ast.Expr, b: ast.Expr) -> ast.BinOp:
    return ast.BinOp(a.span, op, a, b)


def _sum(terms: list[ast.Expr]) -> ast.Expr:
    """`a + b + c`, associated to the left as the parser does."""
    out = terms[0]
    for t in terms[1:]:
        out = _bin("add", out, t)
    return out


@dataclass
class _Writer:
    """What a template's equations are written from: the solve's span, the updated state, the
    names of the extra states, the options, and the smooth and non-smooth cost terms."""

    span: Span
    x: str
    names: dict[str, str]
    opts: dict[str, ast.Expr]
    smooth_terms: list[str]
    prox_terms: list[str]

    def name(self, key: str) -> ast.Name:
        """The state written `key` in the template (`x`, or an extra state by its template name)."""
        return ast.Name(self.span, self.x if key == "x" else self.names[key])

    def num(self, v: float) -> ast.Number:
        return ast.Number(self.span, float(v))

    def call(self, func: str, *args: ast.Expr) -> ast.Call:
        return ast.Call(self.span, func, tuple(args))

    def step(self) -> ast.Expr:
        """The step size: `1 / (L)` or the `step` option."""
        return _bin("div", self.num(1), self.opts["L"]) if "L" in self.opts else self.opts["step"]

    def step_grad(self, key: str) -> ast.Expr:
        """A step times the gradient of the smooth terms at state `key`."""
        g = self.call("grad", _sum([ast.Name(self.span, n) for n in self.smooth_terms]), self.name(key))
        if "L" in self.opts:
            return _bin("div", g, self.opts["L"])
        return _bin("mul", self.opts.get("step", self.num(1)), g)

    def prox(self, arg: ast.Expr, step: ast.Expr) -> ast.Expr:
        """The prox of the non-smooth terms at `arg` (`arg` itself when there are none)."""
        if not self.prox_terms:
            return arg
        return self.call("prox", _sum([ast.Name(self.span, n) for n in self.prox_terms]), arg, step)

    def smooth_at(self, key: str) -> ast.Expr:
        """`f(x) + h(x)`: the smooth terms at state `key`."""
        return _sum([self.call(n, self.name(key)) for n in self.smooth_terms])


def _ista(w: _Writer) -> list[tuple[str, ast.Expr]]:
    x = w.name("x")
    return [(w.x, w.prox(_bin("sub", x, w.step_grad("x")), w.step()))]


def _pgd(w: _Writer) -> list[tuple[str, ast.Expr]]:
    x, prev, nxt = w.name("x"), w.name("x_prev"), w.x + "_next"
    momentum = _bin("mul", w.opts["beta"], _bin("sub", x, prev))
    arg = _bin("add", _bin("sub", x, w.step_grad("x")), momentum)
    return [(nxt, w.prox(arg, w.step())), (prev.id, x), (w.x, ast.Name(w.span, nxt))]


def _fista(w: _Writer) -> list[tuple[str, ast.Expr]]:
    x, z, t = w.name("x"), w.name("z"), w.name("t")
    x_new, t_new = ast.Name(w.span, w.x + "_new"), ast.Name(w.span, t.id + "_new")
    root = w.call("sqrt", _bin("add", w.num(1), _bin("mul", w.num(4), _bin("pow", t, w.num(2)))))
    momentum = _bin("div", _bin("sub", t, w.num(1)), t_new)
    return [(x_new.id, w.prox(_bin("sub", z, w.step_grad("z")), w.step())),
            (t_new.id, _bin("div", _bin("add", w.num(1), root), w.num(2))),
            (z.id, _bin("add", x_new, _bin("mul", momentum, _bin("sub", x_new, x)))),
            (w.x, x_new), (t.id, t_new)]


def _admm(w: _Writer) -> list[tuple[str, ast.Expr]]:
    x, z, u, rho = w.name("x"), w.name("z"), w.name("u"), w.opts["rho"]
    penalty = _bin("pow", ast.Norm(w.span, _bin("add", _bin("sub", x, z), u)), w.num(2))
    q = _bin("add", w.smooth_at("x"), _bin("mul", _bin("div", rho, w.num(2)), penalty))
    return [(w.x, ast.Call(w.span, "argmin", (), (), ((w.x, q),))),
            (z.id, w.prox(_bin("add", x, u), _bin("div", w.num(1), rho))),
            (u.id, _bin("sub", _bin("add", u, x), z))]


@dataclass(frozen=True)
class Template:
    """A solver: its extra states as (name, scalar?, init number or None for x's init), the
    equations it writes, and its options with defaults (None = required)."""

    extra: tuple[tuple[str, bool, float | None], ...]
    body: Callable[[_Writer], list[tuple[str, ast.Expr]]]
    defaults: dict[str, float | None]
    step: bool = True  # takes a step: L = (Lipschitz constant) or step = ...


TEMPLATES = {
    "ista": Template((), _ista, {}),
    "pgd": Template((("x_prev", False, None),), _pgd, {"beta": 0}),
    "fista": Template((("z", False, None), ("t", True, 1)), _fista, {}),
    "admm": Template((("z", False, 0), ("u", False, 0)), _admm, {"rho": 1}, step=False),
}


def _respan(node, span: Span):
    if isinstance(node, tuple):
        return tuple(_respan(x, span) for x in node)
    if is_dataclass(node) and isinstance(node, ast.Node):
        kw = {f.name: _respan(getattr(node, f.name), span) for f in fields(node) if f.name != "span"}
        return replace(node, span=span, **kw)
    return node


def _terms(e, spec) -> list[str]:
    if isinstance(e, ast.Name):
        return [e.id]
    if isinstance(e, ast.BinOp) and e.op == "add":
        return _terms(e.left, spec) + _terms(e.right, spec)
    raise SpecError("solve takes a sum of cost terms", e.span, "e.g. solve f + g with fista(L = L)",
                    spec.source)


def _options(s: ast.Solve, tpl: Template, fail: Callable) -> tuple[int, dict[str, ast.Expr]]:
    """The layer count K (default 100) and the other options, defaults filled in."""
    opts = {k: _respan(e, s.span) for k, e in s.options}
    K = 100
    for k, e in s.options:
        if k == "K":
            if not isinstance(e, ast.Number) or not 1 <= e.value <= MAX_K or e.value != int(e.value):
                raise fail(f"K must be an integer from 1 to {MAX_K:,}")
            K = int(e.value)
    known = {"K", "L", "step"} | set(tpl.defaults)
    for k in opts:
        if k not in known:
            raise fail(f"{s.method}: unknown option {k}", "options: " + ", ".join(sorted(known)))
    for k, v in tpl.defaults.items():
        if v is None and k not in opts:
            raise fail(f"{s.method} needs the option {k}")
        if k not in opts:
            opts[k] = ast.Number(s.span, float(v))
    return K, opts


def _states(spec: ast.Spec, s: ast.Solve, tpl: Template, x: str) -> tuple[dict, list[ast.State]]:
    """Fresh names for the template's extra states and their declarations (shaped like x)."""
    used = {st.name for st in spec.statements if hasattr(st, "name")}
    xdecl = next(st for st in spec.statements if isinstance(st, ast.State) and st.name == x)
    names, decls = {}, []
    for name, scalar, init in tpl.extra:
        fresh = name
        while fresh in used or fresh == x:
            fresh += "_"
        used.add(fresh)
        names[name] = fresh
        value = xdecl.init if init is None else ast.Number(s.span, float(init))
        decls.append(ast.State(s.span, fresh, () if scalar else xdecl.shape, "real", value))
    return names, decls


def _expand_one(spec: ast.Spec, s: ast.Solve) -> list[ast.Node]:
    def fail(msg: str, hint: str | None = None) -> SpecError:
        return SpecError(msg, s.span, hint, spec.source)

    if s.method not in TEMPLATES:
        raise fail(f"unknown solver template '{s.method}'", "templates: " + ", ".join(TEMPLATES))
    tpl = TEMPLATES[s.method]
    costs = {c.name: c for c in spec.statements if isinstance(c, ast.Cost)}
    states = {c.name for c in spec.statements if isinstance(c, ast.State)}
    names = _terms(s.objective, spec)
    for n in names:
        if n not in costs:
            raise fail(f"'{n}' is not a cost term", "declare it with `cost {n}(x) = ...`")
    smooth_terms = [n for n in names if smooth(costs[n].expr)]
    if not smooth_terms:
        raise fail("no smooth cost term to take a gradient (or argmin) step on")
    x = costs[smooth_terms[0]].params[0]
    if x not in states:
        raise fail(f"declare the state the solver updates: `state {x} : [...] = 0`")
    K, opts = _options(s, tpl, fail)
    if tpl.step and "L" not in opts and "step" not in opts:
        raise fail(f"{s.method} needs a step: L = (Lipschitz constant) or step = ...",
                   f"e.g. solve {' + '.join(names)} with {s.method}(L = norm2(A)^2)")
    extra, decls = _states(spec, s, tpl, x)
    w = _Writer(s.span, x, extra, opts, smooth_terms, [n for n in names if n not in smooth_terms])
    body = tuple(ast.Assign(s.span, n, e) for n, e in tpl.body(w))
    return list(_respan(tuple(decls) + (ast.Iterate(s.span, "K", K, body),), s.span))


def expand(spec: ast.Spec) -> ast.Spec:
    """The spec with every `solve ... with ...` statement replaced by the states and iterate
    block its template writes."""
    if not any(isinstance(s, ast.Solve) for s in spec.statements):
        return spec
    out: list[ast.Node] = []
    for s in spec.statements:
        if isinstance(s, ast.Solve):
            if any(isinstance(t, ast.Iterate) for t in spec.statements):
                raise SpecError("a spec has either an iterate block or a solve statement",
                                s.span, None, spec.source)
            out.extend(_expand_one(spec, s))
        else:
            out.append(s)
    return replace(spec, statements=tuple(out))
