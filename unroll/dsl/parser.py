"""Parse `.unroll` text into the AST: the lark grammar in `unroll.lark` beside its Transformer.

`parse(text, file)` returns an `ast.Spec`; any lark error becomes a `SpecSyntaxError` at the
offending line and column, named from a table of common mistakes where one matches.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import DedentError, Indenter

from ..errors import Span, SpecSyntaxError
from ..limits import MAX_DEPTH, MAX_DIM, MAX_K
from . import ast

__all__ = ["parse", "parse_file", "BAD_EXAMPLES"]

_GRAMMAR = Path(__file__).with_name("unroll.lark")


class _SpecIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def handle_NL(self, token: Token):  # noqa: N802 - lark's hook name
        try:
            yield from super().handle_NL(token)
        except DedentError:
            raise _BadDedent(token) from None


class _BadDedent(Exception):
    """A line dedented to a column that no enclosing block starts at (lark gives no position)."""

    def __init__(self, token: Token):
        super().__init__("inconsistent dedent")
        self.token = token


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", postlex=_SpecIndenter(),
                propagate_positions=True, maybe_placeholders=True)


def _span(file: str, meta_or_token) -> Span:
    m = meta_or_token
    if getattr(m, "empty", False):
        return Span(file)
    return Span(file, m.line, m.column, m.end_line, m.end_column)


class _ToAst(Transformer):
    """Builds AST nodes from the parse tree; one method per grammar rule, nothing else."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _s(self, meta) -> Span:
        return _span(self.file, meta)

    # ---- expressions ----
    @v_args(meta=True)
    def number(self, meta, c):
        return ast.Number(self._s(meta), float(c[0]))

    @v_args(meta=True)
    def name(self, meta, c):
        return ast.Name(self._s(meta), str(c[0]))

    def _bin(op):  # noqa: N805 - a small factory for the binary rules
        @v_args(meta=True)
        def rule(self, meta, c):
            return ast.BinOp(self._s(meta), op, c[0], c[1])
        return rule

    add, sub, mul, div = _bin("add"), _bin("sub"), _bin("mul"), _bin("div")
    matmul, juxt, pow = _bin("matmul"), _bin("matmul"), _bin("pow")

    @v_args(meta=True)
    def neg(self, meta, c):
        return ast.Neg(self._s(meta), c[0])

    @v_args(meta=True)
    def transpose(self, meta, c):
        return ast.Transpose(self._s(meta), c[0])

    @v_args(meta=True)
    def norm(self, meta, c):
        sub = str(c[1])[1:] if c[1] is not None else "2"
        return ast.Norm(self._s(meta), c[0], sub)

    @v_args(meta=True)
    def listexpr(self, meta, c):
        return ast.ListExpr(self._s(meta), tuple(c))

    def kwarg(self, c):
        return ("kw", str(c[0]), c[1])

    def bound_arg(self, c):
        return ("bound", str(c[0]), c[1])

    @v_args(meta=True)
    def call(self, meta, c):
        args, kwargs, bound = [], [], []
        for a in c[1:]:
            if a is None:
                continue
            if isinstance(a, tuple):
                (kwargs if a[0] == "kw" else bound).append((a[1], a[2]))
            else:
                args.append(a)
        return ast.Call(self._s(meta), str(c[0]), tuple(args), tuple(kwargs), tuple(bound))

    # ---- declarations ----
    @v_args(meta=True)
    def dim_name(self, meta, c):
        return ast.Dim(self._s(meta), str(c[0]))

    @v_args(meta=True)
    def dim_int(self, meta, c):
        return ast.Dim(self._s(meta), int(c[0]))

    def _dim_op(op):  # noqa: N805
        @v_args(meta=True)
        def rule(self, meta, c):
            return ast.Dim(self._s(meta), (op, c[0], c[1]))
        return rule

    dim_add, dim_sub, dim_mul = _dim_op("add"), _dim_op("sub"), _dim_op("mul")

    @v_args(meta=True)
    def index(self, meta, c):
        return ast.Index(self._s(meta), c[0], tuple(c[1:]))

    @v_args(meta=True)
    def idx_at(self, meta, c):
        return ast.IndexItem(self._s(meta), at=c[0])

    @v_args(meta=True)
    def idx_slice(self, meta, c):
        return ast.IndexItem(self._s(meta), lo=c[0], hi=c[1], is_slice=True)

    def shape(self, c):
        return tuple(d for d in c if d is not None)

    @v_args(meta=True)
    def algorithm(self, meta, c):
        desc = str(c[1])[1:-1] if c[1] is not None else None
        return ast.Algorithm(self._s(meta), str(c[0]), desc)

    @v_args(meta=True)
    def dim_decl(self, meta, c):
        return ast.DimDecl(self._s(meta), str(c[0]), int(c[1]) if c[1] is not None else None)

    @v_args(meta=True)
    def dims(self, meta, c):
        return ast.Dims(self._s(meta), tuple(c))

    def _tensor(kind):  # noqa: N805
        @v_args(meta=True)
        def rule(self, meta, c):
            return ast.TensorDecl(self._s(meta), kind, str(c[0]), c[1], str(c[2] or "real"))
        return rule

    input, target = _tensor("input"), _tensor("target")

    @v_args(meta=True)
    def operator(self, meta, c):
        return ast.TensorDecl(self._s(meta), "operator", str(c[0]), c[1], str(c[2] or "real"),
                              default=c[3])

    @v_args(meta=True)
    def linop(self, meta, c):
        return ast.TensorDecl(self._s(meta), "operator", str(c[0]), c[1], "real", c[2])

    @v_args(meta=True)
    def const(self, meta, c):
        return ast.Const(self._s(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def cost(self, meta, c):
        return ast.Cost(self._s(meta), str(c[0]), tuple(str(p) for p in c[1:-1]), c[-1])

    @v_args(meta=True)
    def modifier(self, meta, c):
        return ast.Word(str(c[0]) if c[1] is None else f"{c[0]}({c[1]})", self._s(meta))

    @v_args(meta=True)
    def learn(self, meta, c):
        return ast.Learn(self._s(meta), str(c[0]), c[1], c[2],
                         tuple(m if isinstance(m, ast.Word) else str(m) for m in c[3:]))

    @v_args(meta=True)
    def state(self, meta, c):
        return ast.State(self._s(meta), str(c[0]), c[1], str(c[2] or "real"), c[3])

    @v_args(meta=True)
    def output(self, meta, c):
        return ast.Output(self._s(meta), tuple(str(n) for n in c))

    @v_args(meta=True)
    def final(self, meta, c):
        return ast.Final(self._s(meta), tuple(str(n) for n in c))

    @v_args(meta=True)
    def loss(self, meta, c):
        return ast.Loss(self._s(meta), c[0])

    @v_args(meta=True)
    def solve(self, meta, c):
        how = c[1]
        if isinstance(how, ast.Call):
            return ast.Solve(self._s(meta), c[0], how.func, how.kwargs)
        return ast.Solve(self._s(meta), c[0], str(how))

    @v_args(meta=True)
    def assign(self, meta, c):
        return ast.Assign(self._s(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def aux_assign(self, meta, c):
        return ast.Assign(self._s(meta), str(c[0]), c[1], aux=True)

    @v_args(meta=True)
    def iterate(self, meta, c):
        return ast.Iterate(self._s(meta), str(c[0]), int(c[1]), tuple(c[2:]))

    def channels(self, c):
        return (c[0], c[1])

    def size_arg(self, c):
        d = c[0]  # a bare name is a flag (`bias`) or a dim; the compiler decides
        return d.value if isinstance(d.value, str) else d

    def init_arg(self, c):
        return ("init", str(c[0]), str(c[1]), float(c[2]) if c[2] is not None else 1.0)

    @v_args(meta=True)
    def layer(self, meta, c):
        return ast.Layer(self._s(meta), str(c[0]), tuple(a for a in c[1:] if a is not None))

    @v_args(meta=True)
    def block(self, meta, c):
        layers = tuple(x for x in c[3:] if isinstance(x, ast.Layer))
        mods = tuple(str(x) for x in c[3:] if isinstance(x, Token))
        return ast.Block(self._s(meta), str(c[0]), c[1], c[2], layers, mods)

    def start(self, c):
        return tuple(c)


# NOTE: named mistakes. Each entry is (message, hint, example texts that fail the same way);
# lark's match_examples compares parser states, and the tests parse every example here.
BAD_EXAMPLES: list[tuple[str, str, list[str]]] = [
    ("missing '=' in a declaration", "write `const name = expression`",
     ["const lam 0.1\n", "const L norm2(A)\n"]),
    ("missing shape after ':'", "shapes are written in brackets, e.g. `: [m, n]`",
     ["operator A : n\n", "input y : m\n", "learn W : m = 0\n"]),
    ("missing closing parenthesis", "check that every '(' has its ')'",
     ["const a = (1 + 2\n", "const a = soft(x, 1\n"]),
    ("iterate block is empty or not indented", "indent the update equations under `iterate K = N:`",
     ["iterate K = 3:\nx = 1\n", "iterate K = 3:\n"]),
    ("missing ':' after iterate", "write `iterate K = 16:`",
     ["iterate K = 16\n"]),
    ("expression ends too early", "an operator needs an operand on both sides",
     ["const a = 1 +\n", "const a = 2 *\n", "const a = -\n"]),
    ("missing initial value", "a learnable needs one: `learn W : [m, n] = 0.1 shared`",
     ["learn W : [m] shared\n", "learn W : [m] positive\n"]),
    ("unclosed norm bars", "a norm is written ||v||, ||v||_1 or ||v||^2",
     ["const a = ||x\n", "const a = ||x - y\n"]),
]


def _named(err: UnexpectedInput, text: str) -> tuple[str, str] | None:
    # NOTE: lark's match_examples compares whole parser stacks, so an example would only match a
    # mistake on a spec's first statement; comparing the current LALR state and accepts does not
    # depend on what came before.
    state = getattr(err, "state", None)
    if state is None:
        return None
    for msg, hint, examples in BAD_EXAMPLES:
        for ex in examples:
            try:
                _parser().parse(ex)
            except UnexpectedInput as ut:
                other = getattr(ut, "state", None)
                if (other is not None and other.position == state.position
                        and getattr(ut, "accepts", None) == getattr(err, "accepts", None)):
                    return msg, hint
    return None


def _describe(err: UnexpectedInput) -> str:
    if isinstance(err, UnexpectedCharacters):
        return f"unexpected character {err.char!r}"
    if isinstance(err, UnexpectedEOF):
        return "unexpected end of file"
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            return "unexpected end of file"
        if tok.type == "_NL":
            return "unexpected end of line"
        if tok.type == "_DEDENT":
            return "unexpected end of indented block"
        if tok.type == "_INDENT":
            return "unexpected indentation"
        if tok.type in ("NAME", "NUMBER", "INT", "STRING") or tok.type not in _literals():
            what = {"NAME": "name", "NUMBER": "number", "INT": "integer", "STRING": "string"}.get(
                tok.type, "symbol")
            return f"unexpected {what} {str(tok).strip()!r}"
        return f"unexpected {str(tok).strip()!r}"  # punctuation and keywords: their own text
    return "cannot parse"


@lru_cache(maxsize=1)
def _literals() -> dict[str, str]:
    """Terminal name -> its fixed text, for terminals that are a literal string (`->`, `||`, `-`):
    hints show that text, never lark's internal names (`__ANON_0`, `MINUS`)."""
    out = {}
    for t in _parser().terminals:
        if t.pattern.type == "str":
            out[t.name] = t.pattern.value
        elif t.name.startswith("__ANON"):
            out[t.name] = t.pattern.value.replace("\\", "")
    return out


def _expected(err: UnexpectedInput) -> str | None:
    exp = getattr(err, "expected", None) or getattr(err, "allowed", None)
    if not exp:
        return None
    pretty = {"NAME": "a name", "NUMBER": "a number", "INT": "an integer", "_NL": "end of line",
              "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='",
              "COLON": "':'", "COMMA": "','", "STRING": "a quoted string",
              "_DEDENT": "the end of the indented block", "_INDENT": "an indented line",
              "NORMSUB": "a norm subscript (_1, _2, _0, _inf)", "DTYPE": "'complex' or 'real'",
              "MODIFIER": "shared, per_layer, positive or unit"}

    def show(term: str) -> str:
        if term in pretty:
            return pretty[term]
        if term in _literals():
            return f"'{_literals()[term]}'"
        return f"'{term.lower()}'" if term.isalpha() else term.lower()  # keywords: 'aux', 'iterate'
    names = sorted({show(e) for e in exp if not e.startswith("__IGNORE")})
    if not names or len(names) > 6:
        return None
    return "expected " + ", ".join(names)


def _line_col(err: UnexpectedInput, text: str) -> tuple[int, int]:
    line, col = getattr(err, "line", -1), getattr(err, "column", -1)
    tok = getattr(err, "token", None)
    if tok is not None and tok.type in ("$END",) or line in (-1, None):
        lines = text.rstrip("\n").splitlines() or [""]
        return len(lines), len(lines[-1]) + 1
    if tok is not None and tok.type == "_NL":
        # The newline token starts at the end of the offending line.
        return tok.line, tok.column
    if tok is not None and tok.type == "_INDENT":
        # The indent borrows the newline's position; the indented text starts where it ends.
        return tok.end_line, tok.end_column
    return line, col


def parse(text: str, file: str = "<spec>") -> ast.Spec:
    """Parse spec text into an `ast.Spec`; raises `SpecSyntaxError` with line, column and hint."""
    from .source import check_spec_text
    text = check_spec_text(text, file)
    src = text if text.endswith("\n") else text + "\n"
    try:
        tree = _parser().parse(src)
    except _BadDedent as err:
        tok = err.token
        raise SpecSyntaxError("this line's indentation matches no enclosing block",
                              Span(file, tok.end_line, tok.end_column, tok.end_line, tok.end_column + 1),
                              "indent every update equation in the iterate body by the same amount",
                              text) from None
    except UnexpectedInput as err:
        line, col = _line_col(err, src)
        unclosed = _unclosed_bracket(src, line, col)
        if unclosed is not None:
            char, bl, bc, end = unclosed
            what = "parenthesis" if char == "(" else "bracket"
            raise SpecSyntaxError(f"missing closing {what}", Span(file, bl, end, bl, end + 1),
                                  f"the '{char}' at line {bl}, column {bc} is not closed before the "
                                  "next statement", text) from None
        named = _named(err, src)
        if named:
            msg, hint = named
        else:
            msg, hint = _describe(err), _expected(err)
            if hint is None and isinstance(err, UnexpectedCharacters):
                hint = "specs use names, numbers, + - * / ^ ' , : = | and brackets; # starts a comment"
        raise SpecSyntaxError(msg, Span(file, line, col, line, col + 1), hint, text) from None
    _within_limits(tree, file, text)
    stmts = _ToAst(file).transform(tree)
    return ast.Spec(Span(file, 1, 1), file, text, stmts)


_COUNTS = {"iterate": ("K", MAX_K), "dim_decl": ("a dim size", MAX_DIM), "dim_int": ("a size", MAX_DIM),
           "channels": ("a channel count", MAX_DIM), "int_arg": ("a layer size", MAX_DIM)}


def _within_limits(tree, file: str, text: str) -> None:
    """Check the parse tree, without recursion, against the documented limits: expression depth,
    finite numbers, positive sizes and counts no larger than the limits."""
    def fail(msg: str, tok, hint: str | None = None):
        line, col = getattr(tok, "line", 1) or 1, getattr(tok, "column", 1) or 1
        end = getattr(tok, "end_column", None) or col + 1
        raise SpecSyntaxError(msg, Span(file, line, col, line, end), hint, text)

    stack = [(tree, 0, None)]
    while stack:
        node, depth, anchor = stack.pop()
        if isinstance(node, Token):
            if node.type == "NUMBER":
                try:
                    ok = math.isfinite(float(node))
                except ValueError:
                    ok = False
                if not ok:
                    fail(f"the number {str(node)[:30]} is too large for a 64-bit float", node)
            continue
        if node is None:
            continue
        if depth > MAX_DEPTH:
            fail(f"expression nested more than {MAX_DEPTH} levels deep", _meta_token(anchor),
                 "split it into several consts or assignments (a sum of many terms nests one level "
                 "per term)")
        if node.data in _COUNTS:
            what, limit = _COUNTS[node.data]
            for tok in node.children:
                if isinstance(tok, Token) and tok.type == "INT":
                    n = int(tok)
                    if n < 1 and node.data == "dim_decl":
                        fail(f"{what} must be at least 1, got {n}", tok)
                    if n > limit:
                        fail(f"{what} of {str(tok)[:30]} is over the limit of {limit:,}", tok,
                             "see the limits in docs/cli.md")
        nested = depth + 1 if node.data in _NESTING else depth
        if anchor is None and node.data in _NESTING:
            anchor = node  # the outermost operation of this expression: where errors point
        stack.extend((c, nested, anchor) for c in node.children)


# Rules that add a level of expression nesting (the later passes recurse once per level).
_NESTING = {"add", "sub", "mul", "div", "matmul", "juxt", "pow", "neg", "transpose", "norm", "call",
            "listexpr", "kwarg", "bound_arg"}


_STATEMENT = re.compile(r"\s*(?:(?:algorithm|dims|operator|input|target|const|cost|learn|state|"
                        r"output|loss|solve|block|iterate|aux)\b|[A-Za-z_]\w*\s*=(?!=))")


def _unclosed_bracket(src: str, line: int, col: int) -> tuple[str, int, int, int] | None:
    """(bracket, line, column, column after its line's text) of a '(' or '[' still open where the
    parser failed, when a later line at no deeper indentation starts a new statement: the
    indenter drops newlines inside brackets, so lark reports such a mistake lines later."""
    lines = src.split("\n")
    stack: list[tuple[str, int, int]] = []
    for i, text in enumerate(lines[:line], start=1):
        limit = col - 1 if i == line else len(text)
        in_string = False
        for j, ch in enumerate(text[:limit]):
            if in_string:
                in_string = ch != '"'
            elif ch == '"':
                in_string = True
            elif ch == "#":
                break
            elif ch in "([":
                stack.append((ch, i, j + 1))
            elif ch in ")]" and stack and stack[-1][0] == "([" [")]".index(ch)]:
                stack.pop()
    if not stack:
        return None
    char, bl, bc = stack[-1]
    if bl >= line:
        return None
    indent = len(lines[bl - 1]) - len(lines[bl - 1].lstrip())
    for text in lines[bl:line]:
        if text.strip() and not text.lstrip().startswith("#") and \
                len(text) - len(text.lstrip()) <= indent and _STATEMENT.match(text):
            body = lines[bl - 1].split("#")[0].rstrip()
            return char, bl, bc, len(body) + 1
    return None


def _meta_token(node) -> Token:
    """A token-like position (line, column, end_column) for a tree node."""
    m = node.meta
    end = m.end_column if m.end_line == m.line else m.column + 1
    return Token("EXPR", "", line=m.line, column=m.column, end_column=end)
