"""Name resolution and shape inference: AST → checked `Program`.

Each declaration adds a name to one table; each expression is typed bottom-up by a visitor that
dispatches on the AST class name and applies the op's shape rule from `ops.py`. Every mistake is a
`SpecError` at the smallest offending subexpression.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..dsl import ast
from ..limits import MAX_K
from .names import reserved_reason, unknown_name
from .numeric import check_number_op, cost_call
from ..errors import NameError_, ShapeError, Span, SpecError, TyingError, closest
from . import blocks as _blocks
from . import channels, derive, linop as _linop
from .constraints import BASES, CONSTRAINTS
from .sizes import size_add, size_mul, size_sub
from .ir import BlockDef, CostTerm, Learnable, Program, StateVar, Tensor, Value, fmt_shape
from .ops import FUNCTIONS, OPS, REAL_ONLY, SPECIAL_CALLS

__all__ = ["check", "Checker", "IDENT"]

IDENT = ("*",)  # the shape of `I`: square, size taken from its context

_MODIFIERS_TYING = ("shared", "per_layer")
_MODIFIERS_CONSTRAINT = BASES


@dataclass(frozen=True)
class Symbol:
    """A declared name: its kind and the leaf value that refers to it."""

    kind: str
    value: Value | None
    span: Span


# Which kinds of names each context may read (the rest give a named error).
_CONTEXTS = {
    "const": {"dim", "operator", "const"},
    "learn": {"dim", "operator", "const"},
    "state": {"dim", "operator", "const", "learn", "input", "state"},
    "cost": {"dim", "operator", "const", "learn", "input", "param", "cost"},
    "body": {"dim", "operator", "const", "learn", "input", "state", "local", "index", "cost",
             "block"},
    "loss": {"dim", "operator", "const", "learn", "input", "state", "target", "aux", "cost"},
}
_WHY = {
    "const": "consts are computed once when the model is built, from dims, operators and consts",
    "learn": "initial values are computed when the model is built, from dims, operators and consts",
    "state": "initial states are computed from inputs, operators, consts, learnables and earlier states",
    "cost": "cost terms see their parameters, inputs, operators, consts and learnables",
    "body": "targets are only visible to the loss",
    "loss": "the loss sees final states, targets, inputs and aux terms",
}


def _text(source: str, span: Span | None) -> str:
    if span is None or not span.line:
        return "?"
    lines = source.splitlines()
    if span.line > len(lines):
        return "?"
    if span.end_line == span.line and span.end_col > span.col:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    return lines[span.line - 1][span.col - 1:].strip()


class Checker:
    """Checks one parsed spec; `run()` returns the `Program` or raises `SpecError`."""

    def __init__(self, spec: ast.Spec, K: int | None = None):
        self.spec = spec
        self.src = spec.source
        self.K_override = K
        self.symbols: dict[str, Symbol] = {}
        self.dims: dict[str, int | None] = {}
        self.tensors: dict[str, Tensor] = {}
        self.consts: dict[str, Value] = {}
        self.learnables: dict[str, Learnable] = {}
        self.states: dict[str, StateVar] = {}
        self.costs: dict[str, ast.Cost] = {}
        self.cost_terms: dict[str, CostTerm] = {}
        self.blocks: dict[str, BlockDef] = {}

    # ---- errors ----
    def err(self, cls, msg: str, node_or_span, hint: str | None = None) -> SpecError:
        span = node_or_span if isinstance(node_or_span, Span) else node_or_span.span
        return cls(msg, span, hint, self.src)

    def describe(self, v: Value, node: ast.Node) -> str:
        text = _text(self.src, node.span)
        out = f"`{text}` is {fmt_shape(v.shape)}"
        leaves, stack, seen = [], [v], set()
        while stack and len(leaves) < 2:  # the declarations the shape comes from
            n = stack.pop(0)
            if n.op in ("operator", "input", "target", "param", "state", "const") and n.attrs:
                if n.attrs[0] not in seen:
                    seen.add(n.attrs[0])
                    leaves.append(n)
            else:
                stack.extend(n.args)
        where = []
        for n in leaves:
            sym = self.symbols.get(n.attrs[0])
            if sym is not None:
                kind = "learn" if sym.kind == "learn" else sym.kind
                where.append(f"{kind} {n.attrs[0]} : {fmt_shape(n.shape)}, line {sym.span.line}")
        return out + (f" (from {'; '.join(where)})" if where else "")

    # ---- declarations ----
    def declare(self, name: str, kind: str, value: Value | None, node: ast.Node) -> None:
        why = reserved_reason(name, kind)
        if why:
            raise self.err(NameError_, why, node, "rename it")
        if name in ("k", "I"):
            raise self.err(NameError_, f"'{name}' is reserved", node,
                           "k is the layer index and I the identity; pick another name")
        if name in self.symbols:
            prev = self.symbols[name]
            raise self.err(NameError_, f"'{name}' is already declared as {prev.kind} "
                           f"at line {prev.span.line}", node, "each name is declared once")
        self.symbols[name] = Symbol(kind, value, node.span)

    def shape_of(self, dims: tuple[ast.Dim, ...]) -> tuple:
        out = []
        for d in dims:
            size = self.dim_size(d)
            if isinstance(size, int) and size <= 0:
                raise self.err(ShapeError, "a dimension must be positive", d, "sizes are integers >= 1")
            out.append(size)
        return tuple(out)

    def dim_size(self, d: ast.Dim | str):
        """A parsed size (a dim name, an integer or `2*c`-style expression) as int, name or Size;
        a dim with a size in the spec (`dims N = 1089`) is that number from here on."""
        if isinstance(d, str):
            d = ast.Dim(Span(self.spec.file), d)
        if isinstance(d.value, tuple):
            op, a, b = d.value
            f = {"add": size_add, "sub": size_sub, "mul": size_mul}[op]
            return f(self.dim_size(a), self.dim_size(b))
        if isinstance(d.value, str):
            if d.value not in self.dims:
                raise self.err(NameError_, f"unknown dim '{d.value}'", d,
                               closest(d.value, self.dims) or "declare it with `dims`")
            return self.dims.get(d.value) or d.value
        return d.value

    def fit_shape(self, v: Value, shape: tuple, node: ast.Node, what: str) -> Value:
        """Check that an init value fits a declared shape (scalars fill, I takes the size)."""
        _linop.reject(self, v, node)
        if v.shape == shape or v.shape == ():
            return v
        if v.shape == IDENT and len(shape) == 2 and shape[0] == shape[1]:
            return replace(v, shape=shape)
        if v.shape != IDENT and len(v.shape) < len(shape) and all(
                a == b or a == 1 for a, b in zip(reversed(v.shape), reversed(shape))):
            return v  # broadcast along the leading axes when the model is built
        raise self.err(ShapeError, f"{what} is declared {fmt_shape(shape)} but its value has shape "
                       f"{fmt_shape(v.shape)}", node, self.describe(v, node))

    # ---- expressions ----
    def expr(self, e: ast.Expr, ctx: str, env: dict[str, Value] | None = None) -> Value:
        method = getattr(self, "_expr_" + type(e).__name__)
        return method(e, ctx, env or {})

    def _expr_Number(self, e: ast.Number, ctx, env) -> Value:
        return Value("number", (), (e.value,), (), False, "real", e.span)

    def _expr_Name(self, e: ast.Name, ctx, env) -> Value:
        if e.id in env:
            return env[e.id]
        if e.id == "I":
            return Value("identity", (), (), IDENT, False, "real", e.span)
        if e.id == "k":
            if "index" not in _CONTEXTS[ctx]:
                raise self.err(NameError_, "the layer index k is only defined inside iterate", e,
                               "use k in the iterate block or in sum_k(...)")
            return Value("index", (), (), (), False, "real", e.span)
        sym = self.symbols.get(e.id)
        if sym is None:
            visible = [n for n, s in self.symbols.items() if s.kind in _CONTEXTS[ctx]] + list(env)
            raise unknown_name(self, e, visible)
        if sym.kind not in _CONTEXTS[ctx]:
            raise self.err(NameError_, f"{sym.kind} '{e.id}' cannot be used here", e, _WHY[ctx])
        if sym.value is None:
            raise self.err(NameError_, f"{sym.kind} '{e.id}' is not a value", e,
                           f"call it: {e.id}(...)")
        return replace(sym.value, span=e.span)

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
            return self.call_reshape(e, ctx, env)
        if name in SPECIAL_CALLS and sym is None:
            return self.call_special(e, ctx, env)
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

    def _int_args(self, e: ast.Call, items, n: int, what: str) -> list[float]:
        vals = []
        for a in items:
            v = self.expr(a, "const") if not isinstance(a, ast.ListExpr) else None
            if v is None or not v.is_number:
                raise self.err(SpecError, f"{e.func} takes {what}", a)
            vals.append(v.attrs[0])
        if len(vals) != n:
            raise self.err(SpecError, f"{e.func} takes {what}", e)
        return vals

    def call_special(self, e: ast.Call, ctx, env) -> Value:
        """Calls with arguments fixed in the spec: grid, dct_filters, diff_filters, otf."""
        order = "C"
        if e.func == "dct_filters" and len(e.kwargs) == 1 and e.kwargs[0][0] == "order":
            got = e.kwargs[0][1]
            if not (isinstance(got, ast.Name) and got.id in ("C", "F")):
                raise self.err(SpecError, "dct_filters takes order = C (row-major atoms, the "
                               "default) or order = F (column-major, as MATLAB reshapes)", got)
            order, e = got.id, replace(e, kwargs=())
        if e.kwargs or e.bound:
            raise self.err(SpecError, f"{e.func}() takes no keyword arguments", e,
                           "dct_filters takes order = C | F" if e.func == "dct_filters" else None)
        if e.func == "grid":
            n, lo, hi = self._int_args(e, e.args, 3, "a count and a range: grid(101, -1, 1)")
            if n < 2 or n != int(n) or not lo < hi:
                raise self.err(SpecError, "grid needs at least 2 points and lo < hi", e)
            return Value("grid", (), (int(n), lo, hi), (int(n),), False, "real", e.span)
        if e.func == "dct_filters":
            (size,) = self._int_args(e, e.args, 1, "the filter size: dct_filters(3)")
            if size < 2 or size != int(size):
                raise self.err(SpecError, "dct_filters needs a size of at least 2", e)
            k = int(size)
            return Value("dct_filters", (), (k, order), (k * k - 1, k, k), False, "real", e.span)
        if e.func == "diff_filters":
            self._int_args(e, e.args, 0, "no arguments")
            return Value("diff_filters", (), (), (2, 3, 3), False, "real", e.span)
        # otf(H, [h, w])
        if len(e.args) != 2 or not isinstance(e.args[1], ast.ListExpr):
            raise self.err(SpecError, "write otf(H, [h, w])", e)
        h = self.expr(e.args[0], ctx, env)
        if len(h.shape) != 3 or h.batched:
            raise self.err(ShapeError, f"otf takes a filter bank [L, a, b], got {fmt_shape(h.shape)}",
                           e.args[0])
        size = []
        for item in e.args[1].items:
            if isinstance(item, ast.Name) and item.id in self.dims:
                size.append(self.dims[item.id] or item.id)
            elif isinstance(item, ast.Number) and item.value == int(item.value) and item.value > 0:
                size.append(int(item.value))
            else:
                raise self.err(ShapeError, "an image size is a dim name or a positive integer", item)
        if len(size) != 2:
            raise self.err(ShapeError, "otf needs the image size [h, w]", e.args[1])
        return Value("otf", (h,), (), (h.shape[0],) + tuple(size), False, "complex", e.span)

    def call_reshape(self, e: ast.Call, ctx, env) -> Value:
        """`reshape(v, [c, h, w])` and `vec(v)`: the same entries in another shape."""
        want = 1 if e.func == "vec" else 2
        if len(e.args) != want or e.kwargs or e.bound:
            raise self.err(SpecError, "write reshape(v, [1, 33, 33]) or vec(v)", e)
        v = self.expr(e.args[0], ctx, env)
        if e.func == "vec":
            shape = (_size(v.shape),) if all(isinstance(d, int) for d in v.shape) else None
            if shape is None:
                raise self.err(ShapeError, "vec needs a shape of known sizes", e)
        else:
            lst = e.args[1]
            if not isinstance(lst, ast.ListExpr):
                raise self.err(SpecError, "the new shape is a list: reshape(v, [1, 33, 33])", lst)
            shape = []
            for item in lst.items:
                if isinstance(item, ast.Number) and item.value == int(item.value) and item.value > 0:
                    shape.append(int(item.value))
                elif isinstance(item, ast.Name) and item.id in self.dims:
                    shape.append(self.dims[item.id] or item.id)
                else:
                    raise self.err(ShapeError, "a shape entry is a positive integer or a dim name",
                                   item, closest(getattr(item, "id", ""), self.dims))
            shape = tuple(shape)
        known = all(isinstance(d, int) for d in shape + tuple(v.shape))
        if known and _size(shape) != _size(v.shape):
            raise self.err(ShapeError, f"cannot reshape {fmt_shape(v.shape)} ({_size(v.shape)} "
                           f"entries) to {fmt_shape(shape)} ({_size(shape)} entries)", e)
        return Value("reshape", (v,), (shape,), shape, v.batched, v.dtype, e.span)

    def block(self, s: ast.Block) -> None:
        _blocks.check_block(self, s)

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

    # ---- statements ----
    def run(self) -> Program:
        stmts = self.spec.statements
        name, desc, iterate, outputs, loss_node, final = None, None, None, None, None, None
        for s in stmts:
            kind = type(s).__name__
            if kind == "Algorithm":
                if name is not None:
                    raise self.err(SpecError, "a spec names one algorithm", s)
                if reserved_reason(s.name, "algorithm"):
                    raise self.err(NameError_, reserved_reason(s.name, "algorithm"), s, "rename it")
                name, desc = s.name, s.description
            elif kind == "Dims":
                for d in s.dims:
                    self.declare(d.name, "dim", None, d)
                    self.dims[d.name] = d.value
                    if d.value is not None:
                        self.symbols[d.name] = Symbol(
                            "dim", Value("number", (), (float(d.value),), span=d.span), d.span)
                    else:
                        self.symbols[d.name] = Symbol(
                            "dim", Value("dim", (), (d.name,), span=d.span), d.span)
            elif kind == "TensorDecl":
                self.tensors[s.name], leaf = _linop.declare(self, s)
                self.declare(s.name, s.kind, leaf, s)
            elif kind == "Const":
                _linop.reject(self, v := self.expr(s.expr, "const"), s.expr)
                if v.shape == IDENT:
                    raise self.err(ShapeError, "the size of I is unknown here", s.expr,
                                   "use I inside a product or sum with a square matrix")
                self.consts[s.name] = v.named(s.name)
                leaf = self.consts[s.name] if v.is_number else Value("const", (), (s.name,), v.shape, False, v.dtype,
                                                    s.span)
                self.declare(s.name, "const", leaf, s)
            elif kind == "Cost":
                self.declare(s.name, "cost", None, s)
                self.costs[s.name] = s
            elif kind == "Learn":
                self.learn(s)
            elif kind == "State":
                shape = self.shape_of(s.shape)
                v = self.fit_shape(self.expr(s.init, "state", {}), shape, s.init, f"state {s.name}")
                self.states[s.name] = StateVar(s.name, shape, s.dtype, v, v.batched, s.span)
                self.declare(s.name, "state", Value("state", (), (s.name,), shape, v.batched,
                                                    s.dtype, s.span), s)
            elif kind == "Iterate":
                if iterate is not None:
                    raise self.err(SpecError, "a spec has one iterate block", s,
                                   "put every update of one layer in a single iterate block")
                iterate = s
            elif kind == "Final":
                if final is not None:
                    raise self.err(SpecError, "a spec has one `finally` line", s,
                                   f"list every state there: finally {', '.join(final.names + s.names)}")
                final = s
            elif kind == "Output":
                outputs = s
            elif kind == "Loss":
                loss_node = s
            elif kind == "Block":
                self.block(s)
        if iterate is None:
            raise self.err(SpecError, "the spec has no `iterate K = N:` block", Span(self.spec.file, 1, 1),
                           "add the update equations under `iterate K = 16:`")
        if not self.states:
            raise self.err(SpecError, "the spec declares no state", iterate,
                           "declare what the iteration updates, e.g. `state x : [m] = 0`")
        for c in self.costs.values():
            self.check_cost(c)
        updates, equations, aux = self.body(iterate)
        derive.finish(self, updates)
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
        self.count_name = iterate.count_name
        loss = self.loss(loss_node) if loss_node is not None else None
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
        tying = [m for m in s.modifiers if m in _MODIFIERS_TYING]
        cons = [m for m in s.modifiers if m.split("(")[0] in _MODIFIERS_CONSTRAINT]
        for m in s.modifiers:
            if m not in CONSTRAINTS and m not in _MODIFIERS_TYING:
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
        lrn = Learnable(s.name, shape, v, tying[0] if tying else "shared",
                        cons[0] if cons else None, s.span)
        self.learnables[s.name] = lrn
        self.declare(s.name, "learn", Value("param", (), (s.name,), shape, False, "real", s.span), s)

    def check_cost(self, c: ast.Cost) -> None:
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
                    v = self.expr(a.expr, "body", env)
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
                    if v.shape == IDENT or (v.shape != st.shape and v.shape != ()):
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
        count = Value("count", (), (), (), False, "real", s.span)  # K: the number of layers
        v = self.expr(s.expr, "loss", {self.count_name: count})
        if v.shape != ():
            raise self.err(ShapeError, f"the loss must be a scalar, got {fmt_shape(v.shape)}", s.expr,
                           "use mse(x, x_star) or wrap the expression in sum()")
        if v.batched:  # a per-sample loss is averaged over the batch
            v = Value("batch_mean", (v,), (), (), False, v.dtype, s.span)
        return v


def _size(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def check(spec: ast.Spec, K: int | None = None) -> Program:
    """Resolve names and infer shapes of a parsed spec; returns the `Program` of one iteration."""
    from .templates import expand
    return Checker(expand(spec), K).run()
