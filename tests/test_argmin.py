"""argmin(x: q) for q quadratic in x lowers to a dense solve or to unrolled conjugate gradients,
both agreeing with numpy.linalg.solve on the normal equations."""
import numpy as np
import pytest
import torch

import unroll
from unroll.compiler.symbolic import unicode
from unroll.errors import DerivationError

SPEC = """algorithm q
dims n, m
operator A : [n, m]
operator D : [m, m]
input y : [n]
input z : [m]
const rho = 0.5
cost f(x) = 1/2 * ||A x - y||^2
state x : [m] = 0
iterate K = 1:
    x = argmin(x: {q}{opts})
output x
"""
Q = "f(x) + rho / 2 * ||D x - z||^2"


def _data():
    rng = np.random.default_rng(3)
    A, D = rng.standard_normal((8, 6)), rng.standard_normal((6, 6))
    y, z = rng.standard_normal((3, 8)), rng.standard_normal((3, 6))
    H = A.T @ A + 0.5 * D.T @ D
    want = np.linalg.solve(H, (y @ A + 0.5 * z @ D).T).T
    return A, D, y, z, want


@pytest.mark.parametrize("opts", ["", ", method = dense", ", method = cg, iters = 6"])
def test_argmin_matches_numpy_solve(opts):
    A, D, y, z, want = _data()
    spec = SPEC.format(q=Q, opts=opts)
    model = unroll.compile(spec, dtype=torch.float64, A=A, D=D)
    got = model(y=torch.tensor(y), z=torch.tensor(z)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-9)
    ops = [model.unfolded.graph[n].op for n in model.unfolded.graph]
    assert ("solve" in ops) == ("cg" not in opts)


def test_dense_path_prints_the_normal_equations():
    p = unroll.check(SPEC.format(q=Q, opts=""))
    assert unicode(p.updates["x"]) == "(AᵀA + 0.5 DᵀD)⁻¹(Aᵀy + 0.5 Dᵀz)"


def test_elementwise_weights_use_conjugate_gradients():
    A, D, y, z, _ = _data()
    spec = SPEC.format(q="f(x) + 1/2 * ||z * x||^2", opts=", iters = 12")
    model = unroll.compile(spec, dtype=torch.float64, A=A, D=D)
    got = model(y=torch.tensor(y), z=torch.tensor(z)).numpy()
    for b in range(3):
        want = np.linalg.solve(A.T @ A + np.diag(z[b] ** 2), A.T @ y[b])
        np.testing.assert_allclose(got[b], want, rtol=1e-6, atol=1e-8)


def test_cg_is_differentiable():
    A, D, y, z, _ = _data()
    model = unroll.compile(SPEC.format(q=Q, opts=", method = cg, iters = 6"), dtype=torch.float64,
                           A=A, D=D)
    yt = torch.tensor(y, requires_grad=True)
    model(y=yt, z=torch.tensor(z)).sum().backward()
    assert torch.isfinite(yt.grad).all()


def test_not_quadratic_is_an_error():
    with pytest.raises(DerivationError, match="quadratic in x"):
        unroll.check(SPEC.format(q="f(x) + sum(exp(x))", opts=""))
