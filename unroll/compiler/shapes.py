"""The types pass: every expression typed bottom-up (shape, dtype, batched) by a visitor that
dispatches on the AST class name and applies the op's shape rule from `ops.py`. Every mistake is a
`SpecError` at the smallest offending subexpression."""
from __future__ import annotations

from dataclasses import replace

from ..dsl import ast
from ..errors import NameError_, ShapeError, SpecError, closest
from . import blocks as _blocks
from . import channels, derive, linop as _linop, special
from .ir import Value, fmt_shape
from .numeric import check_number_op, cost_call
from .ops import FUNCTIONS, OPS, REAL_ONLY, SPECIAL_CALLS
from .resolve import IDENT, Resolver, source_text as _text

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
        a, b = self.expr(e.left, ctx, env), self.expr(e.right, ctx, env)
        if e.op == "pow" and b.is_number and b.attrs[0] == 2 and a.op == "norm2":
            return replace(a, op="sqnorm", span=e.span)
        return self.make(e.op, [a, b], e, [e.left, e.right])

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
        if name in derive.DERIVED:
            return derive.DERIVED[name](self, e, ctx, env)
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
            known = list(FUNCTIONS) + list(derive.DERIVED) + [n for n, s in self.symbols.items()
                                                               if s.kind == "cost"]
            raise self.err(NameError_, f"unknown function '{name}'", e,
                           closest(name, known) or "functions: " + ", ".join(sorted(FUNCTIONS)))
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
            if v.shape != want:
                raise self.err(ShapeError, f"cost {cost.name} takes {p} of shape {fmt_shape(want)}",
                               a, self.describe(v, a))
            inner[p] = v
        return self.expr(cost.expr, "cost", inner)

    # ---- the one shape rule per op kind ----
    def make(self, opname: str, args: list[Value], node: ast.Node, arg_nodes: list) -> Value:
        if any(a.op == "linop" for a in args):
            return _linop.make(self, opname, args, node, arg_nodes)
        info = OPS[opname]
        check_number_op(self, opname, args, node)
        batched = any(a.batched for a in args)
        dtype = "complex" if any(a.dtype == "complex" for a in args) else "real"
        if (info.real_only or opname in REAL_ONLY) and dtype == "complex":
            i = next(i for i, a in enumerate(args) if a.dtype == "complex")
            raise self.err(ShapeError, f"{opname} needs real values but `{_text(self.src, arg_nodes[i].span)}`"
                           " is complex", arg_nodes[i], "take real(...) or abs(...) first")
        dtype = dtype if info.out_dtype == "same" else info.out_dtype
        rule = info.rule
        if rule == "elementwise":
            shape = args[0].shape
            for a, an in zip(args[1:], arg_nodes[1:]):
                shape = self.broadcast(opname, shape, a.shape, node, args[0], a, arg_nodes[0], an)
            if shape != IDENT:  # `I` takes the size of what it is combined with
                args = [replace(a, shape=shape) if a.shape == IDENT else a for a in args]
        elif rule == "matmul":
            a, b = args
            if a.shape == () or b.shape == ():
                return self.make("mul", args, node, arg_nodes)
            if a.shape == IDENT:
                return b
            if b.shape == IDENT:
                return a
            shape = self.matmul_shape(a, b, node, arg_nodes)
        elif rule == "transpose":
            a = args[0]
            if a.shape == IDENT or a.shape == ():
                return a
            if len(a.shape) != 2:
                raise self.err(ShapeError, f"transpose needs a matrix, got shape {fmt_shape(a.shape)}",
                               node, "for an inner product write sum(x * y)")
            shape = (a.shape[1], a.shape[0])
        elif rule == "reduce":
            shape = ()
        elif rule == "batch_reduce":
            self.broadcast(opname, args[0].shape, args[1].shape, node, args[0], args[1],
                           arg_nodes[0], arg_nodes[1])
            shape, batched = (), False
        elif rule == "fourier":
            if len(args[0].shape) < 2:
                raise self.err(ShapeError, f"{opname} needs an image [.., h, w], got "
                               f"{fmt_shape(args[0].shape)}", node)
            shape = args[0].shape
        elif rule in ("cconv", "cconv_t"):
            h, v = args
            if len(h.shape) != 3 or h.batched:
                raise self.err(ShapeError, f"{opname} takes a filter bank [L, a, b] first, got "
                               f"{fmt_shape(h.shape)}", arg_nodes[0])
            want = 2 if rule == "cconv" else 3
            if len(v.shape) != want or (rule == "cconv_t" and v.shape[0] != h.shape[0]):
                what = "an image [h, w]" if rule == "cconv" else f"a stack [{h.shape[0]}, h, w]"
                raise self.err(ShapeError, f"{opname} needs {what}, got {fmt_shape(v.shape)}",
                               arg_nodes[1], self.describe(v, arg_nodes[1]))
            shape = (h.shape[0],) + v.shape if rule == "cconv" else v.shape[1:]
        elif rule == "bank":
            g, b = args
            if len(g.shape) != 2 or g.batched:
                raise self.err(ShapeError, f"bank takes coefficients G [R, L] first, got "
                               f"{fmt_shape(g.shape)}", arg_nodes[0], self.describe(g, arg_nodes[0]))
            if len(b.shape) != 3 or b.batched or b.shape[0] != g.shape[0]:
                raise self.err(ShapeError, f"bank needs atoms [{g.shape[0]}, a, b] for G "
                               f"{fmt_shape(g.shape)}, got {fmt_shape(b.shape)}", arg_nodes[1],
                               self.describe(b, arg_nodes[1]))
            shape = (g.shape[1],) + b.shape[1:]
        elif rule == "sum_l":
            if not args[0].shape:
                raise self.err(ShapeError, "sum_l needs a stack [L, ...], got a scalar", node)
            shape = args[0].shape[1:]
        elif rule == "plf":
            v, q = args[0], args[1]
            if len(q.shape) != 2 or not v.shape or q.shape[0] != v.shape[0] or q.batched:
                raise self.err(ShapeError, f"plf needs values q [L, P] for v [L, ...]; got v "
                               f"{fmt_shape(v.shape)} and q {fmt_shape(q.shape)}", node)
            for a, an in zip(args[2:], arg_nodes[2:]):
                if not a.is_number:
                    raise self.err(ShapeError, "the range of plf is two numbers", an)
            shape = v.shape
        elif rule == "matrix_scalar":
            if len(args[0].shape) != 2 or args[0].batched:
                raise self.err(ShapeError, "norm2 of a fixed matrix is its spectral norm; "
                               f"got {fmt_shape(args[0].shape)}", node)
            shape = ()
        else:  # pragma: no cover - every op in the table has one of the rules above
            raise AssertionError(rule)
        return Value(opname, tuple(args), (), shape, batched, dtype, node.span)

    def broadcast(self, opname, s1, s2, node, v1, v2, n1, n2) -> tuple:
        if s1 == s2 or s2 == ():
            return s1
        if s1 == ():
            return s2
        if s1 == IDENT and len(s2) == 2 and s2[0] == s2[1]:
            return s2
        if s2 == IDENT and len(s1) == 2 and s1[0] == s1[1]:
            return s1
        if IDENT not in (s1, s2) and len(s1) == len(s2) and all(
                a == b or a == 1 or b == 1 for a, b in zip(s1, s2)):
            return tuple(b if a == 1 else a for a, b in zip(s1, s2))
        verb = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}.get(opname)
        what = f"cannot {verb}" if verb else f"{opname}: mismatched shapes"
        raise self.err(ShapeError, f"{what} {fmt_shape(s1)} and {fmt_shape(s2)}", node,
                       self.describe(v1, n1) + "; " + self.describe(v2, n2))

    def matmul_shape(self, a: Value, b: Value, node, arg_nodes) -> tuple:
        if len(a.shape) != 2:
            raise self.err(ShapeError, f"the left factor of a product must be a matrix, got "
                           f"{fmt_shape(a.shape)}", node, self.describe(a, arg_nodes[0]) +
                           "; for an element-wise product write a * b")
        if len(b.shape) not in (1, 2) or b.shape[0] != a.shape[1]:
            raise self.err(ShapeError, f"cannot multiply {fmt_shape(a.shape)} by "
                           f"{fmt_shape(b.shape)}: inner dimensions differ", node,
                           self.describe(a, arg_nodes[0]) + "; " + self.describe(b, arg_nodes[1]))
        return (a.shape[0],) + b.shape[1:]

