"""Dependency direction between the package's parts, read from the source with `ast` (imports inside
functions and under TYPE_CHECKING included): no import cycle between subpackages, and no part imports
one above it in the layering below (docs/internals.md, "Layering", says why each part sits where it
does). A new subpackage or top-level module must be placed in LAYERS before it can be imported."""
from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "unroll"

# Lowest first. A part may import only parts on a strictly lower line: two parts on one line are
# peers that never import each other. "unroll" is the root package's __init__ (the public facade).
LAYERS: list[set[str]] = [
    {"errors", "limits", "_version"},  # leaves: the error type and renderer, size limits, the version
    {"dsl"},                           # text -> AST (and where spec text comes from, zoo files included)
    {"compiler"},                      # AST -> checked Program -> unfolded graph; never torch
    {"backends", "viz"},               # graph -> torch module / numpy oracle; graph -> drawing
    {"api"},                           # parse / check / unfold / compile over the stages above
    {"data", "train"},                 # tasks and datasets; the training loop, checkpoints, budgets
    {"published"},                     # the papers' released checkpoints as our modules
    {"evaluate"},                      # scoring trained models on test images
    {"zoo"},                           # shipped specs plus shipped and released weights, ready to run
    {"reproduce", "demo"},             # paper reproductions and the LISTA demo, end to end
    {"cli", "unroll"},                 # the command line; the root facade (`import unroll`)
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    """Whether the dotted name is a module or package of ours (not an attribute of one)."""
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules of ours an import statement loads (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    subs = [f"{source}.{a.name}" for a in node.names if _is_module(f"{source}.{a.name}")]
    return subs or [source]


def part_of(module: str) -> str:
    """The part (subpackage or top-level module) a module of ours belongs to; 'unroll' for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "unroll"


def imports() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> 'file:line' of every import between two different parts."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target == "unroll" or target.startswith("unroll."):
                    a, b = part_of(module), part_of(target)
                    if a != b:
                        found[(a, b)].append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return dict(found)


def test_every_part_has_a_place_in_the_layering():
    parts = {part_of(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert parts - set(RANK) == set(), "place the new part in LAYERS (and in docs/internals.md)"
    assert set(RANK) - parts == set(), "LAYERS names a part that no longer exists"


def test_no_import_cycle_between_parts():
    graph = nx.DiGraph(list(imports()))
    cycles = sorted(sorted(c) for c in nx.simple_cycles(graph))
    assert cycles == [], f"import cycles between parts: {cycles}"


def test_no_part_imports_a_part_above_it_or_beside_it():
    bad = [f"{a} -> {b} ({', '.join(where[:3])})" for (a, b), where in sorted(imports().items())
           if a in RANK and b in RANK and RANK[b] >= RANK[a]]
    assert bad == [], "imports against the layering:\n" + "\n".join(bad)


def test_the_scan_sees_imports_inside_functions():
    """The scan is what the tests above stand on: it must find a known import written inside a
    function (cli/build_cmds imports the API lazily), resolve `from .. import x`, and know a layer
    is lower."""
    found = imports()
    assert any(w.startswith("unroll/cli/") for w in found[("cli", "api")])
    assert ("unroll", "zoo") in found and ("zoo", "dsl") in found
    assert RANK["compiler"] < RANK["backends"] < RANK["api"] < RANK["cli"]


@pytest.mark.parametrize("heavy", ["torch", "matplotlib", "scipy"])
def test_import_unroll_loads_no_heavy_library(heavy):
    """`import unroll` (check, parse, the zoo list) stays fast: the heavy libraries load only where
    a function needs them, which is why those imports sit inside functions."""
    code = f"import sys, unroll, unroll.zoo; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent, check=True).stdout
    assert out.strip() == "False"
