"""The checker's passes and their one interface to derivation: derivation modules read the checker
only through `scope.Scope`, every statement class has a declarations handler, the compiler's
modules import each other without cycles, and solver templates build AST nodes (never re-parse)."""
import ast as pyast
from pathlib import Path

import networkx as nx
import pytest

import unroll
from unroll.compiler import check as check_mod
from unroll.compiler.declarations import HANDLERS, Checker
from unroll.compiler.scope import Scope
from unroll.compiler.templates import expand
from unroll.dsl import ast, parser

COMPILER = Path(check_mod.__file__).parent
DERIVATION = ["derive", "derivations", "prox", "quadratic", "rewrite", "implicit"]
CHECKER_INTERNALS = {"check", "declarations", "shapes", "resolve", "special"}


def _tree(module: str) -> pyast.Module:
    return pyast.parse((COMPILER / f"{module}.py").read_text(encoding="utf-8"))


def _relative_imports(tree: pyast.Module) -> set[str]:
    """Compiler modules imported anywhere in `tree` (top level or inside functions)."""
    out = set()
    for n in pyast.walk(tree):
        if isinstance(n, pyast.ImportFrom) and n.level == 1:
            names = [n.module] if n.module else [a.name for a in n.names]
            out |= {m.split(".")[0] for m in names if (COMPILER / f"{m.split('.')[0]}.py").exists()}
    return out


@pytest.mark.parametrize("module", DERIVATION)
def test_derivation_reads_the_checker_only_through_scope(module):
    tree = _tree(module)
    members = {m for m in dir(Scope) if not m.startswith("_")}
    used = {n.attr for n in pyast.walk(tree) if isinstance(n, pyast.Attribute)
            and isinstance(n.value, pyast.Name) and n.value.id == "scope"}
    assert used <= members, used - members
    assert not {n.id for n in pyast.walk(tree) if isinstance(n, pyast.Name)} & {"checker", "ck"}
    assert not _relative_imports(tree) & CHECKER_INTERNALS


def test_the_checker_is_a_scope():
    spec = unroll.parse("zoo:ista")
    ck = Checker(spec)
    ck.run()
    assert isinstance(ck, Scope)
    assert ck.state("x").op == "state" and ck.state("A") is None
    assert ck.leaf("A").op == "operator" and ck.leaf("f") is None and ck.leaf("nope") is None


def test_every_statement_class_has_a_declarations_handler():
    statements = {c for c in vars(ast).values() if isinstance(c, type) and issubclass(c, ast.Node)
                  and c.__module__ == ast.__name__ and not issubclass(c, ast.Expr)
                  and c not in (ast.Node, ast.Spec, ast.Dim, ast.DimDecl, ast.IndexItem, ast.Layer,
                                ast.Assign)}
    assert statements - {ast.Solve} == set(HANDLERS)  # solve is expanded before checking


def test_compiler_modules_import_without_cycles():
    g = nx.DiGraph()
    for path in COMPILER.glob("*.py"):
        for dep in _relative_imports(pyast.parse(path.read_text(encoding="utf-8"))):
            g.add_edge(path.stem, dep)
    assert not list(nx.simple_cycles(g))


def test_templates_build_ast_without_the_parser(monkeypatch):
    spec = unroll.parse("zoo:fista_template")

    def no_parse(*a, **k):
        raise AssertionError("a template re-parsed spec text")

    monkeypatch.setattr(parser, "parse", no_parse)
    assert list(check_mod.check(spec).states) == ["x", "z", "t"]
    written = [s for s in expand(spec).statements if isinstance(s, (ast.State, ast.Iterate))][1:]
    assert [type(s) for s in written] == [ast.State, ast.State, ast.Iterate]
    assert {n.span.line for s in written for n in _nodes(s)} == {16}  # the `solve` line


def _nodes(node):
    yield node
    for v in vars(node).values():
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, ast.Node):
                yield from _nodes(x)
            elif isinstance(x, tuple):
                yield from (y for z in x if isinstance(z, ast.Node) for y in _nodes(z))


def test_templates_take_any_state_shape_and_multiline_options():
    """The text templates wrote a compound dim (`2*m`) as a Python tuple and cut an option that
    spans lines; AST templates keep both as written."""
    spec = ("dims n, m\noperator A : [n, 2*m]\ninput y : [n]\n"
            "cost f(x) = 1/2 * ||A x - y||^2\ncost g(x) = 0.1 * ||x||_1\n"
            "state x : [2*m] = 0\nsolve f + g with fista(L = norm2(A)^2\n"
            "                                     + 1)\noutput x\n")
    p = unroll.check(spec)
    assert p.states["z"].shape == (p.states["x"].shape[0],)
    assert p.equations[0][1].span.line == 7
