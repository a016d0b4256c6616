"""Issue 11 item 9: `show` prints shared sub-expressions once and consts by value, syntax hints
never show parser-internal names, and the dense argmin solves a batch as one matrix."""
import numpy as np
import pytest
import torch

import unroll
from unroll.cli.inspect_cmds import show_text
from unroll.dsl.parser import parse
from unroll.errors import SpecSyntaxError

CG = """algorithm q
dims n, m
operator A : [n, m]
input y : [n]
input z : [m]
const lam = 0.1
cost f(x) = 1/2 * ||A x - y||^2
state x : [m] = 0
iterate K = 1:
    x = argmin(x: f(x) + 1/2 * ||z * x||^2, iters = {iters})
output x
"""


@pytest.mark.parametrize("iters", [5, 20])
def test_show_prints_a_cg_argmin_in_text_linear_in_the_iterations(iters):
    text = show_text(unroll.check(CG.format(iters=iters)), None, {})
    assert len(text) < 400 * iters  # it was 13 MB at 5 iterations
    update = text.split("update")[1].split("outputs")[0]
    assert "t1 = A' y" in update
    assert update.count("A' y") == 1  # printed once, then used by name


def test_show_prints_a_numeric_const_by_its_value():
    text = show_text(unroll.check(CG.format(iters=2)), None, {})
    assert "lam = 0.1" in text and "lam = lam" not in text


def test_shared_temporaries_avoid_spec_names():
    src = CG.format(iters=3).replace("const lam = 0.1", "const t1 = 0.1")
    text = show_text(unroll.check(src), None, {})
    assert "t2 = A' y" in text and "t1 = 0.1" in text


@pytest.mark.parametrize("text, shown", [
    ("const a = x ||\n", "'||'"),
    ("dims n\niterate K = 2:\n    x = a || b\n", "'||'"),
    ("block B : [2] [2]\n", "'['"),
    ("block B : [2] -> [2] = linear(2 -> )\n", "')'"),
])
def test_syntax_errors_never_show_parser_internal_names(text, shown):
    with pytest.raises(SpecSyntaxError) as e:
        parse(text)
    msg = str(e.value)
    assert shown in msg
    for internal in ("anon", "ANON", "rpar", "lsqb", "minus", "__"):
        assert internal not in msg


def test_expected_tokens_are_written_as_text():
    with pytest.raises(SpecSyntaxError) as e:
        parse("block B : [2] [2]\n")
    assert "'->'" in str(e.value)


def test_dense_argmin_with_a_learnable_coefficient_agrees_and_backpropagates():
    """The batched solve gives the normal-equation solution per sample and the same gradient as
    a per-sample solve (what the broadcast lowering computed)."""
    spec = """algorithm r
dims n, m
operator A : [n, m]
input y : [n]
cost f(x) = 1/2 * ||A x - y||^2
learn rho : [] = 0.7 per_layer positive
state x : [m] = 0
iterate K = 1:
    x = argmin(x: f(x) + rho / 2 * ||x - 1||^2)
output x
"""
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((5, 4)), rng.standard_normal((3, 5))
    model = unroll.compile(spec, dtype=torch.float64, A=A)
    assert "solve" in [model.unfolded.graph[n].op for n in model.unfolded.graph]
    out = model(y=torch.tensor(y))
    want = np.linalg.solve(A.T @ A + 0.7 * np.eye(4), (y @ A + 0.7).T).T
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-8)
    out.square().sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    scope = type(model)._run.__globals__
    batched = scope["_solve"]
    scope["_solve"] = lambda H, b: torch.stack([torch.linalg.solve(H, v) for v in b])
    try:
        model.zero_grad()
        model(y=torch.tensor(y)).square().sum().backward()
    finally:
        scope["_solve"] = batched
    for a, p in zip(got, model.parameters()):
        torch.testing.assert_close(a, p.grad)
