"""Issue 11 item 1: cat / stack / indexing and ranges, blocks over several channels, and the
zoo's Learned Primal-Dual against a hand-written plain-torch network."""
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import ShapeError, SpecError

SPEC = """algorithm chan
dims c, n
input y : [c, n]
target x_star : [n]
state x : [c, n] = y
state s : [n] = 0
iterate K = 2:
    j = cat([x[0:1], stack([x[1] * 2, x[c - 1]]), y], 0)
    x = j[1:c + 1] - 0.5 * j[0:c]
    s = s + x[:, 1:n][0, 0:n - 1][0] * cat([x[0], y[1]], 0)[n - 1] + x[-1]
output s
loss mse(s, x_star)
"""


def _np_reference(y):
    x, s = y.copy(), np.zeros(y.shape[0::2])
    c, n = y.shape[1:]
    for _ in range(2):
        j = np.concatenate([x[:, 0:1], np.stack([x[:, 1] * 2, x[:, c - 1]], 1), y], 1)
        x = j[:, 1:c + 1] - 0.5 * j[:, 0:c]
        s = s + (x[:, 0, 1] * x[:, 0, n - 1])[:, None] + x[:, -1]
    return s


def test_cat_stack_and_ranges_agree_with_numpy_indexing_in_both_backends():
    y = np.random.default_rng(0).standard_normal((3, 4, 5))
    m = unroll.compile(SPEC, dims={"c": 4, "n": 5}, dtype=torch.float64)
    got = m(y=torch.tensor(y)).detach().numpy()
    want = _np_reference(y)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    oracle = evaluate(m.unfolded, {}, {"y": y})["output"]
    np.testing.assert_allclose(oracle, want, rtol=1e-12)


def test_shapes_of_cat_and_ranges_are_size_expressions():
    p = unroll.check(SPEC)
    j = dict(p.equations)["j"]
    assert str(j.shape[0]) == "c + 3" and j.shape[1] == "n"
    assert str(dict(p.equations)["x"].shape[0]) == "c"  # (c + 1) - 1


def test_unbatched_values_join_batched_ones_and_real_joins_complex():
    spec = """algorithm j
dims n
operator A : [n, n]
input y : [n] complex
state x : [2, n] complex = stack([y, real(y)])
iterate K = 1:
    x = cat([x[0:1], reshape(A, [1, n, n])[:, 0]], 0)
output x
"""
    A = np.arange(9.0).reshape(3, 3)
    y = np.array([[1 + 2j, 3, 4j], [0, 1j, 2]])
    m = unroll.compile(spec, A=A, dtype=torch.float64)
    got = m(y=torch.tensor(y)).numpy()
    np.testing.assert_allclose(got[:, 0], y)
    np.testing.assert_allclose(got[:, 1], np.broadcast_to(A[0], (2, 3)))
    np.testing.assert_allclose(evaluate(m.unfolded, {"A": A}, {"y": y})["output"], got)


@pytest.mark.parametrize("expr", ["cat([x, y * x], 0)[2:5] + x",
                                  "stack([x, y], 1)[:, 0] * x",
                                  "cat([x[1:3], x[0:1]], 0) * y"])
def test_gradients_through_joins_and_ranges(expr):
    spec = f"""dims n = 3
input y : [n]
learn w : [n] = 0.5
state x : [n] = y
iterate K = 2:
    x = w * ({expr})
output x
"""
    m = unroll.compile(spec, dtype=torch.float64)
    y = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda y, w: torch.func.functional_call(m, {"w": w}, (), {"y": y}),
                     (y, m.w.detach().clone().requires_grad_()))


@pytest.mark.parametrize("body, msg, col", [
    ("x = cat([x, y2], 0)", "cat along axis 0: [3, 3] does not fit [4]", 17),
    ("x = x[n]", "index 4 is out of range", 11),
    ("x = x[0:0] + x", "the range 0:0 is empty", 11),
    ("x = x[0, 1] + x", "2 indices for a value of shape [4]", 9),
    ("x = cat([x, x], 1)", "axis 1 is out of range", 21),
    ("x = stack([x, y2])", "stack needs equal shapes", 19),
    ("x = x[0.5] + x", "must be an integer", 11),
    ("x = x[q] + x", "'q' is not a dim", 11),
])
def test_bad_joins_and_indices_are_located(body, msg, col):
    spec = f"""dims n = 4
input y : [n]
input y2 : [3, 3]
state x : [n] = y
iterate K = 1:
    {body}
output x
"""
    with pytest.raises(SpecError) as e:
        unroll.check(spec)
    assert msg in str(e.value)
    assert e.value.span.line == 6 and e.value.span.col == col


def test_complex_from_real_channels_in_both_backends_and_its_gradient():
    spec = """dims n
operator P : [n, n]
input y : [n, n] complex
learn w : [2, n, n] = 1
state x : [n, n] = 0
iterate K = 1:
    v = w * stack([real(y), imag(y)])
    x = real(ifft2(P * complex(v[0], 2 * v[1]))) + imag(complex(1, v[0]))
output x
"""
    rng = np.random.default_rng(5)
    P = rng.random((4, 4))
    y = rng.standard_normal((2, 4, 4)) + 1j * rng.standard_normal((2, 4, 4))
    m = unroll.compile(spec, P=P, dtype=torch.float64)
    want = np.real(np.fft.ifft2(P * (y.real + 2j * y.imag), norm="ortho")) + y.real
    np.testing.assert_allclose(m(y=torch.tensor(y)).detach().numpy(), want, atol=1e-12)
    np.testing.assert_allclose(evaluate(m.unfolded, {"P": P}, {"y": y})["output"], want, atol=1e-12)
    w = m.w.detach().clone().requires_grad_()
    assert gradcheck(lambda w: torch.func.functional_call(m, {"w": w}, (), {"y": torch.tensor(y)}),
                     (w,))
    with pytest.raises(SpecError) as e:
        unroll.check(spec.replace("complex(v[0], 2 * v[1])", "complex(y, v[1])"))
    assert "needs real values" in str(e.value)


# ---- Learned Primal-Dual: compiled vs hand-written ----
def _hand_lpd(model, P, y, Np=5, Nd=5):
    """Adler & Oktem's Learned Primal-Dual for CS-MRI written directly in torch, with the
    compiled model's per-layer blocks as its convolutions."""
    x0 = torch.fft.ifft2(y, norm="ortho").real
    f = x0[:, None].repeat(1, Np, 1, 1)
    d = torch.zeros(y.shape[0], 2 * Nd, *y.shape[1:], dtype=x0.dtype)
    for k in range(model.K):
        layer = model.layers[k]
        Kf = P * torch.fft.fft2(f[:, 1], norm="ortho")
        extra = torch.stack([Kf.real, Kf.imag, y.real, y.imag], 1)
        d = d + layer.Gamma(torch.cat([d, extra], 1))
        g = torch.complex(d[:, 0], d[:, Nd])
        adj = torch.fft.ifft2(P * g, norm="ortho").real
        f = f + layer.Lambda(torch.cat([f, adj[:, None]], 1))
    return f[:, 0]


def test_learned_primal_dual_matches_a_hand_written_network_and_the_oracle():
    rng = np.random.default_rng(1)
    P = (rng.random((8, 8)) < 0.4).astype(float)
    P[0, 0] = 1
    model = unroll.compile("zoo:learned_primal_dual", K=3, P=P, dtype=torch.float64)
    for p in model.parameters():  # weights away from init, so every channel matters
        torch.nn.init.normal_(p, std=0.1)
    x = torch.tensor(rng.random((2, 8, 8)))
    Pt = torch.tensor(P)
    y = Pt * torch.fft.fft2(x, norm="ortho")
    got = model(y=y)
    want = _hand_lpd(model, Pt, y)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    pv = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    oracle = evaluate(model.unfolded, {"P": P}, {"y": y.numpy()}, pv)["output"]
    np.testing.assert_allclose(oracle, got.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_learned_primal_dual_trains_on_the_mri_task():
    rng = np.random.default_rng(2)
    P = (rng.random((8, 8)) < 0.5).astype(np.float32)
    P[0, 0] = 1
    torch.manual_seed(0)
    model = unroll.compile("zoo:learned_primal_dual", K=2, P=P)
    x = torch.rand(4, 8, 8)
    batch = {"y": torch.tensor(P) * torch.fft.fft2(x, norm="ortho"), "x_star": x}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = float(model.loss(batch))
    for _ in range(30):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    assert float(model.loss(batch)) < 0.7 * first


def test_grad_goes_through_ranges_and_joins():
    """grad(f, x) of a cost built from x[1:n], stack and cat equals torch.autograd's gradient."""
    spec = """dims n
input y : [n]
input z : [2, n]
cost f(x) = 1/2 * ||x[1:n] - y[0:n - 1]||^2 + 1/2 * ||stack([x, 2 * x]) - z||^2 + sum(cat([x, x * x], 0)) + x[0]
state x : [n] = y
iterate K = 2:
    x = x - 0.1 * grad(f, x)
output x
"""
    rng = np.random.default_rng(0)
    y, z = torch.tensor(rng.standard_normal((3, 5))), torch.tensor(rng.standard_normal((3, 2, 5)))

    def f(x):
        return (0.5 * ((x[:, 1:] - y[:, :-1]) ** 2).sum() + 0.5 * ((torch.stack([x, 2 * x], 1) - z) ** 2).sum()
                + torch.cat([x, x * x], 1).sum() + x[:, 0].sum())
    x = y.clone()
    for _ in range(2):
        xx = x.clone().requires_grad_()
        x = x - 0.1 * torch.autograd.grad(f(xx), xx)[0]
    m = unroll.compile(spec, dims={"n": 5}, dtype=torch.float64)
    torch.testing.assert_close(m(y=y, z=z), x)
    np.testing.assert_allclose(evaluate(m.unfolded, {}, {"y": y.numpy(), "z": z.numpy()})["output"],
                               x.numpy(), atol=1e-12)


def test_argmin_through_ranges_and_differences_uses_cg():
    spec = """dims n
input y : [n]
state x : [n] = y
iterate K = 1:
    x = argmin(x: 1/2 * ||x - y||^2 + 1/4 * ||diff(x)||^2 + 1/2 * ||x[0:2] - y[1:3]||^2)
output x
"""
    n = 6
    y = np.random.default_rng(0).standard_normal((2, n))
    D = np.diag(-np.ones(n)) + np.diag(np.ones(n - 1), 1)
    D[-1] = 0
    S = np.eye(n)[0:2]
    want = np.linalg.solve(np.eye(n) + 0.5 * D.T @ D + S.T @ S, (y + y[:, 1:3] @ S).T).T
    m = unroll.compile(spec, dims={"n": n}, dtype=torch.float64)
    np.testing.assert_allclose(m(y=torch.tensor(y)).numpy(), want, atol=1e-10)
    assert "solve" not in [m.unfolded.graph[k].op for k in m.unfolded.graph]  # no dense matrix
