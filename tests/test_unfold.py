"""The unfolded graph: tying (one shared node, K per-layer nodes), node attributes, lint,
zero-state folding, common subexpressions, dims binding and layer ownership."""
import dataclasses

import networkx as nx
import numpy as np
import pytest

import unroll
from unroll.compiler.graph import Graph, GraphLintError, Namespace
from unroll.compiler.unfold import bind_dims
from unroll.errors import ShapeError, SpecError
from test_zoo import zoo_problem

K = 4
A = np.random.default_rng(0).standard_normal((20, 40))


def _unfold(name: str, k: int = K):
    return unroll.unfold(f"zoo:{name}", K=k, A=A)


def _users_by_layer(u, node: str) -> set[int]:
    return {u.graph[s].layer for s in u.graph.users(node)}


@pytest.mark.parametrize("name", unroll.zoo.names())
def test_graph_lints_and_has_node_attributes(name):
    _, dims, ops, _, _ = zoo_problem(name)
    u = unroll.unfold(f"zoo:{name}", K=K, dims=dims, **ops)
    u.graph.lint()
    u.build.lint()
    if u.loss_graph is not None:
        u.loss_graph.lint()
    g = u.nx
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    for n, data in g.nodes(data=True):
        for key in ("op", "shape", "dtype", "layer", "span", "label"):
            assert key in data, (n, key)
        assert isinstance(data["layer"], int) and -1 <= data["layer"] < u.K
        assert data["shape"].startswith("[") and data["label"]
    for a, b, data in g.edges(data=True):
        assert "pos" in data and b in g and a in g
        assert u.graph[b].args[data["pos"]] == a
    # Nodes computed from the iteration carry a span into the spec.
    for st in u.state_nodes[1:]:
        for node in st.values():
            assert g.nodes[node]["span"].startswith(f"{name}.unroll:")


def test_every_layer_has_nodes_and_states():
    u = _unfold("fista")
    layers = {d["layer"] for _, d in u.nx.nodes(data=True)}
    assert set(range(K)) <= layers and -1 in layers
    assert len(u.state_nodes) == K + 1
    assert set(u.state_nodes[0]) == {"x", "z", "t"}
    for k in range(1, K + 1):
        assert u.graph[u.state_nodes[k]["x"]].layer == k - 1


def test_shared_learnables_are_one_node_used_by_all_layers():
    u = _unfold("lista")
    params = {info.name: node for node, info in u.params.items()}
    assert set(params) == {"W_e", "S", "theta"}
    assert all(u.params[n].layer is None for n in params.values())
    theta = params["theta"]
    assert u.nx.nodes[theta]["op"] == "param" and u.nx.nodes[theta]["layer"] == -1
    assert _users_by_layer(u, theta) == set(range(K))
    # S x only from layer 1 on (x is zero before layer 0), still one node.
    assert _users_by_layer(u, params["S"]) == set(range(1, K))
    assert sum(1 for _, d in u.nx.nodes(data=True) if d["op"] == "param") == 3


@pytest.mark.parametrize("name,names", [("lista_untied", ("W_e", "S", "theta")),
                                        ("lista_cp", ("W", "theta")),
                                        ("lista_cpss", ("W", "theta"))])
def test_per_layer_learnables_are_K_nodes(name, names):
    u = _unfold(name)
    for p in names:
        nodes = [n for n, info in u.params.items() if info.name == p]
        assert nodes == [f"{p}_{k}" for k in range(K)]
        for k, n in enumerate(nodes):
            assert u.params[n].layer == k and u.nx.nodes[n]["layer"] == k
            assert u.nx.nodes[n]["label"] == f"{p}[{k}]"
            assert _users_by_layer(u, n) <= {k}
    model = unroll.compile(f"zoo:{name}", K=K, A=A)
    assert {n for n, _ in model.named_parameters()} == {
        f"layers.{k}.{p}" for k in range(K) for p in names}


def test_zero_state_folding_removes_S_x_in_layer_0():
    u = _unfold("lista")
    g = u.graph
    x0 = u.state_nodes[1]["x"]
    assert g[x0].op == "soft"
    pre = g[g[x0].args[0]]
    # Layer 0 computes soft(W_e y, theta): no product with S and no addition.
    assert pre.op == "matmul" and g[pre.args[0]].op == "param" and g[pre.args[0]].attrs == ("W_e",)
    layer0 = [n for n in g if g[n].layer == 0]
    assert all(g[n].op != "add" for n in layer0)
    assert not any(g[a].attrs == ("S",) for n in layer0 for a in g[n].args)
    assert g[u.state_nodes[0]["x"]].op == "zeros"


def test_cse_computes_W_e_y_once():
    u = _unfold("lista")
    g = u.graph
    wy = [n for n in g if g[n].op == "matmul" and g[g[n].args[0]].attrs == ("W_e",)]
    assert len(wy) == 1
    node = wy[0]
    assert g[node].layer is None  # loop-invariant: computed in the prologue
    assert _users_by_layer(u, node) == set(range(K))
    src = unroll.compile("zoo:lista", K=K, A=A).generated.source
    assert src.count("W_e)") == 1  # F.linear(y, W_e) appears once in the generated forward


def test_cse_shares_equal_subexpressions_within_a_layer():
    text = ("dims n, m\noperator A : [n, m]\ninput y : [n]\nstate x : [m] = 0\niterate K = 3:\n"
            "    x = soft(x - A'(A x - y), 0.1) + soft(x - A'(A x - y), 0.1)\noutput x\n")
    u = unroll.unfold(text, A=A)
    for k in range(1, 3):
        assert sum(1 for n in u.graph if u.graph[n].op == "soft" and u.graph[n].layer == k) == 1


def test_per_layer_nodes_only_depend_on_their_own_layer():
    u = _unfold("lista_untied")
    g = u.graph
    for n in g:
        k = g[n].layer
        if k is None:
            continue
        for a in g[n].args:
            assert g[a].layer in (None, k, k - 1), (n, a)


def test_layer_index_k_becomes_a_number_per_layer():
    text = ("dims m\ninput y : [m]\nstate x : [m] = 0\niterate K = 3:\n"
            "    x = x + y * (k + 1)\noutput x\n")
    u = unroll.unfold(text, dims={"m": 5})
    nums = {g_rec.attrs[0] for n in u.graph if (g_rec := u.graph[n]).op == "number"}
    assert {1.0, 2.0, 3.0} <= nums
    model = unroll.compile(text, dims={"m": 5})
    import torch
    y = torch.ones(2, 5)
    torch.testing.assert_close(model(y=y), y * 6)


def test_K_from_spec_and_override():
    assert unroll.unfold("zoo:lista", A=A).K == 16
    assert unroll.unfold("zoo:lista", K=2, A=A).K == 2
    with pytest.raises(SpecError, match="K must be at least 1"):
        unroll.unfold("zoo:lista", K=0, A=A)


def test_bind_dims_from_operators_and_given():
    prog = unroll.check("zoo:lista")
    assert bind_dims(prog, {"A": (20, 40)}) == {"n": 20, "m": 40}
    assert bind_dims(prog, {}, {"n": 3, "m": 7}) == {"n": 3, "m": 7}
    with pytest.raises(SpecError, match="size of dim"):
        bind_dims(prog, {})
    with pytest.raises(SpecError, match="unknown dim 'q'"):
        bind_dims(prog, {"A": (20, 40)}, {"q": 3})
    with pytest.raises(ShapeError, match="does not fit"):
        bind_dims(prog, {"A": (20, 40)}, {"m": 41})


def test_unfold_accepts_shapes_instead_of_arrays():
    u = unroll.unfold("zoo:lista", K=2, A=(5, 9))
    assert u.dims == {"n": 5, "m": 9}
    assert u.graph[u.state_nodes[2]["x"]].shape == (9,)


def test_loss_graph_reads_final_states_and_targets():
    u = _unfold("lista")
    lg = u.loss_graph
    ops = {lg[n].op for n in lg}
    assert {"state", "target", "mse"} <= ops
    assert lg[u.loss_node].op == "mse" and lg[u.loss_node].shape == ()
    assert set(u.loss_states) == {"x"}


def test_lint_catches_broken_graphs():
    g = Graph(Namespace())
    a = g.add("input", (), ("y",), (3,), "real", True, None, None, "y")
    b = g.add("relu", (a,), (), (3,), "real", True, 0, None)
    g.lint()
    with pytest.raises(dataclasses.FrozenInstanceError):
        g[b].op = "no_such_op"  # records are frozen: only Graph.add makes them

    def breaks(**change):
        good = g[b]
        g.nx.nodes[b]["record"] = dataclasses.replace(good, **change)
        try:
            with pytest.raises(GraphLintError) as err:
                g.lint()
        finally:
            g.nx.nodes[b]["record"] = good
        return str(err.value)
    assert "unknown op" in breaks(op="no_such_op")
    assert "not defined before" in breaks(args=("missing",))
    assert "not concrete" in breaks(shape=("n",))
    assert "shape [4], but its arguments [3] give [3]" in breaks(shape=(4,))
    g.nx.add_edge(b, a)
    with pytest.raises(GraphLintError, match="cycle"):
        g.lint()


def test_lint_checks_shapes_against_the_op_rules():
    g = Graph(Namespace())
    A = g.add("operator", (), ("A",), (4, 8), "real", False, None, None, "A")
    x = g.add("input", (), ("x",), (8,), "real", True, None, None, "x")
    y = g.add("input", (), ("y",), (4,), "real", True, None, None, "y")
    g.add("matmul", (A, x), (), (4,), "real", True, None, None)
    g.add("sum", (x,), (), (), "real", True, None, None)
    g.lint()
    g.add("add", (x, y), (), (8,), "real", True, None, None)  # [8] + [4]: no broadcast
    with pytest.raises(GraphLintError, match=r"add_?\w* \(add at \?\): shape \[8\], but its arguments \[8\], \[4\]"):
        g.lint()
    h = Graph(Namespace())
    A = h.add("operator", (), ("A",), (4, 8), "real", False, None, None, "A")
    y = h.add("input", (), ("y",), (4,), "real", True, None, None, "y")
    h.add("matmul", (A, y), (), (4,), "real", True, None, None)  # inner sizes 8 and 4 differ
    with pytest.raises(GraphLintError, match="matmul"):
        h.lint()


def test_namespace_gives_safe_unique_names():
    ns = Namespace()
    assert ns.fresh("theta") == "theta"
    assert ns.fresh("theta") == "theta_1"
    assert ns.fresh("lambda") == "lambda_"
    assert ns.fresh("self") == "self_"
    assert ns.fresh("2x") == "v2x"
    assert ns.fresh("a-b") == "a_b"
