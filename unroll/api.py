"""The Python API: `parse`, `check`, `unfold` and `compile`, each taking a path, `zoo:name`,
spec text or the previous stage's result."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .compiler.check import check as _check
from .compiler.ir import Program
from .compiler.unfold import Network, bind_dims, unfold as _unfold
from .dsl import ast
from .dsl.parser import parse as _parse
from .errors import SpecError

__all__ = ["load_spec", "parse", "check", "unfold", "generate", "compile"]

SpecLike = "str | Path | ast.Spec | Program"


def load_spec(spec: str | Path) -> tuple[str, str]:
    """(text, file name) of a spec given as a path, `zoo:name` or the text itself."""
    from .dsl.source import read_spec_file, zoo_names, zoo_path
    if isinstance(spec, Path):
        return read_spec_file(spec), str(spec)
    if not isinstance(spec, str):
        raise TypeError(f"a spec is a path, `zoo:name` or spec text, not {type(spec).__name__}")
    if spec.startswith("zoo:"):
        p = zoo_path(spec[4:])
        return read_spec_file(p), p.name
    if "\n" not in spec:
        p = Path(spec)
        if spec and p.exists():
            return read_spec_file(p), str(p)
        if spec in zoo_names():
            p = zoo_path(spec)
            return read_spec_file(p), p.name
        raise FileNotFoundError(f"no spec file {spec!r} (and no zoo spec of that name; "
                                f"zoo: {', '.join(zoo_names())})")
    return spec, "<spec>"


def parse(spec: str | Path | ast.Spec) -> ast.Spec:
    """Parse a spec (path, `zoo:name` or text) into its AST."""
    if isinstance(spec, ast.Spec):
        return spec
    text, file = load_spec(spec)
    return _parse(text, file)


def check(spec: str | Path | ast.Spec | Program, K: int | None = None) -> Program:
    """Parse if needed, resolve names and infer shapes: the checked `Program`."""
    if isinstance(spec, Program):
        return spec
    tree = parse(spec)
    try:
        return _check(tree, K)
    except SpecError as e:
        raise e.with_source(tree.source)


def _shape(x) -> tuple:
    """The shape of an array, or `x` itself when it is a shape (a tuple or list of integers)."""
    if isinstance(x, (tuple, list)) and all(isinstance(d, int) and not isinstance(d, bool) for d in x):
        return tuple(x)
    if hasattr(x, "shape"):
        return tuple(x.shape)
    try:
        import numpy as np
        return np.asarray(x, dtype=float).shape
    except (TypeError, ValueError):
        raise TypeError(f"an operator is an array or a shape, not {type(x).__name__}") from None


def _is_callables(x) -> bool:
    """Whether x is a matrix-free operator: an object with A and A_adjoint, or a callable pair."""
    if hasattr(x, "A") and hasattr(x, "A_adjoint"):
        return True
    return isinstance(x, (tuple, list)) and len(x) == 2 and all(callable(f) for f in x)


def unfold(spec: str | Path | ast.Spec | Program, K: int | None = None,
           dims: Mapping[str, int] | None = None, **operators) -> Network:
    """Unfold a spec K times; operators (arrays or shapes) and `dims` give the sizes."""
    program = check(spec)
    linops = {n for n, t in program.operators.items() if t.in_shape is not None}
    for k, v in operators.items():
        if k in program.operators and (k in linops) != _is_callables(v):
            t = program.operators[k]
            raise SpecError(f"operator {k} is {'matrix-free' if k in linops else 'a tensor'} but was "
                            f"given {'an array' if k in linops else type(v).__name__}", t.span,
                            "give an object with A(x) and A_adjoint(y) (a deepinv Physics) or a "
                            "pair (forward, adjoint) of torch callables" if k in linops else
                            "give an array, or declare it `operator A : [m] <- [n] linear`",
                            program.source)
    unknown = [k for k in operators if k not in program.operators]
    shapes = {k: _shape(v) for k, v in operators.items() if k not in unknown and k not in linops}
    if unknown:
        raise SpecError(f"unknown operator {', '.join(unknown)}", None,
                        f"the spec declares operators: {', '.join(program.operators) or '(none)'}")
    try:
        return _unfold(program, bind_dims(program, shapes, dims), K)
    except SpecError as e:
        raise e.with_source(program.source)


def generate(spec: str | Path | ast.Spec | Program | Network, K: int | None = None,
             dims: Mapping[str, int] | None = None, class_name: str | None = None, **operators):
    """The source of the standalone PyTorch module for a spec (or an unfolded `Network`) without
    building it: a `Generated` with `.source`, `.class_name` and `.line_map` (line -> node, span).

    Example: `unroll.generate("zoo:lista", K=16, dims={"n": 64, "m": 128}).source`.
    Operators (arrays or shapes) and `dims` give the sizes, as for `unfold`.
    """
    from .backends.torch_codegen import generate as _generate
    u = spec if isinstance(spec, Network) else unfold(spec, K, dims, **operators)
    return _generate(u, class_name)


def compile(spec: str | Path | ast.Spec | Program, K: int | None = None,
            dims: Mapping[str, int] | None = None, dtype=None, device=None, fast: bool = False,
            grad: str = "unroll", **operators):
    """Compile a spec into a `torch.nn.Module`, with the fixed operators given by name.

    Example: `unroll.compile("zoo:lista", K=16, A=A)` -> module; `module(y=y)` -> x.
    `fast=True` runs the layers under torch.compile (CUDA graphs on a GPU); see backends.fast.
    `grad` picks how gradients flow through the layers: unroll, checkpoint, truncated:T or
    implicit (see backends.grad_modes); a spec that cannot use implicit is a SpecError saying why.
    """
    import torch

    from .backends.grad_modes import apply as apply_grad, parse_grad
    from .backends.torch_backend import lower
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    mode, _ = parse_grad(grad)
    if fast and mode != "unroll":
        raise ValueError(f"fast=True runs grad='unroll' only (got grad={grad!r})")
    u = unfold(spec, K, dims, **operators)
    if mode == "implicit":
        from .compiler.fixed_point import implicit_problem
        problem = implicit_problem(u.program, u.K)
        if problem is not None:
            raise problem
    from .backends.numpy_backend import operator_defaults
    operators = {**operators, **operator_defaults(u.program, u.dims, operators)}
    missing = [o for o in u.program.operators if o not in operators]
    if missing:
        raise SpecError(f"operator {', '.join(missing)} was not given", u.program.operators[
            missing[0]].span, f"pass it by name: unroll.compile(spec, {missing[0]}=array)",
            u.program.source)
    module = lower(u, operators, dtype or torch.float32, device, layered=mode != "unroll")
    apply_grad(module, grad)
    if fast:
        from .backends.fast import accelerate
        accelerate(module)
    return module
