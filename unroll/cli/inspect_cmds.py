"""`unroll check`, `unroll show` and `unroll zoo`: read a spec and say what it is."""
from __future__ import annotations

import argparse
import sys

from ..compiler.ir import Program, fmt_shape
from ..compiler.pretty import equation_lines, shared_lines, to_text
from .common import (add_spec_args, dims_of, format_dims, grad_arg, known_dims, load_program,
                     parameter_count)

__all__ = ["add_parsers", "run_check", "run_show", "run_zoo"]


def _unfold_if_sized(program: Program, K: int | None, given: dict[str, int]):
    """(unfolded or None, dims, missing dim names): unfold only when every size is known."""
    from ..api import unfold
    dims, missing = known_dims(program, given)
    if missing:
        return None, dims, missing
    return unfold(program, K, dims), dims, []


def _give_dims(missing: list[str]) -> str:
    return "give " + " ".join(f"--dim {n}=..." for n in missing)


def run_check(args: argparse.Namespace) -> int:
    """Parse and check a spec (and unfold it if its sizes are known); print a one-line summary."""
    from ..compiler.gradflow import no_gradient
    program = load_program(args.spec, args.K)
    for finding in no_gradient(program):  # warnings: `unroll train` refuses these without --allow-no-grad
        print(finding.warning(program), file=sys.stderr)
    u, dims, missing = _unfold_if_sized(program, args.K, dims_of(args))
    K = program.K if args.K is None else args.K
    if getattr(args, "grad", None) == "implicit":
        from ..compiler.fixed_point import implicit_problem
        problem = implicit_problem(program, K)
        if problem is not None:
            raise problem
        print("grad implicit: qualifies (one shared map, no layer index, no aux terms)")
    n = len(program.learnables) + len(program.blocks)
    head = f"ok: {program.name}: {n} learnable{'s' * (n != 1)}"
    if u is None:
        print(f"{head}, K={K} (parameter count and unfolding need sizes: {_give_dims(missing)})")
    else:
        print(f"{head}, {parameter_count(u):,} params, K={K}, {len(u.graph)} graph nodes"
              + (f" ({format_dims(dims)})" if dims else ""))
    return 0


def _section(title: str, rows: list[str]) -> list[str]:
    return [f"{title}:"] + [f"  {r}" for r in rows] if rows else []


def show_text(program: Program, K: int | None, given: dict[str, int]) -> str:
    """Everything `unroll show` prints about a checked spec."""
    p = program
    out = [p.name + (f": {p.description}" if p.description else ""), f"file: {p.file}"]
    dims = [f"{n} = {v}" if v is not None else f"{n} (bound from the operators or --dim)"
            for n, v in p.dims.items()]
    out += _section("dims", dims)
    for title, table in (("operators", p.operators), ("inputs", p.inputs), ("targets", p.targets)):
        out += _section(title, [f"{t.name} : {fmt_shape(t.shape)}"
                                + (f" <- {fmt_shape(t.in_shape)} linear" if t.in_shape else "")
                                + (f" ({t.dtype})" if t.dtype != "real" else "")
                                + (f" = {to_text(t.default)}   (when not given)"
                                   if t.default is not None else "")
                                for t in table.values()])
    out += _section("consts", shared_lines(list(p.consts.items()), set(p.spans)))
    out += _section("cost terms", [f"{c.name}({', '.join(c.params)}) = {to_text(c.expr)}"
                                   for c in p.costs.values()])
    out += _section("states", [f"{s.name} : {fmt_shape(s.shape)} = {to_text(s.init)}"
                               for s in p.states.values() if not s.aux])
    K_used = p.K if K is None else K
    out += _section(f"update (one iteration, K = {K_used})", equation_lines(p))
    if p.final:
        out += _section("after the last iteration (one more layer)",
                        [f"finally {', '.join(p.final)}"])
    out += _section("outputs", list(p.outputs))
    if p.loss is not None:
        out += _section("loss", [line.removeprefix("loss = ") for line in
                                 shared_lines([("loss", p.loss)], set(p.spans))])
    out += _section("learnables", [
        f"{l.name} : {fmt_shape(l.shape)} = {to_text(l.init)}   {l.tying}"
        + (f", {l.constraint}" if l.constraint else "") for l in p.learnables.values()])
    out += _section("learnable blocks", [
        f"{b.name} : {fmt_shape(b.in_shape)} -> {fmt_shape(b.out_shape)}, "
        f"{' | '.join(l.kind for l in b.layers)}   {b.tying}" for b in p.blocks.values()])
    u, dims, missing = _unfold_if_sized(p, K, given)
    if u is None:
        out.append(f"parameters: unknown until the sizes are known ({_give_dims(missing)})")
    else:
        out.append(f"parameters: {parameter_count(u):,} for K={u.iterations}"
                   + (" and the finally layer" if p.final else "")
                   + (f" with {format_dims(dims)}" if dims else ""))
    return "\n".join(out)


def run_show(args: argparse.Namespace) -> int:
    """Print the algorithm: declarations, update equations, learnables and parameter count."""
    program = load_program(args.spec, args.K)
    print(show_text(program, args.K, dims_of(args)))
    if getattr(args, "latex", False):
        from ..compiler.symbolic import latex
        rows = _section("cost terms (LaTeX)", [f"{c.name}({', '.join(c.params)}) = {latex(c.expr)}"
                                               for c in program.costs.values()])
        rows += _section("update (LaTeX)", [f"{n} = {latex(v)}" for n, v in program.equations])
        print("\n".join(rows))
    return 0


def run_zoo(args: argparse.Namespace) -> int:
    """List the shipped specs with their citations."""
    from .. import zoo
    entries = zoo.list()
    width = max((len(n) for n, _ in entries), default=0)
    for name, cite in entries:
        print(f"{name:<{width}}  {cite}")
    print(f"\nuse one as SPEC with zoo:NAME, e.g. `unroll show zoo:{entries[0][0] if entries else 'lista'}`")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register check, show and zoo."""
    p = sub.add_parser("check", help="parse and check a spec; unfold it if its sizes are known",
                       description="Parse and check a spec (names, shapes, derivations). When every "
                       "dim has a size (spec defaults or --dim), also unfold it and count parameters. "
                       "Exit status 0 if the spec is fine, 2 with a located error if not.")
    add_spec_args(p)
    p.add_argument("--grad", type=grad_arg, default=None, metavar="MODE",
                   help="also check the spec can train with this gradient mode (implicit needs one "
                        "shared fixed-point map; says where it is not)")
    p.set_defaults(func=run_check)
    p = sub.add_parser("show", help="print the algorithm: shapes, equations, learnables, params",
                       description="Print the spec as the compiler understood it: dims, operators, "
                       "inputs, targets, consts, cost terms, the update equations, learnables with "
                       "their tying and constraints, and the parameter count (needs sizes: --dim).")
    add_spec_args(p)
    p.add_argument("--latex", action="store_true", help="also print cost terms and updates as LaTeX")
    p.set_defaults(func=run_show)
    p = sub.add_parser("zoo", help="list the shipped specs with citations",
                       description="List the specs shipped with unroll and the papers they come from.")
    p.set_defaults(func=run_zoo)
