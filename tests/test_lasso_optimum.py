"""Classical ISTA, FISTA and ADMM written as solver templates reach the lasso optimum computed by
an independent solver (L-BFGS-B on the split x = u − v, u, v ≥ 0), in float64."""
import numpy as np
import pytest
from scipy.optimize import minimize

import unroll
from unroll.backends.numpy_backend import evaluate

LAM = 0.1


def _problem():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20, 40)) / np.sqrt(20)
    x_true = np.zeros(40)
    x_true[rng.choice(40, 4, replace=False)] = rng.standard_normal(4)
    y = A @ x_true + 0.01 * rng.standard_normal(20)
    return A, y


def _reference(A, y):
    m = A.shape[1]

    def fun(w):
        x = w[:m] - w[m:]
        r = A @ x - y
        g = A.T @ r
        return 0.5 * r @ r + LAM * w.sum(), np.concatenate([g + LAM, -g + LAM])

    res = minimize(fun, np.zeros(2 * m), jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * m),
                   options={"ftol": 1e-16, "gtol": 1e-14, "maxiter": 50000, "maxcor": 50})
    x = res.x[:m] - res.x[m:]
    # Polish with exact coordinate descent (independent of the compiled solvers).
    col = (A * A).sum(0)
    for _ in range(3000):
        for j in range(m):
            r = y - A @ x + A[:, j] * x[j]
            rho = A[:, j] @ r
            x[j] = np.sign(rho) * max(abs(rho) - LAM, 0.0) / col[j]
    return x


def _spec(method: str, opts: str) -> str:
    return f"""algorithm lasso_{method}
dims n, m
operator A : [n, m]
input y : [n]
const lam = {LAM}
const L = norm2(A)^2
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * ||x||_1
state x : [m] = 0
solve f + g with {method}({opts}, K = 2000)
output x
"""


@pytest.fixture(scope="module")
def lasso():
    A, y = _problem()
    return A, y, _reference(A, y)


@pytest.mark.parametrize("method,opts", [("ista", "L = L"), ("fista", "L = L"), ("admm", "rho = 1")])
def test_template_reaches_lasso_optimum(lasso, method, opts):
    A, y, x_ref = lasso
    u = unroll.unfold(_spec(method, opts), A=A)
    assert u.K == 2000
    x = evaluate(u, {"A": A}, {"y": y[None]})["output"][0]
    assert np.linalg.norm(x - x_ref) <= 1e-5 * np.linalg.norm(x_ref)
