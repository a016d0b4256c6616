"""The Euclidean ball indicator `ball(v, r)` as a cost atom: its derived prox is the projection
v · min(1, r / ‖v‖), also about a centre (`ball(p - y, delta)`: the prox rules for translations,
which hold for every atom), `prox_conj` (Moreau) for a dual step, and PDHG for basis-pursuit
denoising against a hand-written loop."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import SpecError

DT = torch.float64

PROX = """dims n
input y : [n]
input c : [n]
const r = 0.7
cost F(x) = {cost}
state x : [n] = 0
iterate K = 1:
    x = {step}
output x
"""


def _model(cost, step="prox(F, y, 0.3)"):
    return unroll.compile(PROX.format(cost=cost, step=step), dims={"n": 4}, dtype=DT)


def _proj(v, r):
    nrm = v.norm(dim=-1, keepdim=True)
    return v * torch.clamp(r / nrm, max=1.0)


def _inputs():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(4, 4, generator=gen, dtype=DT)
    y[1] *= 0.05  # inside the ball
    y[2] = 0.0  # the centre: stays 0, no 0/0
    return y, torch.randn(4, 4, generator=gen, dtype=DT)


def test_the_prox_of_a_ball_is_the_projection():
    y, c = _inputs()
    model = _model("ball(x, r)")
    got = model(y=y, c=c)
    torch.testing.assert_close(got, torch.nan_to_num(_proj(y, 0.7)), rtol=1e-14, atol=1e-15)
    assert torch.equal(got[1], y[1]) and torch.equal(got[2], y[2])
    assert (got.norm(dim=-1) <= 0.7 + 1e-12).all()
    ref = evaluate(model.unfolded, {}, {"y": y.numpy(), "c": c.numpy()})
    np.testing.assert_allclose(ref["output"], got.numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("cost, want", [
    ("ball(x - c, r)", lambda y, c: c + _proj(y - c, 0.7)),
    ("ball(x + c, r)", lambda y, c: -c + _proj(y + c, 0.7)),
    ("ball(c + x, r)", lambda y, c: -c + _proj(y + c, 0.7)),
    ("2 * ||x - c||_1", lambda y, c: c + torch.sign(y - c) * torch.relu((y - c).abs() - 0.6)),
    ("box(x - c, 0, 1)", lambda y, c: c + torch.clamp(y - c, 0, 1)),
    ("1 / 2 * ||x - 1||^2", lambda y, c: 1 + (y - 1) / 1.3),
])
def test_a_translated_atom_has_the_shifted_prox(cost, want):
    y, c = _inputs()
    torch.testing.assert_close(_model(cost)(y=y, c=c), want(y, c), rtol=1e-13, atol=1e-14)


def test_the_ball_as_a_value_is_zero_or_inf():
    spec = PROX.replace("state x : [n] = 0", "state x : [] = 0").replace("output x", "output x")
    model = unroll.compile(spec.format(cost="ball(x, r)", step="ball(y - c, 2)"), dims={"n": 4},
                           dtype=DT)
    y, c = _inputs()
    got = model(y=y, c=c)
    inside = (y - c).norm(dim=-1) <= 2
    assert torch.equal(got, torch.where(inside, 0.0, float("inf")).to(DT))


def test_prox_conj_is_moreau():
    y, c = _inputs()
    model = _model("ball(x - c, r)", "prox_conj(F, y, 0.3)")
    s = 0.3
    want = y - s * (c + _proj(y / s - c, 0.7))
    torch.testing.assert_close(model(y=y, c=c), want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cost, step, msg", [
    ("ball(x, c)", "prox(F, y, 0.3)", r"the radius of ball\(v, r\) is a number"),
    ("ball(x, r) + ||x||_1", "prox(F, y, 0.3)", "no proximal operator for the sum"),
    ("ball(x - c, r) + ||x||_1", "prox(F, y, 0.3)", "a term with a centre"),
    ("ball(x, r)", "prox_conj(F, y)", "prox_conj takes a cost, a point and a step"),
    ("ball(2 * x, r)", "prox(F, y, 0.3)", "no proximal operator for cost F"),
])
def test_bad_uses_are_located_errors(cost, step, msg):
    with pytest.raises(SpecError, match=msg) as e:
        unroll.check(PROX.format(cost=cost, step=step))
    assert e.value.span is not None


BPDN = """algorithm PDHG_BPDN "min ||x||_1 s.t. ||A x - y|| <= delta (Chambolle & Pock 2011)"
dims n, m
operator A : [n, m]
input y : [n]
target x_star : [m]
const delta = 0.05
const L = norm2(A)
learn tau : [] = 0.9 / L per_layer positive
learn sigma : [] = 0.9 / L per_layer positive
cost g(x) = ||x||_1
cost F(p) = ball(p - y, delta)
state x : [m] = 0
state xbar : [m] = 0
state p : [n] = 0
iterate K = 10:
    p = prox_conj(F, p + sigma * A xbar, sigma)
    x_new = prox(g, x - tau * A' p, tau)
    xbar = 2 * x_new - x
    x = x_new
output x
loss mse(x, x_star)
"""


def _pdhg(A, y, taus, sigmas, delta=0.05):
    """The probe's hand-written PDHG for BPDN: the dual step by Moreau with the ball projection."""
    x = torch.zeros(y.shape[0], A.shape[1], dtype=DT)
    xbar, p = x.clone(), torch.zeros_like(y)
    for tau, sigma in zip(taus, sigmas):
        q = p + sigma * xbar @ A.T
        v = q / sigma - y
        p = q - sigma * (y + v * torch.clamp(delta / v.norm(dim=-1, keepdim=True), max=1.0))
        r = x - tau * p @ A
        x_new = torch.sign(r) * torch.relu(r.abs() - tau)
        xbar, x = 2 * x_new - x, x_new
    return x


def test_pdhg_bpdn_matches_the_hand_written_loop_and_trains():
    gen = torch.Generator().manual_seed(0)
    n, m = 10, 20
    A = torch.randn(n, m, generator=gen, dtype=DT) / n ** 0.5
    x_star = torch.randn(8, m, generator=gen, dtype=DT) * (torch.rand(8, m, generator=gen) < 0.2)
    y = x_star @ A.T + 0.01 * torch.randn(8, n, generator=gen, dtype=DT)
    model = unroll.compile(BPDN, A=A.numpy(), dtype=DT)
    vals = model.parameter_values()
    taus = [vals[f"tau_{k}"].item() for k in range(10)]
    sigmas = [vals[f"sigma_{k}"].item() for k in range(10)]
    out = model(y=y)
    assert (out - _pdhg(A, y, taus, sigmas)).abs().max().item() < 1e-13
    batch = {"y": y, "x_star": x_star}
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    with torch.no_grad():
        before = model.loss(batch).item()
    for _ in range(30):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    with torch.no_grad():
        after = model.loss(batch).item()
    assert after < 0.9 * before, (before, after)
