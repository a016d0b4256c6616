"""Build-time linear algebra (pinv, inv, diag) and the identity's size inside scaled sums: what
TISTA's W = A'(AA')^-1 and ALISTA's analytic weight need, computed by the compiler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import unroll
from unroll.backends import numpy_backend
from unroll.errors import SpecError

LINALG = """dims n, m
operator A : [n, m]
input y : [n]
const P = pinv(A)
const H = inv(A A' + 2 * I)
const d = diag(A' A)
state x : [m] = 0
iterate K = 2:
    x = x + P (y - A x) + diag(d) (A' H y) - {extra}
output x
"""


@pytest.mark.parametrize("extra", ["0 * x", "(I - 0.5 * I) x * 0"])
def test_pinv_inv_diag_match_numpy(extra):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 7))
    y = rng.standard_normal((3, 4))
    spec = LINALG.format(extra=extra)
    model = unroll.compile(spec, A=torch.tensor(A), dtype=torch.float64)
    P, H, d = np.linalg.pinv(A), np.linalg.inv(A @ A.T + 2 * np.eye(4)), np.diag(A.T @ A)
    x = np.zeros((3, 7))
    for _ in range(2):
        x = x + (y - x @ A.T) @ P.T + (y @ H.T @ A) * d
    np.testing.assert_allclose(model(y=torch.tensor(y)).numpy(), x, rtol=1e-10, atol=1e-12)
    oracle = numpy_backend.evaluate(unroll.unfold(spec, A=A), {"A": A}, {"y": y})["output"]
    np.testing.assert_allclose(oracle, x, rtol=1e-10, atol=1e-12)


def test_scaled_identity_takes_its_size():
    spec = """dims m
input y : [m]
learn M : [m, m] = I
state x : [m] = 0
iterate K = 1:
    x = (M - 2 * I) y + inv(M + 3 * I) y
output x
"""
    model = unroll.compile(spec, dims={"m": 3}, dtype=torch.float64)
    y = torch.randn(2, 3, dtype=torch.float64)
    assert torch.allclose(model(y=y), -y + y / 4)


@pytest.mark.parametrize("expr, needle", [
    ("pinv(y)", "pinv needs a fixed matrix (no batch axis), got [n]"),
    ("inv(A)", "inv needs a fixed square matrix"),
    ("diag(A)", "diag takes a vector [n] or a square matrix [n, n], got [n, m]"),
])
def test_linalg_shape_errors_are_located(expr, needle):
    spec = f"""dims n, m
operator A : [n, m]
input y : [n]
state x : [n] = 0
iterate K = 1:
    x = {expr} + x
output x
"""
    with pytest.raises(SpecError) as info:
        unroll.check(spec)
    assert needle in str(info.value) and ":6:" in str(info.value)


def test_unknown_function_hints_name_every_builtin():
    spec = "dims m\ninput y : [m]\nstate x : [m] = 0\niterate K = 1:\n    x = reshap(y, [m])\noutput x\n"
    with pytest.raises(SpecError, match="did you mean 'reshape'"):
        unroll.check(spec)
    with pytest.raises(SpecError) as info:
        unroll.check(spec.replace("reshap(y, [m])", "zzz(y)"))
    for name in ("reshape", "vec", "cat", "diff", "grad", "prox", "argmin", "pinv"):
        assert name in str(info.value)
