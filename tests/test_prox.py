"""Every prox in the table solves its minimisation: compare the compiled prox(g, v, t) with a brute
force minimisation of g(x) + ‖x − v‖²/(2t) (a 1-D grid per coordinate for separable terms, scipy
for the rest)."""
import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import unroll
from unroll.errors import DerivationError

T, LAM, MU, LO, HI = 0.7, 0.4, 0.3, -0.5, 0.8

# (cost text, numpy cost of one vector, separable)
TABLE = [
    ("lam * ||x||_1", lambda x: LAM * np.abs(x).sum(), True),
    ("lam * ||x||_0", lambda x: LAM * np.count_nonzero(np.abs(x) > 1e-12), True),
    ("nonneg(x)", lambda x: 0.0 if (x >= -1e-12).all() else np.inf, True),
    ("box(x, lo, hi)", lambda x: 0.0 if ((x >= LO - 1e-12) & (x <= HI + 1e-12)).all() else np.inf,
     True),
    ("lam / 2 * ||x||^2", lambda x: LAM / 2 * (x @ x), True),
    ("lam * ||x||", lambda x: LAM * np.linalg.norm(x), False),
    ("lam * ||x||_1 + mu / 2 * ||x||^2", lambda x: LAM * np.abs(x).sum() + MU / 2 * (x @ x), True),
    ("lam * ||x||_1 + nonneg(x)",
     lambda x: LAM * np.abs(x).sum() + (0.0 if (x >= -1e-12).all() else np.inf), True),
    ("lam / 2 * ||x||^2 + box(x, lo, hi)",
     lambda x: LAM / 2 * (x @ x) + (0.0 if ((x >= LO - 1e-12) & (x <= HI + 1e-12)).all()
                                    else np.inf), True),
]


def _spec(cost: str) -> str:
    return f"""algorithm p
dims m = 6
input v : [m]
const lam = {LAM}
const mu = {MU}
const lo = {LO}
const hi = {HI}
const t = {T}
cost g(x) = {cost}
state x : [m] = v
iterate K = 1:
    x = prox(g, x, t)
output x
"""


def _brute(fn, v, separable):
    obj = lambda x: fn(x) + np.sum((x - v) ** 2) / (2 * T)  # noqa: E731
    if separable:
        grid = np.linspace(-4, 4, 160001)
        out = np.zeros_like(v)
        for i in range(len(v)):
            vals = [obj(np.where(np.arange(len(v)) == i, g, 0 * v)) - np.sum(
                np.delete((0 * v - v) ** 2, i)) / (2 * T) for g in grid[::400]]
            c = grid[::400][int(np.argmin(vals))]
            fine = grid[(grid > c - 0.03) & (grid < c + 0.03)]
            vals = [fn(np.full(1, g)) + (g - v[i]) ** 2 / (2 * T) for g in fine]
            out[i] = fine[int(np.argmin(vals))]
        return out
    res = minimize(obj, v, method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 40000, "maxfev": 40000})
    return res.x


@pytest.mark.parametrize("cost,fn,separable", TABLE, ids=[t[0] for t in TABLE])
def test_prox_is_the_minimiser(cost, fn, separable):
    rng = np.random.default_rng(1)
    v = rng.standard_normal((4, 6)) * 1.5
    got = unroll.compile(_spec(cost), dtype=torch.float64)(v=torch.tensor(v)).numpy()
    obj = lambda x, vv: fn(x) + np.sum((x - vv) ** 2) / (2 * T)  # noqa: E731
    for b in range(len(v)):
        ref = _brute(fn if not separable else (lambda x: fn(x)), v[b], separable)
        assert obj(got[b], v[b]) <= obj(ref, v[b]) + 1e-8
        np.testing.assert_allclose(got[b], ref, atol=1e-4)


def test_unsupported_form_lists_the_table():
    with pytest.raises(DerivationError) as e:
        unroll.check(_spec("lam * ||x||_inf"))
    msg = str(e.value)
    assert "no proximal operator for cost g" in msg
    assert "soft(v, tλ)" in msg and "clamp(v, lo, hi)" in msg and "relu(v)" in msg


def test_prox_of_l1_prints_as_soft_thresholding():
    from unroll.compiler.symbolic import unicode
    p = unroll.check(_spec("lam * ||x||_1"))
    assert unicode(p.updates["x"]) == "soft(x, 0.28)"
