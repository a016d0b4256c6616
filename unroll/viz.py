"""Draw and export the unfolded forward graph: one column per layer, the prologue on the left.

`draw(unfolded, "g.png")` (matplotlib: .png, .svg, .pdf), `to_dot(unfolded)` (Graphviz text,
written here, no pydot), `write_graphml(unfolded, path)` (networkx) and `export` choosing by suffix.
"""
from __future__ import annotations

import os
from pathlib import Path

import networkx as nx

from .compiler.ops import node_info
from .compiler.unfold import Unfolded

__all__ = ["FORMATS", "KIND_COLORS", "op_kind", "draw", "to_dot", "write_graphml", "export"]

IMAGE_FORMATS = (".png", ".svg", ".pdf")
FORMATS = IMAGE_FORMATS + (".dot", ".graphml")

KIND_COLORS: dict[str, str] = {
    "input": "#8fd18f", "operator": "#c8c8c8", "param": "#f6b26b", "const": "#e8e8e8",
    "linear": "#9fc5e8", "arithmetic": "#d9e8f5", "nonlinear": "#ea9999", "reduce": "#b4a7d6",
    "other": "#fff2cc",
}


def op_kind(op: str) -> str:
    """The colour group of an op (`OpInfo.kind`): input, operator, param, const, linear,
    arithmetic, nonlinear, reduce or other."""
    o = node_info(op)
    return o.kind if o is not None else "other"


def _columns(u: Unfolded) -> dict[str, int]:
    """Column of each forward node: 0 for the prologue (and shared leaves), k + 1 for layer k."""
    return {n: (u.graph[n].layer + 1 if u.graph[n].layer is not None else 0) for n in u.graph}


def _outputs(u: Unfolded) -> set[str]:
    """The nodes holding the states after each layer (drawn with a heavy border)."""
    return {n for k in range(1, u.K + 1) for n in u.state_nodes[k].values()}


def _shown(u: Unfolded) -> list[str]:
    """Nodes worth drawing: all but numbers and zeros left unused by constant folding."""
    states = {n for st in u.state_nodes for n in st.values()}
    return [n for n in u.graph if u.graph.users(n) or n in states
            or u.graph[n].op not in ("number", "zeros")]


def _node_text(u: Unfolded, n: str) -> str:
    rec = u.graph[n]
    shape = "[" + ", ".join(str(d) for d in rec.shape) + "]"
    return f"{rec.label}\n{shape}"


def draw(u: Unfolded, path: str | os.PathLike) -> Path:
    """Draw the forward graph layer by layer to an image (.png, .svg or .pdf) with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    cols = _columns(u)
    rows: dict[int, int] = {}
    pos: dict[str, tuple[float, float]] = {}
    nodes = _shown(u)
    for n in nodes:
        c = cols[n]
        pos[n] = (float(c), -float(rows.get(c, 0)))
        rows[c] = rows.get(c, 0) + 1
    height = max(rows.values(), default=1)
    fig, ax = plt.subplots(figsize=(2.2 + 1.9 * (u.K + 1), 1.2 + 0.75 * height))
    g = u.graph.nx.subgraph(nodes)
    outs = _outputs(u)
    colors = [KIND_COLORS[op_kind(u.graph[n].op)] for n in nodes]
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="#777777", arrows=True, arrowsize=8,
                           node_size=1400, connectionstyle="arc3,rad=0.08", width=0.7)
    nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_color=colors, node_size=1400, ax=ax,
                           edgecolors=["black" if n in outs else "#555555" for n in nodes],
                           linewidths=[2.2 if n in outs else 0.6 for n in nodes])
    nx.draw_networkx_labels(g, pos, labels={n: _node_text(u, n) for n in nodes}, font_size=6, ax=ax)
    for c in range(u.K + 1):
        ax.text(c, 0.8, "prologue" if c == 0 else f"layer {c - 1}", ha="center", fontsize=8,
                fontweight="bold")
    used = sorted({op_kind(u.graph[n].op) for n in nodes})
    ax.legend(handles=[Patch(color=KIND_COLORS[k], label=k) for k in used], loc="lower left",
              fontsize=6, frameon=False, bbox_to_anchor=(0, -0.02), ncol=len(used))
    ax.set_title(f"{u.program.name}, K={u.K}: {len(nodes)} nodes "
                 f"(dims {', '.join(f'{k}={v}' for k, v in u.dims.items())})", fontsize=9)
    ax.set_xlim(-0.6, u.K + 0.6)
    ax.set_ylim(-height + 0.3, 1.2)
    ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150 if path.suffix == ".png" else None)
    plt.close(fig)
    return path


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(u: Unfolded) -> str:
    """Graphviz DOT text of the forward graph, one cluster per layer (prologue first)."""
    cols = _columns(u)
    outs = _outputs(u)
    shown = _shown(u)
    lines = [f"digraph {_dot_str(u.program.name)} {{", "  rankdir=LR;",
             "  node [shape=box, style=\"rounded,filled\", fontsize=10];"]
    for c in range(u.K + 1):
        members = [n for n in shown if cols[n] == c]
        title = "prologue" if c == 0 else f"layer {c - 1}"
        lines.append(f"  subgraph cluster_{c} {{")
        lines.append(f"    label={_dot_str(title)};")
        for n in members:
            rec = u.graph[n]
            extra = ", penwidth=2.5" if n in outs else ""
            lines.append(f"    {_dot_str(n)} [label={_dot_str(_node_text(u, n))}, "
                         f"fillcolor={_dot_str(KIND_COLORS[op_kind(rec.op)])}, "
                         f"tooltip={_dot_str(f'{rec.op} at {rec.span}')}{extra}];")
        lines.append("  }")
    for a, b, data in u.graph.nx.subgraph(shown).edges(data=True):
        lines.append(f"  {_dot_str(a)} -> {_dot_str(b)} [label={_dot_str(str(data.get('pos', '')))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graphml(u: Unfolded, path: str | os.PathLike) -> Path:
    """Write the forward graph as GraphML (node attrs op, shape, dtype, layer, span, label)."""
    path = Path(path)
    g = nx.DiGraph(name=u.program.name, K=u.K)
    for n, data in u.graph.nx.nodes(data=True):
        attrs = {k: v for k, v in data.items() if k != "record"}
        g.add_node(n, **{k: v if isinstance(v, (int, float, bool, str)) else str(v)
                         for k, v in attrs.items()}, kind=op_kind(data["op"]))
    for a, b, data in u.graph.nx.edges(data=True):
        g.add_edge(a, b, **{k: v if isinstance(v, (int, float, bool, str)) else str(v)
                            for k, v in data.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(g, path)
    return path


def export(u: Unfolded, path: str | os.PathLike) -> Path:
    """Draw or export by suffix: .png/.svg/.pdf (drawing), .dot, .graphml."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_FORMATS:
        return draw(u, path)
    if suffix == ".dot":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_dot(u), encoding="utf-8")
        return path
    if suffix == ".graphml":
        return write_graphml(u, path)
    raise ValueError(f"unknown graph format {suffix or '(no suffix)'!r}: use one of {', '.join(FORMATS)}")
