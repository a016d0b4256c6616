"""Solver templates and grad/prox forms compile to the same graphs as the hand-written steps."""
import networkx as nx
import numpy as np
import pytest
import torch
from networkx.algorithms.isomorphism import categorical_edge_match, categorical_node_match

import unroll
from unroll.compiler.symbolic import unicode
from unroll.errors import SpecError


def _same_graph(a: str, b: str, K: int = 3) -> bool:
    A = np.random.default_rng(0).standard_normal((10, 16))
    ga, gb = unroll.unfold(a, K=K, A=A).nx, unroll.unfold(b, K=K, A=A).nx
    return nx.is_isomorphic(ga, gb, node_match=categorical_node_match(
        ["op", "shape", "layer", "label"], [None] * 4), edge_match=categorical_edge_match("pos", 0))


@pytest.mark.parametrize("derived,hand", [("zoo:ista_grad_prox", "zoo:ista"),
                                          ("zoo:ista_template", "zoo:ista"),
                                          ("zoo:fista_template", "zoo:fista")])
def test_derived_forms_give_the_hand_written_graph(derived, hand):
    assert _same_graph(derived, hand)
    A = np.random.default_rng(1).standard_normal((10, 16))
    y = torch.randn(4, 10, dtype=torch.float64)
    a = unroll.compile(derived, K=5, dtype=torch.float64, A=A)(y=y)
    b = unroll.compile(hand, K=5, dtype=torch.float64, A=A)(y=y)
    assert torch.equal(a, b)


def test_templates_write_the_update_equations():
    eq = [(n, unicode(v)) for n, v in unroll.check("zoo:fista_template").equations]
    assert eq[0] == ("x_new", "soft(z − Aᵀ(Az − y)/L, 0.1/L)")
    assert eq[2] == ("z", "((t − 1)/t_new) (x_new − x) + x_new")
    p = unroll.check("zoo:admm_lasso")
    assert list(p.states) == ["x", "z", "u"]
    assert [unicode(v) for _, v in p.equations] == [
        "(AᵀA + I)⁻¹(Aᵀy + z − u)", "soft(u + x, 0.1)", "u + x − z"]


def test_pgd_with_momentum_and_zero_momentum_is_ista():
    ista = unroll.check("zoo:ista").source
    spec = ista.replace("iterate K = 100:\n    x = soft(x - A'(A x - y) / L, lam / L)\n",
                        "solve f + g with pgd(L = L, beta = 0.5, K = 100)\n")
    p = unroll.check(spec)
    assert "x_prev" in p.states
    A = np.random.default_rng(2).standard_normal((10, 16))
    out = unroll.compile(spec, K=300, dtype=torch.float64, A=A)(y=torch.randn(2, 10,
                                                                           dtype=torch.float64))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("line,msg", [
    ("solve f + g with newton(L = L)", "unknown solver template 'newton'"),
    ("solve f + g with ista", "ista needs a step"),
    ("solve f + g with ista(L = L, tol = 3)", "ista: unknown option tol"),
    ("solve f + q with ista(L = L)", "'q' is not a cost term"),
])
def test_template_errors_point_at_the_solve_line(line, msg):
    spec = unroll.check("zoo:ista").source.replace(
        "iterate K = 100:\n    x = soft(x - A'(A x - y) / L, lam / L)\n", line + "\n")
    with pytest.raises(SpecError) as e:
        unroll.check(spec)
    assert msg in str(e.value)
    assert e.value.span.line == spec.splitlines().index(line) + 1
