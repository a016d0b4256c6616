"""The types pass: every expression typed bottom-up (shape, dtype, batched) by a visitor that
dispatches on the AST class name and applies the op's shape rule from `ops.py`. Every mistake is a
`SpecError` at the smallest offending subexpression."""
from __future__ import annotations

from dataclasses import replace

from ..dsl import ast
from ..errors import NameError_, ShapeError, SpecError, closest
from . import blocks as _blocks
from . import channels, derivations, linop as _linop, special
from .ir import Value, fmt_shape
from .numeric import check_number_op, cost_call
from .ops import FUNCTIONS, OPS, SPECIAL_CALLS, Mismatch, infer_shape
from .resolve import IDENT, Resolver, source_text as _text
from .sizes import shapes_may_match

__all__ = ["ExprChecker"]


class ExprChecker(Resolver):
    """Types expressions over the resolved names; `make` is the one shape rule per op kind."""

    def expr(self, e: ast.Expr, ctx: str, env: dict[str, Value] | None = None) -> Value:
        method = getattr(self, "_expr_" + type(e).__name__)
        return method(e, ctx, env or {})

    def _expr_Number(self, e: ast.Number, ctx, env) -> Value:
        return Value("number", (), (e.value,), (), False, "real", e.span)

    def _expr_Name(self, e: ast.Name, ctx, env) -> Value:
        return self.name(e, ctx, env)

    def _expr_Neg(self, e: ast.Neg, ctx, env) -> Value:
        v = self.expr(e.operand, ctx, env)
        if v.is_number:  # `-1` is a number, so it can stand where the spec needs one
            return Value("number", (), (-v.attrs[0],), (), False, "real", e.span)
        return self.make("neg", [v], e, [e.operand])

    def _expr_Transpose(self, e: ast.Transpose, ctx, env) -> Value:
        return self.make("transpose", [self.expr(e.operand, ctx, env)], e, [e.operand])

    def _expr_BinOp(self, e: ast.BinOp, ctx, env) -> Value:
        if e.op == "matmul":
            if self._is_block_t(e.left, env):
                return _blocks.call_adjoint(self, e, ctx, env)  # B'(v): a linear block's adjoint
            regrouped = self._regroup_block_t(e, env)
            if regrouped is not None:
                return self.expr(regrouped, ctx, env)
        a, b = self.expr(e.left, ctx, env), self.expr(e.right, ctx, env)
        if e.op == "pow" and b.is_number and b.attrs[0] == 2 and a.op == "norm2":
            return replace(a, op="sqnorm", span=e.span)
        return self.make(e.op, [a, b], e, [e.left, e.right])

    def _is_block_t(self, e: ast.Expr, env) -> bool:
        """Whether `e` is `B'` for a declared block B (not shadowed by a local)."""
        return (isinstance(e, ast.Transpose) and isinstance(e.operand, ast.Name)
                and e.operand.id not in env
                and getattr(self.symbols.get(e.operand.id), "kind", None) == "block")

    def _regroup_block_t(self, e: ast.BinOp, env) -> ast.BinOp | None:
        """`c * B'(v)` parses as `(c * B') v` (products group left to right): regroup it as
        `c * (B'(v))`; None when no block adjoint ends the left factor."""
        spine, node = [], e.left
        while isinstance(node, ast.BinOp) and node.op in ("mul", "div", "matmul"):
            spine.append(node)
            node = node.right
        if not spine or not self._is_block_t(node, env):
            return None
        inner: ast.Expr = ast.BinOp(e.span, "matmul", node, e.right)
        for outer in reversed(spine):
            inner = replace(outer, right=inner)
        return inner

    def _expr_Norm(self, e: ast.Norm, ctx, env) -> Value:
        v = self.expr(e.operand, ctx, env)
        return self.make({"1": "norm1", "2": "norm2", "0": "norm0", "inf": "norminf"}[e.p], [v], e,
                         [e.operand])

    def _expr_Index(self, e: ast.Index, ctx, env) -> Value:
        return channels.index(self, e, ctx, env)

    def _expr_ListExpr(self, e: ast.ListExpr, ctx, env) -> Value:
        raise self.err(SpecError, "a list is only allowed as a keyword argument", e,
                       "lists go to cat([a, b], axis), stack(...) or keyword options")

    def _expr_Call(self, e: ast.Call, ctx, env) -> Value:
        name = e.func
        sym = self.symbols.get(name)
        if name in derivations.DERIVED:
            return derivations.DERIVED[name](self, e, ctx, env)
        if sym is not None and sym.kind == "cost":
            return self.call_cost(e, ctx, env)
        if sym is not None and sym.kind == "block":
            return self.call_block(e, ctx, env)
        if name in channels.CALLS and sym is None:
            return channels.CALLS[name](self, e, ctx, env)
        if name in ("reshape", "vec") and sym is None:
            return special.call_reshape(self, e, ctx, env)
        if name in SPECIAL_CALLS and sym is None:
            return special.call_special(self, e, ctx, env)
        if (sym is not None and sym.value is not None) or name in env:
            if len(e.args) != 1 or e.kwargs or e.bound:
                raise self.err(SpecError, f"'{name}' is a value, not a function", e,
                               f"write {name} x or {name} (x) for a product")
            m = self.expr(ast.Name(e.span, name), ctx, env)
            return self.make("matmul", [m, self.expr(e.args[0], ctx, env)], e,
                             [ast.Name(e.span, name), e.args[0]])
        if name not in FUNCTIONS:
            builtin = (set(FUNCTIONS) | set(derivations.DERIVED) | set(channels.CALLS)
                       | set(SPECIAL_CALLS) | {"reshape", "vec"})
            known = sorted(builtin) + [n for n, s in self.symbols.items() if s.kind in ("cost", "block")]
            raise self.err(NameError_, f"unknown function '{name}'", e,
                           closest(name, known) or "functions: " + ", ".join(known))
        if e.kwargs or e.bound:
            raise self.err(SpecError, f"{name}() takes no keyword arguments", e, "pass them by position")
        args = [self.expr(a, ctx, env) for a in e.args]
        opname = FUNCTIONS[name]
        if opname == "opnorm" and args and (args[0].batched or len(args[0].shape) != 2):
            opname = "norm2"
        lo, hi = OPS[opname].arity
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.err(SpecError, f"{name}() takes {want} argument{'s' * (hi > 1)}, "
                           f"got {len(args)}", e, OPS[opname].doc)
        return self.make(opname, args, e, list(e.args))

    def call_block(self, e: ast.Call, ctx, env) -> Value:
        return _blocks.call_block(self, e, ctx, env)

    def call_cost(self, e: ast.Call, ctx, env) -> Value:
        with cost_call(self, e):  # a cost that calls itself is an error, not a RecursionError
            return self._call_cost(self.costs[e.func], e, ctx, env)

    def _call_cost(self, cost, e: ast.Call, ctx, env) -> Value:
        if len(e.args) != len(cost.params):
            raise self.err(SpecError, f"cost {cost.name} takes {len(cost.params)} argument(s), "
                           f"got {len(e.args)}", e, f"it is cost {cost.name}({', '.join(cost.params)})")
        inner = {}
        for p, a in zip(cost.params, e.args):
            v = self.expr(a, ctx, env)
            want = self.states[p].shape if p in self.states else v.shape
            if not shapes_may_match(v.shape, want):
                raise self.err(ShapeError, f"cost {cost.name} takes {p} of shape {fmt_shape(want)}",
                               a, self.describe(v, a))
            inner[p] = v
        return self.expr(cost.expr, "cost", inner)

    # ---- every op through its shape rule (ops.infer_shape) ----
    def make(self, opname: str, args: list[Value], node: ast.Node, arg_nodes: list) -> Value:
        if any(a.op == "linop" for a in args):
            return _linop.make(self, opname, args, node, arg_nodes)
        info = OPS[opname]
        check_number_op(self, opname, args, node)
        dtype = "complex" if any(a.dtype == "complex" for a in args) else "real"
        if info.real_only and dtype == "complex":
            i = next(i for i, a in enumerate(args) if a.dtype == "complex")
            raise self.err(ShapeError, f"{opname} needs real values but "
                           f"`{_text(self.src, arg_nodes[i].span)}` is complex", arg_nodes[i],
                           "take real(...) or abs(...) first")
        dtype = dtype if info.out_dtype == "same" else info.out_dtype
        shapes = [a.shape for a in args]
        if opname == "matmul" and () in shapes:  # a scalar factor: an element-wise product
            return self.make("mul", args, node, arg_nodes)
        if opname == "matmul" and IDENT in shapes:  # I x = x, A I = A
            return args[1] if shapes[0] == IDENT else args[0]
        if opname == "transpose" and shapes[0] in ((), IDENT):  # scalars and I are their own transpose
            return args[0]
        shape = infer_shape(opname, shapes, [a.batched for a in args], [a.is_number for a in args])
        if shape is None:  # pragma: no cover - custom ops are built by their own checker hooks
            raise AssertionError(f"{opname} has no shape rule")
        if isinstance(shape, Mismatch):
            raise self.mismatch(shape, node, args, arg_nodes)
        if info.rule == "elementwise" and shape != IDENT:  # `I` takes the size it is combined with
            args = [_sized(a, shape) for a in args]
        batched = any(a.batched for a in args) and info.rule != "batch_reduce"
        return Value(opname, tuple(args), (), shape, batched, dtype, node.span)

    def mismatch(self, m: Mismatch, node: ast.Node, args: list[Value], arg_nodes: list) -> SpecError:
        """The located error for a shape rule's `Mismatch`: at the argument it names (or the whole
        expression), the arguments it names described in the hint."""
        parts = [self.describe(args[i], arg_nodes[i]) for i in m.describe]
        parts += [m.hint] if m.hint else []
        return self.err(ShapeError, m.message, node if m.at is None else arg_nodes[m.at],
                        "; ".join(parts) or None)


def _sized(v: Value, shape: tuple) -> Value:
    """`v` with every identity-shaped part (I, 2 * I, I - c * I) given the size `shape`."""
    if v.shape != IDENT:
        return v
    return replace(v, shape=shape, args=tuple(_sized(a, shape) for a in v.args))
