"""The objective trace: the cost terms of the output after every layer, from the spec's costs."""
import numpy as np
import torch

import unroll
from unroll.backends.numpy_backend import evaluate


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((20, 40))
    A /= np.linalg.norm(A, axis=0)
    x = rng.standard_normal((4, 40)) * (rng.random((4, 40)) < 0.2)
    return A, x @ A.T


def test_objective_matches_the_numpy_oracle_and_a_direct_formula():
    A, y = _problem()
    m = unroll.compile("zoo:fista", K=20, A=A, dtype=torch.float64)
    got = m.objective(y=torch.tensor(y)).detach().numpy()
    assert got.shape == (20, 4)
    ref = evaluate(m.unfolded, {"A": A}, {"y": y})["objective"]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    _, layers = m(y=torch.tensor(y), return_layers=True)
    x = layers[-1].detach().numpy()
    direct = 0.5 * np.sum((x @ A.T - y) ** 2, axis=1) + 0.1 * np.abs(x).sum(axis=1)
    np.testing.assert_allclose(got[-1], direct, rtol=1e-12)


def test_ista_objective_never_increases():
    A, y = _problem(1)
    m = unroll.compile("zoo:ista", K=200, A=A, dtype=torch.float64)
    obj = m.objective(y=torch.tensor(y)).detach().numpy()
    assert np.all(np.diff(obj, axis=0) <= 1e-12)
    assert obj[-1].mean() < obj[0].mean()


def test_specs_without_costs_of_the_output_have_no_objective():
    spec = """
dims n
input y : [n]
state x : [n] = 0
iterate K = 2:
    x = x + y
output x
"""
    m = unroll.compile(spec, dims={"n": 3})
    assert not hasattr(m, "objective")
