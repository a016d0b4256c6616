"""`unroll graph` and `unroll compile`: unfold a spec, then draw it or write its PyTorch source."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, add_spec_args, dims_of, format_dims, known_dims, load_program

__all__ = ["add_parsers", "run_graph", "run_compile", "DRAW_DEFAULT_SIZE"]

DRAW_DEFAULT_SIZE = 8  # size given to dims still unknown when drawing


def run_graph(args: argparse.Namespace) -> int:
    """Unfold a spec and draw (.png/.svg/.pdf) or export (.dot/.graphml) the forward graph."""
    from ..api import unfold
    from ..limits import MAX_GRAPH_LAYERS
    from ..viz import FORMATS, export
    out = Path(args.output)
    if out.suffix.lower() not in FORMATS:
        raise CLIError(f"-o {out}: unknown format {out.suffix or '(no suffix)'!r}; "
                       f"use one of {', '.join(FORMATS)}")
    program = load_program(args.spec, args.K)
    dims, missing = known_dims(program, dims_of(args))
    for n in missing:
        dims[n] = DRAW_DEFAULT_SIZE
    K = args.K if args.K is not None else program.K
    drawn = min(K, MAX_GRAPH_LAYERS)
    u = unfold(program, drawn, dims)
    export(u, out)
    note = f" (no size for {', '.join(missing)}: used {DRAW_DEFAULT_SIZE}; set with --dim)" if missing else ""
    if drawn < K:
        note += (f"; summarised: the first {drawn} of K={K} layers are drawn (at most "
                 f"{MAX_GRAPH_LAYERS}; every layer repeats the same equations)")
    print(f"wrote {out}: {program.name}, K={u.K}, {len(u.graph)} nodes, "
          f"{u.graph.nx.number_of_edges()} edges, {format_dims(dims) or 'no dims'}{note}")
    return 0


def run_compile(args: argparse.Namespace) -> int:
    """Write the standalone PyTorch module of an unfolded spec (runs with only torch installed)."""
    from ..api import generate, unfold
    program = load_program(args.spec, args.K)
    dims, missing = known_dims(program, dims_of(args))
    if missing:
        raise CLIError("the generated module has fixed sizes: give "
                       + " ".join(f"--dim {n}=..." for n in missing))
    u = unfold(program, args.K, dims)
    gen = generate(u)
    out = Path(args.output)
    if out.suffix != ".py":
        raise CLIError(f"-o {out}: the output is Python source; name it something.py")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(gen.source, encoding="utf-8")
    ops = ", ".join(program.operators)
    ins = ", ".join(f"{i}={i}" for i in program.inputs)
    print(f"wrote {out}: class {gen.class_name}, K={u.K}, {format_dims(dims) or 'no dims'}")
    print("use it (needs only torch):")
    print(f"  from {out.stem} import {gen.class_name}")
    print(f"  net = {gen.class_name}({ops})" + (f"      # the fixed operator{'s' * (len(program.operators) > 1)} {ops}, as arrays" if ops else ""))
    print(f"  {', '.join(program.outputs)} = net({ins})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register graph and compile."""
    p = sub.add_parser("graph", help="draw or export the unfolded graph (.png .svg .pdf .dot .graphml)",
                       description="Unfold a spec and draw its forward graph layer by layer "
                       "(x position = layer, prologue on the left; colours by op kind) to .png, "
                       ".svg or .pdf, or export it as Graphviz .dot or .graphml. Dims without a "
                       f"size (spec default or --dim) are drawn with size {DRAW_DEFAULT_SIZE}.")
    add_spec_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file; the suffix picks the format: .png .svg .pdf .dot .graphml")
    p.set_defaults(func=run_graph)
    p = sub.add_parser("compile", help="write the generated PyTorch module (model.py)",
                       description="Unfold a spec and write the generated PyTorch module: a file "
                       "that runs with only torch installed. Sizes are fixed in the code, so every "
                       "dim needs a size (spec default or --dim); the operators are given when the "
                       "module is built: `net = LISTA(A)`.")
    add_spec_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.py", help="where to write the source")
    p.set_defaults(func=run_compile)
