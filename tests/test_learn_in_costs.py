"""Learnables inside cost terms: prox, grad, argmin and the solver templates build learned
per-layer (and shared) coefficients, in torch and in the float64 oracle alike."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends import numpy_backend as nb

HEAD = """algorithm T "t"
dims n, m
operator A : [n, m]
input    y : [n]
target   x_star : [m]
const L = norm2(A)^2
"""

PROX = HEAD + """learn lam : [] = 0.1 per_layer positive
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * ||x||_1
state x : [m] = 0
iterate K = 4:
    x = prox(g, x - grad(f, x) / L, 1 / L)
output x
loss mse(x, x_star)
"""

ADMM = HEAD + """learn lam : [] = 0.1 per_layer positive
learn rho : [] = 1 per_layer positive
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * ||x||_1
state x : [m] = 0
solve f + g with admm(rho = rho, K = 4)
output x
loss mse(x, x_star)
"""

FISTA = HEAD + """learn lam : [] = 0.1 per_layer positive
learn step : [] = 1 / L per_layer positive
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * ||x||_1
state x : [m] = 0
solve f + g with fista(step = step, K = 4)
output x
loss mse(x, x_star)
"""

GRAD_ARGMIN = HEAD + """learn mu : [] = 0.5 per_layer positive
learn w : [m] = 1 shared positive
cost f(x) = 1/2 * ||A x - y||^2 + mu / 2 * ||x||^2
cost h(x) = 1/2 * sum(w * x^2)
state x : [m] = 0
iterate K = 3:
    v = x - grad(f + h, x) / (L + 2)
    x = argmin(x: f(x) + 1/2 * ||x - v||^2)
output x
loss mse(x, x_star)
"""


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((10, 20)) / 3, rng.standard_normal((3, 10)),
            rng.standard_normal((3, 20)))


def _perturbed(spec, A):
    torch.manual_seed(0)
    m = unroll.compile(spec, A=A, dtype=torch.float64)
    with torch.no_grad():  # every layer's copy differs, so a wrong copy would show
        for p in m.parameters():
            p.mul_(torch.empty_like(p).uniform_(0.5, 1.5))
    return m, {k: v.detach().numpy() for k, v in m.parameter_values().items()}


def _soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0)


def test_per_layer_lambda_in_prox_matches_hand_written():
    A, y, xs = _data()
    m, pv = _perturbed(PROX, A)
    L = np.linalg.norm(A, 2) ** 2
    x = np.zeros((3, 20))
    for k in range(4):
        x = _soft(x - (x @ A.T - y) @ A / L, pv[f"lam_{k}"] / L)
    out = m(y=torch.tensor(y)).detach().numpy()
    assert np.abs(out - x).max() < 1e-12
    assert sorted(n for n, _ in m.named_parameters()) == [f"layers.{k}.lam" for k in range(4)]


def test_per_layer_lambda_and_rho_in_admm_template():
    A, y, xs = _data()
    m, pv = _perturbed(ADMM, A)
    x, z, u = (np.zeros((3, 20)) for _ in range(3))
    for k in range(4):
        rho, lam = pv[f"rho_{k}"], pv[f"lam_{k}"]
        x = np.linalg.solve(A.T @ A + rho * np.eye(20), (y @ A + rho * (z - u)).T).T
        z = _soft(x + u, lam / rho)
        u = u + x - z
    out = m(y=torch.tensor(y)).detach().numpy()
    assert np.abs(out - x).max() < 1e-10


def test_grad_and_argmin_with_learnables_in_costs():
    A, y, xs = _data()
    m, pv = _perturbed(GRAD_ARGMIN, A)
    L = np.linalg.norm(A, 2) ** 2
    x = np.zeros((3, 20))
    for k in range(3):
        mu, w = pv[f"mu_{k}"], pv["w"]
        v = x - ((x @ A.T - y) @ A + mu * x + w * x) / (L + 2)
        x = np.linalg.solve(A.T @ A + (mu + 1) * np.eye(20), (y @ A + v).T).T
    assert np.abs(m(y=torch.tensor(y)).detach().numpy() - x).max() < 1e-10


@pytest.mark.parametrize("spec", [PROX, ADMM, FISTA, GRAD_ARGMIN],
                         ids=["prox", "admm", "fista", "grad_argmin"])
def test_torch_equals_numpy_oracle_and_every_copy_learns(spec):
    A, y, xs = _data()
    m, pv = _perturbed(spec, A)
    u = unroll.unfold(spec, A=A)
    r = nb.evaluate(u, {"A": A}, {"y": y}, params=pv, targets={"x_star": xs})
    yt, xt = torch.tensor(y), torch.tensor(xs)
    assert np.abs(r["output"] - m(y=yt).detach().numpy()).max() < 1e-10
    # the objective of layer k uses layer k's copy; the loss the last layer's
    assert np.allclose(r["objective"], m.objective(y=yt).detach().numpy(), rtol=1e-10)
    loss = m.loss({"y": yt, "x_star": xt})
    assert abs(loss.item() - float(r["loss"])) < 1e-10
    loss.backward()
    first = [p for n, p in m.named_parameters() if n.startswith("layers.0.")]
    assert first and all(p.grad is not None and p.grad.abs().sum() > 0 for p in first)


def test_objective_uses_each_layers_lambda():
    A, y, _ = _data()
    m, pv = _perturbed(PROX, A)
    yt = torch.tensor(y)
    _, layers = m(y=yt, return_layers=True)
    obj = m.objective(y=yt).detach().numpy()
    for k, xk in enumerate(layers):
        xk = xk.detach().numpy()
        want = 0.5 * ((xk @ A.T - y) ** 2).sum(1) + pv[f"lam_{k}"] * np.abs(xk).sum(1)
        assert np.allclose(obj[k], want, rtol=1e-12)
