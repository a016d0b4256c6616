"""One home for op facts: every compiler-side table keyed by op names uses names from `ops.OPS`
(or `ops.NODES`), the tables other modules keep are the known few, and each entry carries its
facts (shape rule, folding, VJP, smoothness, printed forms, drawing kind)."""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import unroll
import unroll.compiler
from unroll import viz
from unroll.compiler import algebra as al
from unroll.compiler import pretty, prox, symbolic, templates
from unroll.compiler.constraints import BASES, CONSTRAINTS
from unroll.compiler.ir import LEAF_OPS, Value
from unroll.compiler.ops import (FUNCTIONS, IDENT, NODES, OPS, SPECIAL_CALLS, ZERO_PRESERVING, Mismatch,
                                 infer_shape)
from unroll.dsl import ast
from unroll.errors import DerivationError, Span

NAMES = set(OPS) | set(NODES)

# Module-level tables outside ops.py whose keys are op names, and why each stays where it is.
# A new one makes test_no_other_module_keeps_a_per_op_table fail: put the fact into OpInfo.
ALLOWED_TABLES = {
    "unroll.compiler.symbolic._ALGEBRA": "sympy's model of the linear ops (a lowering, like a backend's)",
    "unroll.compiler.pretty.PRECEDENCE": "read from OpInfo.precedence",
    "unroll.compiler.prox.PROX": "read from OpInfo.prox",
    "unroll.compiler.prox._SEPARABLE": "read from OpInfo.prox",
    "unroll.compiler.gradflow.REMEDIES": "read from OpInfo.remedy",
    "unroll.compiler.blocks._ACTIVATIONS": "layer kinds of a block that are ops",
    "unroll.compiler.blocks.LAYER_KINDS": "layer kinds of a block (conv, linear and the activations)",
    "unroll.compiler.ir.LEAF_OPS": "the leaves among NODES (and linop_norm)",
    "unroll.compiler.algebra._SMART": "algebra's simplifying constructors (OpInfo.number folds numbers)",
    "unroll.compiler.channels.CALLS": "spec calls the checker hands to channels (sum_k is not an op)",
    "unroll.compiler.blocks.CALLS": "channels.CALLS, imported",
    "unroll.compiler.channels._AXIS_OPS": "spec names of the reductions along an axis -> their ops",
    "unroll.compiler.quadratic._SHAPED": "read from OpInfo.along_axis",
}


def _compiler_modules():
    for m in pkgutil.iter_modules(unroll.compiler.__path__):
        yield importlib.import_module(f"unroll.compiler.{m.name}")
    yield viz


def _op_keyed_tables():
    """(qualified name, keys) of module-level containers with at least three op names as keys
    (those imported from ops, and Python's reserved words, are not tables of their own)."""
    from unroll.compiler import ops
    imported = {id(v) for v in vars(ops).values()}
    for mod in _compiler_modules():
        if mod.__name__ == "unroll.compiler.ops":
            continue
        for name, obj in vars(mod).items():
            if name.startswith("__") or name == "RESERVED" or id(obj) in imported:
                continue
            if isinstance(obj, dict):
                keys = list(obj)
            elif isinstance(obj, (set, frozenset, tuple)):
                keys = list(obj)
            else:
                continue
            strs = {k for k in keys if isinstance(k, str)}
            if len(strs & set(OPS)) >= 3:
                yield f"{mod.__name__}.{name}", strs


def test_no_other_module_keeps_a_per_op_table():
    found = {name for name, _ in _op_keyed_tables()}
    assert found <= set(ALLOWED_TABLES), f"per-op tables outside ops.py: {found - set(ALLOWED_TABLES)}"


def test_every_op_keyed_table_uses_names_from_ops():
    for name, keys in _op_keyed_tables():
        keys = keys - {"conv", "linear", "sum_k"}  # block layer kinds, the loss's sum over layers
        assert keys <= NAMES, f"{name} names unknown ops {keys - NAMES}"
    for table in (FUNCTIONS.values(), SPECIAL_CALLS, ZERO_PRESERVING, LEAF_OPS):
        assert set(table) <= NAMES
    assert not set(OPS) & set(NODES)


def test_derived_tables_match_the_entries():
    assert set(prox.PROX) == {n for n, o in OPS.items() if o.prox}
    assert pretty.PRECEDENCE == {n: o.precedence for n, o in OPS.items() if o.precedence}
    assert FUNCTIONS["max"] == "maximum" and FUNCTIONS["norm2"] == "opnorm"
    assert all(OPS[op].call == name for name, op in FUNCTIONS.items())


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_carries_its_facts(name):
    o = OPS[name]
    lo, hi = o.arity
    assert 0 <= lo <= hi and o.doc
    assert o.kind in viz.KIND_COLORS
    assert all(p < hi for p in o.zero_grad)
    assert o.out_dtype in ("same", "real", "complex")
    if o.vjp is not None:  # a rule for grad implies the op is smooth
        assert o.smooth, name
    if o.zero_grad or o.remedy:
        assert o.zero_grad and o.remedy, name
    if o.infix is not None:
        assert o.precedence is not None and lo == hi == 2
    if isinstance(o.text, str):
        assert o.text.format(*["a"] * hi)
    if o.sym is not None:
        assert all(f.format(*["a"] * hi) for f in o.sym)


def test_shape_rules_cover_every_op_that_is_not_custom():
    for name, o in OPS.items():
        if o.rule == "custom":
            assert infer_shape(name, [(3,)] * o.arity[0]) is None
            continue
        shapes = {"matmul": [(3, 4), (4,)], "transpose": [(3, 4)], "matrix_scalar": [(3, 3)],
                  "fourier": [(4, 4)], "cconv": [(2, 3, 3), (8, 8)],
                  "cconv_t": [(2, 3, 3), (2, 8, 8)], "bank": [(5, 2), (5, 3, 3)],
                  "sum_l": [(2, 8)], "plf": [(2, 8), (2, 5), (), ()], "pinv": [(3, 4)],
                  "inv": [(3, 3)], "diag": [(3, 3)], "quantile": [(3,), ()],
                  "soft_ss": [(3,), (3,), ()], "norm21": [(3, 2)],
                  "gnorm": [(3, 2)], "ball": [(3,), ()]}.get(o.rule, [(3,)] * o.arity[0])
        numbers = [s == () for s in shapes]
        got = infer_shape(name, shapes, None, numbers)
        assert isinstance(got, tuple), (name, got)


def test_shape_rules_report_mismatches():
    bad = infer_shape("add", [(3,), (4,)])
    assert isinstance(bad, Mismatch) and bad.message == "cannot add [3] and [4]" and bad.describe == (0, 1)
    assert infer_shape("add", [(3, 1), (1, 4)]) == (3, 4)
    assert infer_shape("add", [IDENT, (3, 3)]) == (3, 3)
    assert isinstance(infer_shape("add", [IDENT, (3, 4)]), Mismatch)
    assert "inner dimensions differ" in infer_shape("matmul", [(3, 4), (5,)]).message
    assert infer_shape("matmul", [(3, 4), (4, 2)]) == (3, 2)
    assert infer_shape("cconv", [(2, 3, 3), (8,)]).at == 1
    assert infer_shape("plf", [(2, 8), (2, 5), (), ()], numbers=[False, False, True, False]).at == 3


def test_algebra_reports_a_mismatch_instead_of_keeping_the_left_shape():
    a = Value("input", (), ("a",), (3,), True)
    b = Value("input", (), ("b",), (4,), True)
    with pytest.raises(DerivationError, match=r"cannot add \[3\] and \[4\]"):
        al.mk("add", a, b)
    with pytest.raises(DerivationError, match="inner dimensions differ"):
        al.mk("matmul", Value("operator", (), ("A",), (3, 5)), a)
    assert al.mk("add", a, Value("input", (), ("c",), (3,), True)).shape == (3,)


def test_templates_judge_smoothness_by_the_op_entries():
    span = Span()
    x = ast.Name(span, "x")
    for fname, op in FUNCTIONS.items():
        call = ast.Call(span, fname, (x,) * max(OPS[op].arity[0], 1))
        assert templates.smooth(call) == OPS[op].smooth, fname


def test_printed_forms_come_from_the_entries():
    x = Value("input", (), ("x",), (3,), True)
    y = Value("input", (), ("y",), (3,), True)
    assert pretty.to_text(al.mk("maximum", x, y)) == "max(x, y)"
    assert pretty.to_text(al.mk("norm1", x)) == "||x||_1"
    assert pretty.to_text(al.mk("mul", al.mk("add", x, y), y)) == "(x + y) * y"
    assert symbolic.unicode(al.mk("norm1", x)) == "‖x‖₁"
    assert viz.op_kind("soft") == "nonlinear" and viz.op_kind("param") == "param"


def test_every_constraint_is_in_the_grammar_and_the_table():
    grammar = Path(unroll.__file__).parent / "dsl" / "unroll.lark"
    line = next(l for l in grammar.read_text().splitlines() if l.startswith("MODIFIER"))
    words = set(re.findall(r"[a-z_]+", line.split(":", 1)[1]))
    assert set(BASES) <= words
    assert {c.base for c in CONSTRAINTS.values()} == set(BASES)
    for c in CONSTRAINTS.values():
        assert c.method in ("project", "softplus", "sigmoid")
        lo, hi = c.domain
        assert lo is not None or hi is not None, c.name
        if c.method == "project":  # the projection keeps values strictly inside the domain
            bound = c.lo if c.lo is not None else c.hi
            assert bound is not None and not c.outside(bound), c.name
            assert c.outside(lo if lo is not None else hi), c.name


GRAD_SPEC = """dims n
input y : [n]
state x : [n] = 0
cost f(x) = {cost}
iterate K = 1:
    x = {update}
output x
"""


@pytest.mark.parametrize("name", sorted(n for n, o in OPS.items()  # fft2, ifft2: test_complex_grad
                                        if o.vjp and o.call and o.arity == (1, 1)
                                        and o.rule != "fourier"))
def test_each_vjp_rule_matches_autograd_of_the_lowered_op(name):
    """grad(f, y) built from OpInfo.vjp equals torch autograd through the op's torch lowering."""
    import torch
    fn = OPS[name].call
    cost = f"{fn}(x)" if OPS[name].rule == "reduce" else f"sum({fn}(x))"
    value = f"{fn}(y) * (1 + 0 * x)" if OPS[name].rule == "reduce" else f"{fn}(y)"
    if OPS[name].rule == "diag":  # vector -> matrix: back to a vector to be a state's update
        value = f"{fn}({value})"
    derived = unroll.compile(GRAD_SPEC.format(cost=cost, update="grad(f, y)"), dims={"n": 5},
                             dtype=torch.float64)
    direct = unroll.compile(GRAD_SPEC.format(cost=cost, update=value), dims={"n": 5},
                            dtype=torch.float64)
    y = torch.linspace(0.3, 1.7, 10, dtype=torch.float64).reshape(2, 5).requires_grad_()
    out = direct(y=y)
    if not out.requires_grad:  # constant in y (imag of a real value): the gradient is zero
        want = torch.zeros_like(y)
    else:
        want, = torch.autograd.grad(out.sum() if OPS[name].rule != "reduce" else out[:, 0].sum(), y)
    got = torch.as_tensor(derived(y=y), dtype=torch.float64)  # a zero gradient folds to 0
    assert torch.allclose(got, want, atol=1e-12)


def test_printed_equations_read_back_as_the_same_computation():
    """`unroll show`'s text parses back to the same values: products by juxtaposition sit at the
    level of * and / (left to right), so `a / (G v)` keeps its brackets and `(2 * G) v` needs none."""
    import numpy as np
    import torch
    spec = """dims n
operator G : [n, n]
input a : [n]
state v : [n] = a
iterate K = 1:
    u = a / (G v)
    w = a * (G v) + (2 * G) v + G (G v) + G' (a - v) + (G / 2) v
    v = u + w
output v
"""
    lines = pretty.equation_lines(unroll.check(spec))
    assert lines[:2] == ["u = a / (G v)", "w = a * (G v) + 2 * G v + G(G v) + G'(a - v) + G / 2 v"]
    body = "\n".join("    " + line for line in lines)
    again = spec[:spec.index("iterate")] + "iterate K = 1:\n" + body + "\noutput v\n"
    G = np.random.default_rng(0).standard_normal((3, 3)) + 3 * np.eye(3)
    a = torch.rand(2, 3, dtype=torch.float64) + 1
    outs = [unroll.compile(s, G=G, dtype=torch.float64)(a=a) for s in (spec, again)]
    assert torch.equal(outs[0], outs[1])
