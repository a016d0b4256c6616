"""The unfolded Network: one printable object (nodes with phase, spec names, shapes, spans),
frozen node records, networkx access, and lint after every pass."""
import dataclasses

import networkx as nx
import pytest

import unroll
from unroll.compiler.graph import PHASES, Graph, NodeRecord


@pytest.fixture(scope="module")
def lista2():
    return unroll.unfold("zoo:lista", K=2, dims={"n": 4, "m": 8})


def test_printing_lista_lists_every_node_with_phase_shape_and_span(lista2, capsys):
    print(unroll.unfold("zoo:lista", K=2, dims={"n": 4, "m": 8}))
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == ("Network LISTA: K=2 layers, n=4, m=8; nodes: build 13, forward 13, loss 9, "
                        "objective 19")
    assert lines[1].split() == ["phase", "layer", "name", "op", "args", "shape", "dtype", "spec", "span"]
    assert set(lines[2]) <= {"-", " "}
    rows = [ln.split() for ln in lines[3:3 + 13 + 13 + 9 + 19]]
    assert [r[0] for r in rows] == ["build"] * 13 + ["forward"] * 13 + ["loss"] * 9 + ["objective"] * 19
    # the learnables by their spec names, the layers, batched shapes and spans into the spec
    assert "forward - theta param [8] real theta lista.unroll:17:1".split() in rows
    assert "forward 0 x_0 soft matmul, theta [B, 8] real x lista.unroll:21:9".split() in rows
    assert "forward 1 x_1 soft add_1, theta [B, 8] real x lista.unroll:21:9".split() in rows
    assert "build - L pow opnorm, number_1 [] real L lista.unroll:10:13".split() in rows
    assert "loss - mse mse x, x_star [] real lista.unroll:23:6".split() in rows
    # columns line up: every row starts its shape where the header's shape column starts
    col = lines[1].index("shape")
    assert all(ln[col] == "[" for ln in lines[3:3 + 54])
    assert lines[-3:] == ["outputs: x = x_1", "loss: mse", "objective (per layer): add"]
    assert str(lista2) == text.rstrip("\n")


def test_nodes_know_their_name_phase_and_spec_name(lista2):
    records = lista2.nodes()
    assert len(records) == sum(len(g) for g in lista2.graphs.values()) == 13 + 13 + 9 + 19
    assert list(lista2.graphs) == list(PHASES)
    for phase, g in lista2.graphs.items():
        for n in g:
            assert g[n].name == n and g[n].phase == phase
    params = [r for r in lista2.nodes("forward") if r.op == "param"]
    assert [r.spec_name for r in params] == ["W_e", "S", "theta"]
    assert {lista2.graph[n].spec_name for st in lista2.state_nodes[1:] for n in st.values()} == {"x"}
    rec = lista2.graph["x_1"]
    assert isinstance(rec, NodeRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.shape = (9,)


def test_the_forward_graph_is_a_networkx_graph(lista2):
    g = lista2.graph.nx
    assert g is lista2.nx and isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    assert list(nx.topological_sort(g))[-1] == "x_1"
    assert nx.has_path(g, "theta", "x_1") and g.nodes["x_1"]["layer"] == 1
    assert repr(lista2.graph) == "<Graph forward: 13 nodes, 10 edges>"
    assert repr(lista2).startswith("<Network LISTA: K=2 layers")
    assert str(lista2.graph).splitlines()[2].split()[:4] == ["forward", "-", "y", "input"]


def test_lint_runs_after_every_pass(monkeypatch):
    seen = []
    real = Graph.lint

    def spy(self):
        seen.append(self.phase)
        real(self)
    monkeypatch.setattr(Graph, "lint", spy)
    net = unroll.unfold("zoo:lista", K=2, dims={"n": 4, "m": 8})
    assert seen == ["build", "forward", "loss", "objective"]
    seen.clear()
    net.lint()
    assert seen == ["build", "forward", "loss", "objective"]


def test_a_spec_without_loss_has_only_its_phases():
    net = unroll.unfold("algorithm A\ndims n = 3\ninput y : [n]\nstate x : [n] = 0\niterate K = 2:\n"
                        "    x = relu(x + y)\noutput x\n")
    assert list(net.graphs) == ["build", "forward"]
    assert net.loss_graph is None and "loss:" not in str(net)
