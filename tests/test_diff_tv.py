"""Issue 11 item 6: forward differences diff / diff_t as operators (adjoint pair, Neumann
boundary, gradients, grad and argmin through them) and zoo:tv_denoise_cp against a hand-written
Chambolle-Pock."""
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import SpecError

OPS = """algorithm d
dims a, b
input x : [a, b]
input p : [a, b]
state u : [a, b] = 0
state v : [a, b] = 0
iterate K = 1:
    u = diff(x, {axis})
    v = diff_t(p, {axis})
output u, v
"""


def _dense(n: int) -> np.ndarray:
    """The forward-difference matrix with a zero last row (Neumann)."""
    D = np.diag(-np.ones(n)) + np.diag(np.ones(n - 1), 1)
    D[-1] = 0
    return D


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_diff_is_the_dense_difference_matrix_and_diff_t_its_adjoint(axis):
    rng = np.random.default_rng(0)
    x, p = rng.standard_normal((2, 2, 4, 5))
    m = unroll.compile(OPS.format(axis=axis), dims={"a": 4, "b": 5}, dtype=torch.float64)
    (u, v), _ = m._run(torch.tensor(x), torch.tensor(p))
    ax = axis % 2
    D = _dense(x.shape[1 + ax])
    want_u = np.moveaxis(np.moveaxis(x, 1 + ax, -1) @ D.T, -1, 1 + ax)
    want_v = np.moveaxis(np.moveaxis(p, 1 + ax, -1) @ D, -1, 1 + ax)
    np.testing.assert_allclose(u.numpy(), want_u, atol=1e-12)
    np.testing.assert_allclose(v.numpy(), want_v, atol=1e-12)
    # <D x, p> = <x, D' p>
    np.testing.assert_allclose((want_u * p).sum(), (x * want_v).sum())
    st = evaluate(m.unfolded, {}, {"x": x, "p": p})["states"]
    np.testing.assert_allclose(st["u"], want_u, atol=1e-12)
    np.testing.assert_allclose(st["v"], want_v, atol=1e-12)


def test_diff_on_vectors_is_1d():
    spec = "dims n\ninput y : [n]\nstate x : [n] = 0\niterate K = 1:\n    x = diff(y) + diff_t(y)\noutput x\n"
    m = unroll.compile(spec, dims={"n": 6}, dtype=torch.float64)
    y = np.random.default_rng(1).standard_normal((3, 6))
    D = _dense(6)
    np.testing.assert_allclose(m(y=torch.tensor(y)).numpy(), y @ D.T + y @ D, atol=1e-12)


@pytest.mark.parametrize("op", ["diff", "diff_t"])
def test_gradcheck_through_differences(op):
    spec = f"""dims a, b
input y : [a, b]
learn w : [a, b] = 0.5
state x : [a, b] = y
iterate K = 2:
    x = {op}(w * x, 0) + {op}(x * x, 1)
output x
"""
    m = unroll.compile(spec, dims={"a": 3, "b": 4}, dtype=torch.float64)
    y = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    w = m.w.detach().clone().requires_grad_()
    assert gradcheck(lambda y, w: torch.func.functional_call(m, {"w": w}, (), {"y": y}), (y, w))


def test_grad_and_cg_argmin_go_through_differences():
    spec = """dims n
input y : [n, n]
const lam = 0.3
cost f(x) = 1/2 * ||x - y||^2 + lam / 2 * (||diff(x, 0)||^2 + ||diff(x, 1)||^2)
state x : [n, n] = y
iterate K = 1:
    x = {step}
output x
"""
    n = 5
    y = np.random.default_rng(2).standard_normal((2, n, n))
    D, I = _dense(n), np.eye(n)
    Dh, Dw = np.kron(D, I), np.kron(I, D)
    H = np.eye(n * n) + 0.3 * (Dh.T @ Dh + Dw.T @ Dw)
    yv = y.reshape(2, -1)
    m = unroll.compile(spec.format(step="argmin(x: f(x), iters = 60)"), dims={"n": n},
                       dtype=torch.float64)
    np.testing.assert_allclose(m(y=torch.tensor(y)).numpy().reshape(2, -1),
                               np.linalg.solve(H, yv.T).T, atol=1e-10)
    m = unroll.compile(spec.format(step="x - 0.1 * grad(f, x)"), dims={"n": n}, dtype=torch.float64)
    g = yv @ H.T - yv  # H x - y at x = y
    np.testing.assert_allclose(m(y=torch.tensor(y)).numpy().reshape(2, -1), yv - 0.1 * g, atol=1e-12)


@pytest.mark.parametrize("body, msg", [
    ("x = diff(x, 2)", "axis 2 is out of range"),
    ("x = diff(fft2(x), 0)", "diff needs real values"),
    ("x = diff_t(sum(x))", "needs a vector or an image"),
])
def test_bad_differences_are_located(body, msg):
    spec = f"dims n\ninput y : [n, n]\nstate x : [n, n] = y\niterate K = 1:\n    {body}\noutput x\n"
    with pytest.raises(SpecError) as e:
        unroll.check(spec)
    assert msg in str(e.value) and e.value.span.line == 5


# ---- zoo:tv_denoise_cp ----
def _grad(x):
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[:, :-1] = x[:, 1:] - x[:, :-1]
    gy[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return torch.stack([gx, gy], 1)


def _div(p):
    """Chambolle's discrete divergence (minus the adjoint of _grad)."""
    px, py = p[:, 0], p[:, 1]
    dx = torch.zeros_like(px)
    dx[:, 0] = px[:, 0]
    dx[:, 1:-1] = px[:, 1:-1] - px[:, :-2]
    dx[:, -1] = -px[:, -2]
    dy = torch.zeros_like(py)
    dy[:, :, 0] = py[:, :, 0]
    dy[:, :, 1:-1] = py[:, :, 1:-1] - py[:, :, :-2]
    dy[:, :, -1] = -py[:, :, -2]
    return dx + dy


def _hand_cp(y, lam, sigma, tau):
    """Chambolle-Pock for ROF denoising, as in the paper's Algorithm 1 (theta = 1)."""
    x, xbar, p = y.clone(), y.clone(), torch.zeros(y.shape[0], 2, *y.shape[1:], dtype=y.dtype)
    for s, t in zip(sigma, tau):
        q = p + s * _grad(xbar)
        p = q / torch.clamp(torch.sqrt((q ** 2).sum(1, keepdim=True) + 1e-12) / lam, min=1)
        x_new = (x + t * _div(p) + t * y) / (1 + t)
        xbar = 2 * x_new - x
        x = x_new
    return x


def test_tv_denoise_cp_matches_a_hand_written_chambolle_pock():
    rng = np.random.default_rng(3)
    model = unroll.compile("zoo:tv_denoise_cp", K=6, dims={"h": 7, "w": 9}, dtype=torch.float64)
    sig = [0.2 + 0.1 * k for k in range(6)]
    tau = [0.5 - 0.05 * k for k in range(6)]
    with torch.no_grad():
        model.lam.fill_(0.15)
        for k in range(6):
            model.layers[k].sigma.fill_(sig[k])
            model.layers[k].tau.fill_(tau[k])
    y = torch.tensor(rng.random((2, 7, 9)))
    want = _hand_cp(y, 0.15, sig, tau)
    torch.testing.assert_close(model(y=y), want, rtol=1e-12, atol=1e-12)
    pv = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    np.testing.assert_allclose(evaluate(model.unfolded, {}, {"y": y.numpy()}, pv)["output"],
                               want.numpy(), atol=1e-12)


def test_classical_tv_denoise_cp_converges_to_the_rof_minimiser():
    """With its initial steps (no training) many layers reach the ROF minimum: the objective
    at the output is below that at y and at the layer-10 output, and further layers barely move."""
    y = torch.tensor(np.random.default_rng(4).random((1, 8, 8)))
    out = {K: unroll.compile("zoo:tv_denoise_cp", K=K, dims={"h": 8, "w": 8},
                             dtype=torch.float64)(y=y).detach() for K in (10, 80, 120)}

    def rof(x):
        g = _grad(x)
        return 0.5 * ((x - y) ** 2).sum() + 0.1 * torch.sqrt((g ** 2).sum(1) + 1e-12).sum()
    assert rof(out[80]) < rof(out[10]) < rof(y)
    assert float((out[120] - out[80]).abs().max()) < 2e-3


def test_tv_denoise_cp_learns_its_steps():
    torch.manual_seed(0)
    clean = torch.zeros(8, 12, 12)
    clean[:, 3:9, 3:9] = 1.0
    noisy = clean + 0.2 * torch.randn(clean.shape)
    model = unroll.compile("zoo:tv_denoise_cp", K=5, dims={"h": 12, "w": 12})
    batch = {"y": noisy, "x_star": clean}
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = float(model.loss(batch))
    for _ in range(40):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
        model.project_()
    assert float(model.loss(batch)) < 0.7 * first
    assert len({round(float(model.layers[k].tau), 4) for k in range(5)}) > 1  # per-layer steps
