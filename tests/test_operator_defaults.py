"""Operators with a default (`operator W : [n, m] = expr`): computed by the compiler from dims and
the operators above it when none is given, used as given otherwise. zoo:alista's W defaults to
the analytic weight, which matches the authors' released W for the standard LISTA matrix."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import unroll
from unroll.backends import numpy_backend
from unroll.cli.main import main
from unroll.data import load_standard_problem
from unroll.errors import SpecError

SPEC = """dims n, m
operator A : [n, m]
operator G : [n, n] = A A' + 0.5 * I
operator W : [n, m] = inv(G) A
input y : [n]
state x : [m] = 0
iterate K = 3:
    x = x - W'(A x - y)
output x
"""


def _A(seed=0, n=5, m=8):
    return np.random.default_rng(seed).standard_normal((n, m))


def _buffers(model):
    return {k: v.numpy() for k, v in model.named_buffers()}


def test_defaults_chain_and_a_given_operator_wins():
    A = _A()
    model = unroll.compile(SPEC, A=A, dtype=torch.float64)
    G = A @ A.T + 0.5 * np.eye(5)
    W = np.linalg.solve(G, A)
    got = _buffers(model)
    np.testing.assert_allclose(got["G"], G, rtol=1e-12)
    np.testing.assert_allclose(got["W"], W, rtol=1e-10, atol=1e-12)
    y = np.random.default_rng(1).standard_normal((2, 5))
    x = np.zeros((2, 8))
    for _ in range(3):
        x = x - (x @ A.T - y) @ W
    np.testing.assert_allclose(model(y=torch.tensor(y)).numpy(), x, rtol=1e-10, atol=1e-12)
    oracle = numpy_backend.evaluate(unroll.unfold(SPEC, A=A), {"A": A}, {"y": y})["output"]
    np.testing.assert_allclose(oracle, x, rtol=1e-10, atol=1e-12)
    mine = np.ones((5, 8))  # given: used as it is, the default is not computed
    given = unroll.compile(SPEC, A=A, W=mine, dtype=torch.float64)
    assert np.array_equal(_buffers(given)["W"], mine)


BAD = """dims n, m
input y : [n]
operator A : [n, m]
operator G : [n, n] = A A'
{line}
operator V : [n, m]
state x : [m] = 0
iterate K = 1:
    x = x - W'(A x - y) + 0 * V' y
output x
"""


@pytest.mark.parametrize("line, needle", [
    ("operator W : [n, m] = inv(G) A + V", "'V' is used before its declaration"),
    ("operator W : [n, m] = A'", "operator W is declared [n, m] but its value has shape [m, n]"),
    ("operator W : [n, m] = inv(G) A + 0 * y", "input 'y' cannot be used here"),
    ("operator W : [m] <- [n] linear = A", "syntax error"),
])
def test_bad_defaults_are_located(line, needle):
    with pytest.raises(SpecError) as info:
        unroll.check(BAD.format(line=line))
    assert needle in str(info.value) and "<spec>:5:" in str(info.value)


def test_show_prints_the_default(tmp_path, capsys):
    spec = tmp_path / "s.unroll"
    spec.write_text(SPEC)
    assert main(["show", str(spec)]) == 0
    assert "W : [n, m] = inv(G) A   (when not given)" in capsys.readouterr().out


def test_alista_default_is_the_authors_analytic_weight():
    """The closed form (column i of (AA')^-1 A over a_i'(AA')^-1 a_i) against the W the ALISTA
    authors released for the standard 250 x 500 LISTA matrix (solved iteratively by them)."""
    data = Path(os.environ["UNROLL_DATA"])
    A, _, _ = load_standard_problem(data)
    released = np.load(data / "sparse" / "W.npy")
    model = unroll.compile("zoo:alista", K=2, A=A, dtype=torch.float64)
    W = _buffers(model)["W"]
    np.testing.assert_allclose(np.diag(W.T @ A), 1.0, atol=1e-10)
    assert np.abs(W - released).max() < 2e-3 < 0.1 * np.abs(released).max()
