"""Solver templates: `solve f + g with ista(L = L)` writes the iterate block (and any extra states)
in terms of grad, prox and argmin, before checking.

Smooth terms (no l1/l0/plain norm, abs or indicator) go to the gradient step, the others to the
prox. Each template is a small text pattern in the spec language itself, parsed and given the span
of the `solve` statement, so `unroll show` prints the equations it wrote and errors point at it.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass, replace

from ..dsl import ast
from ..limits import MAX_K
from ..errors import SpecError, Span
from .ops import FUNCTIONS, OPS

__all__ = ["TEMPLATES", "expand", "smooth"]


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


# name -> (extra states as (name, shape or None for x's shape, init or None for x's init), body,
#          options with defaults (None = required, "" = optional))
TEMPLATES = {
    "ista": ([], ["{x} = {prox}({x} - {step_grad}({x}), {step})"], {}),
    "pgd": ([("x_prev", None, None)],
            ["{x}_next = {prox}({x} - {step_grad}({x}) + ({beta}) * ({x} - {x_prev}), {step})",
             "{x_prev} = {x}", "{x} = {x}_next"], {"beta": "0"}),
    "fista": ([("z", None, None), ("t", "[]", "1")],
              ["{x}_new = {prox}({z} - {step_grad}({z}), {step})",
               "{t}_new = (1 + sqrt(1 + 4 * {t}^2)) / 2",
               "{z} = {x}_new + ({t} - 1) / {t}_new * ({x}_new - {x})",
               "{x} = {x}_new", "{t} = {t}_new"], {}),
    "admm": ([("z", None, "0"), ("u", None, "0")],
             ["{x} = argmin({x}: {smooth_at_x} + ({rho}) / 2 * ||{x} - {z} + {u}||^2)",
              "{z} = {prox_rho}({x} + {u}, 1 / ({rho}))",
              "{u} = {u} + {x} - {z}"], {"rho": "1"}),
}


def _src(spec: ast.Spec, e: ast.Expr) -> str:
    s = e.span
    line = spec.source.splitlines()[s.line - 1]
    return line[s.col - 1:s.end_col - 1] if s.end_line == s.line else line[s.col - 1:]


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


def _expand_one(spec: ast.Spec, s: ast.Solve) -> list[ast.Node]:
    def fail(msg: str, hint: str | None = None) -> SpecError:
        return SpecError(msg, s.span, hint, spec.source)

    if s.method not in TEMPLATES:
        raise fail(f"unknown solver template '{s.method}'", "templates: " + ", ".join(TEMPLATES))
    extra, body, defaults = TEMPLATES[s.method]
    costs = {c.name: c for c in spec.statements if isinstance(c, ast.Cost)}
    states = {c.name: c for c in spec.statements if isinstance(c, ast.State)}
    names = _terms(s.objective, spec)
    for n in names:
        if n not in costs:
            raise fail(f"'{n}' is not a cost term", "declare it with `cost {n}(x) = ...`")
    smooth_terms = [n for n in names if smooth(costs[n].expr)]
    prox_terms = [n for n in names if n not in smooth_terms]
    if not smooth_terms:
        raise fail("no smooth cost term to take a gradient (or argmin) step on")
    x = costs[smooth_terms[0]].params[0]
    if x not in states:
        raise fail(f"declare the state the solver updates: `state {x} : [...] = 0`")
    opts = {k: _src(spec, e) for k, e in s.options}
    K = 100
    for k, e in s.options:
        if k == "K":
            if not isinstance(e, ast.Number) or not 1 <= e.value <= MAX_K or e.value != int(e.value):
                raise fail(f"K must be an integer from 1 to {MAX_K:,}")
            K = int(e.value)
    known = {"K", "L", "step"} | set(defaults)
    for k in opts:
        if k not in known:
            raise fail(f"{s.method}: unknown option {k}", "options: " + ", ".join(sorted(known)))
    sub = {"x": x}
    for k, v in defaults.items():
        if v is None and k not in opts:
            raise fail(f"{s.method} needs the option {k}")
        sub[k] = opts.get(k, v)
    if s.method != "admm":
        if "L" in opts:
            sub["step_grad"] = "{F}"
            sub["step"] = f"1 / ({opts['L']})"
        elif "step" in opts:
            sub["step"] = f"({opts['step']})"
        else:
            raise fail(f"{s.method} needs a step: L = (Lipschitz constant) or step = ...",
                       f"e.g. solve {' + '.join(names)} with {s.method}(L = norm2(A)^2)")
    used = {st.name for st in spec.statements if hasattr(st, "name")} | set(costs)
    decls = []
    xdecl = states[x]
    for name, shape, init in extra:
        fresh = name
        while fresh in used or fresh == x:
            fresh += "_"
        used.add(fresh)
        sub[name] = fresh
        shape = shape or "[" + ", ".join(str(d.value) for d in xdecl.shape) + "]"
        decls.append(f"state {fresh} : {shape} = {init or _src(spec, xdecl.init)}")
    F = " + ".join(smooth_terms)
    if s.method != "admm":
        point_grad = ("grad(" + F + ", {p}) / (" + opts["L"] + ")") if "L" in opts else \
            ("(" + opts.get("step", "1") + ") * grad(" + F + ", {p})")
    lines = []
    for b in body:
        b = b.replace("{step_grad}({x})", point_grad.replace("{p}", "{x}")) if s.method != "admm" \
            else b
        b = b.replace("{step_grad}({z})", point_grad.replace("{p}", "{z}")) if s.method != "admm" \
            else b
        if prox_terms:
            b = b.replace("{prox}(", "prox(" + " + ".join(prox_terms) + ", ")
            b = b.replace("{prox_rho}(", "prox(" + " + ".join(prox_terms) + ", ")
        else:
            b = b.replace("{prox}(", "(").replace("{prox_rho}(", "(")
            b = b.replace(", {step})", ")").replace(", 1 / ({rho}))", ")")
        b = b.replace("{smooth_at_x}", " + ".join(f"{n}({{x}})" for n in smooth_terms))
        lines.append("    " + b.format(**sub))
    text = "\n".join(decls + [f"iterate K = {K}:"] + lines) + "\n"
    from ..dsl.parser import parse
    return list(_respan(parse(text, spec.file).statements, s.span))


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
