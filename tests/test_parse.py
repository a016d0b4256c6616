"""The parser: zoo specs parse to the expected AST, expressions bind as written (juxtaposition,
transpose, powers, norms), and every node keeps its source span."""
import pytest

import unroll
from unroll.dsl import ast
from unroll.dsl.parser import parse


def _expr(text: str) -> ast.Expr:
    return parse(f"const c = {text}\n").statements[0].expr


def _show(e) -> str:
    """A fully parenthesised rendering of an expression."""
    if isinstance(e, ast.Number):
        return f"{e.value:g}"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.BinOp):
        return f"({_show(e.left)} {e.op} {_show(e.right)})"
    if isinstance(e, ast.Neg):
        return f"(-{_show(e.operand)})"
    if isinstance(e, ast.Transpose):
        return f"{_show(e.operand)}'"
    if isinstance(e, ast.Norm):
        return f"||{_show(e.operand)}||_{e.p}"
    if isinstance(e, ast.Call):
        args = [_show(a) for a in e.args] + [f"{k}={_show(v)}" for k, v in e.kwargs]
        return f"{e.func}({', '.join(args)})"
    raise AssertionError(type(e))


@pytest.mark.parametrize("name", unroll.zoo.names())
def test_zoo_specs_parse_with_spans(name):
    spec = unroll.parse(f"zoo:{name}")
    assert spec.file == f"{name}.unroll"
    kinds = [type(s).__name__ for s in spec.statements]
    assert kinds[0] == "Algorithm" and "Output" in kinds
    lines = spec.source.splitlines()
    for s in spec.statements:
        assert s.span.file == spec.file and 1 <= s.span.line <= len(lines)
        first_word = lines[s.span.line - 1][s.span.col - 1:].split()[0]
        assert first_word in ("algorithm", "dims", "operator", "input", "target", "const", "cost",
                              "learn", "state", "iterate", "output", "loss", "block", "solve",
                              "finally")


def test_lista_ast():
    spec = unroll.parse("zoo:lista")
    by = {type(s).__name__: s for s in spec.statements}
    assert by["Algorithm"].name == "LISTA" and "Gregor" in by["Algorithm"].description
    assert [d.name for d in by["Dims"].dims] == ["n", "m"]
    learns = [s for s in spec.statements if isinstance(s, ast.Learn)]
    assert [(s.name, s.modifiers) for s in learns] == [
        ("W_e", ("shared",)), ("S", ("shared",)), ("theta", ("shared", "positive"))]
    assert [d.value for d in learns[0].shape] == ["m", "n"]
    it = by["Iterate"]
    assert (it.count_name, it.count, len(it.body)) == ("K", 16, 1)
    assert _show(it.body[0].expr) == "soft(((W_e matmul y) add (S matmul x)), theta)"
    assert it.body[0].span.line == 21 and it.body[0].span.col == 5
    assert by["Output"].names == ("x",)
    assert _show(by["Loss"].expr) == "mse(x, x_star)"


@pytest.mark.parametrize("text,want", [
    ("A x - y", "((A matmul x) sub y)"),
    ("A' (A x - y) / L", "((A' matmul ((A matmul x) sub y)) div L)"),
    ("A'(A x - y)", "(A' matmul ((A matmul x) sub y))"),
    ("I - A' A / L", "(I sub ((A' matmul A) div L))"),
    ("1/2 * ||A x - y||^2", "((1 div 2) mul (||((A matmul x) sub y)||_2 pow 2))"),
    ("lam * ||x||_1", "(lam mul ||x||_1)"),
    ("-x^2", "(-(x pow 2))"),
    ("2 x", "(2 matmul x)"),  # a scalar product; the checker turns it into mul
    ("x 2", None),  # but a number cannot follow by juxtaposition
    ("a ^ b ^ c", "(a pow (b pow c))"),
    ("x''", "x''"),
    ("soft(x, t) + max(x, 0)", "(soft(x, t) add max(x, 0))"),
    ("A @ x", "(A matmul x)"),
    ("f(x, key=1)", "f(x, key=1)"),
    ("||x||_inf + ||x||_0", "(||x||_inf add ||x||_0)"),
    ("1e-3 * .5 + 2.", "((0.001 mul 0.5) add 2)"),
])
def test_expression_structure(text, want):
    if want is None:
        with pytest.raises(unroll.SpecError):
            _expr(text)
        return
    assert _show(_expr(text)) == want


def test_spans_of_subexpressions():
    e = _expr("soft(W y + S x, theta)")
    assert (e.span.line, e.span.col, e.span.end_col) == (1, 11, 33)
    inner = e.args[0]
    assert (inner.span.col, inner.span.end_col) == (16, 25)
    assert (inner.right.span.col, inner.right.span.end_col) == (22, 25)


def test_comments_blank_lines_and_continuations():
    text = ("# header\n\nalgorithm X  # trailing\n"
            "dims n, \\\n     m = 3\n"
            "input y : [n]\nstate x : [n] = 0\n\n"
            "iterate K = 2:\n    # a comment in the body\n    x = x + y\n\n    x = x\noutput x\n")
    spec = parse(text)
    kinds = [type(s).__name__ for s in spec.statements]
    assert kinds == ["Algorithm", "Dims", "TensorDecl", "State", "Iterate", "Output"]
    dims = spec.statements[1].dims
    assert [(d.name, d.value) for d in dims] == [("n", None), ("m", 3)]
    assert len(spec.statements[4].body) == 2


def test_dtypes_aux_and_lists():
    text = ("dims n\ninput y : [n] complex\nstate x : [n] complex = y\niterate K = 1:\n"
            "    x = x\n    aux r = sum(abs(x))\noutput x\n")
    spec = parse(text)
    assert spec.statements[1].dtype == "complex" and spec.statements[2].dtype == "complex"
    body = spec.statements[3].body
    assert body[1].aux and body[1].name == "r"
    assert isinstance(_expr("[1, 2]"), ast.ListExpr)


def test_parse_accepts_path_zoo_name_and_text(tmp_path):
    p = tmp_path / "s.unroll"
    text = unroll.zoo.path("ista").read_text()
    p.write_text(text)
    a, b, c, d = unroll.parse(p), unroll.parse(str(p)), unroll.parse("ista"), unroll.parse(text)
    assert a.statements == b.statements == c.statements == d.statements
    assert d.file == "<spec>" and a.file == str(p)
    with pytest.raises(FileNotFoundError, match="zoo"):
        unroll.parse("no_such_spec")
