"""Graph drawing and export: files exist and carry the layer structure of the unfolded graph."""
from __future__ import annotations

import re

import networkx as nx
import pytest

import unroll
from unroll import viz


@pytest.fixture(scope="module")
def lista3():
    return unroll.unfold("zoo:lista", K=3, dims={"n": 4, "m": 6})


def test_dot_has_one_cluster_per_layer_and_every_edge(lista3):
    text = viz.to_dot(lista3)
    assert text.startswith('digraph "LISTA" {') and text.rstrip().endswith("}")
    assert re.findall(r'label="(prologue|layer \d)"', text) == ["prologue", "layer 0", "layer 1", "layer 2"]
    # Every layer's output state (soft) sits in its own cluster, drawn heavy.
    for k in range(3):
        node = lista3.state_nodes[k + 1]["x"]
        cluster = text.split(f"subgraph cluster_{k + 1} {{")[1].split("}")[0]
        assert f'"{node}" [label="soft\\n[6]"' in cluster and "penwidth" in cluster
    # S is shared: one node with an edge into layers 1 and 2 (layer 0 starts from x = 0).
    s_users = re.findall(r'"S" -> "(\w+)"', text)
    assert {lista3.graph[u].layer for u in s_users} == {1, 2}
    assert text.count(" -> ") == sum(1 for a, b in lista3.graph.nx.edges if a in text and b in text)


def test_graphml_roundtrip_keeps_layers_and_shapes(lista3, tmp_path):
    path = viz.write_graphml(lista3, tmp_path / "g.graphml")
    g = nx.read_graphml(path)
    assert set(g.nodes) == set(lista3.graph.nx.nodes)
    assert g.number_of_edges() == lista3.graph.nx.number_of_edges()
    layers = {d["layer"] for _, d in g.nodes(data=True)}
    assert layers == {-1, 0, 1, 2}
    assert g.nodes["S"]["shape"] == "[6, 6]" and g.nodes["S"]["kind"] == "param"


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_images_are_written(lista3, tmp_path, suffix):
    path = viz.export(lista3, tmp_path / f"g{suffix}")
    data = path.read_bytes()
    assert len(data) > 1000
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[suffix]
    assert data.startswith(magic)
    if suffix == ".svg":
        assert b"layer 2" in data and b"prologue" in data


def test_per_layer_learnables_get_one_node_per_layer(tmp_path):
    u = unroll.unfold("zoo:lista_untied", K=2, dims={"n": 3, "m": 5})
    text = viz.to_dot(u)
    for k in range(2):
        cluster = text.split(f"subgraph cluster_{k + 1} {{")[1].split("}")[0]
        assert f'label="theta[{k}]\\n[5]"' in cluster


def test_unknown_format_is_refused(lista3, tmp_path):
    with pytest.raises(ValueError, match="unknown graph format"):
        viz.export(lista3, tmp_path / "g.jpg")


def test_op_kinds_have_colours():
    assert viz.op_kind("soft") == "nonlinear" and viz.op_kind("matmul") == "linear"
    assert viz.op_kind("something_new") == "other"
    assert set(viz.KIND_COLORS) >= {"nonlinear", "linear", "param", "input", "other"}
