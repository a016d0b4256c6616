"""grad and argmin(method = cg) through circular filter banks (round-2 probe F3: ADMM-CSNet's
reconstruction step): cconv and cconv_t are linear in the image and each other's adjoint, so CG
and gradient descent reach the Fourier closed form; the derivation stays fast on CG's DAG."""
from __future__ import annotations

import torch

import unroll

SPEC = """dims h, w
input y : [h, w]
target x_star : [h, w]
learn H : [3, 3, 3] = 0.1 * dct_filters(3)[0:3]
learn rho : [] = 0.5 per_layer positive
cost f(x) = 1/2 * ||x - y||^2 + rho / 2 * ||cconv(H, x)||^2
state x : [h, w] = y
iterate K = 3:
    x = {step}
output x
loss mse(x, x_star)
"""


def _pair(step: str, K: int | None = None):
    torch.manual_seed(0)
    got = unroll.compile(SPEC.format(step=step), dims={"h": 8, "w": 6}, dtype=torch.float64, K=K)
    ref = unroll.compile(SPEC.format(step="argmin(x: f(x), method = fourier)"),
                         dims={"h": 8, "w": 6}, dtype=torch.float64, K=K)
    ref.load_state_dict(got.state_dict())
    return got, ref


def test_cg_through_a_filter_bank_reaches_the_fourier_solution():
    got, ref = _pair("argmin(x: f(x), method = cg, iters = 30)")
    y = torch.randn(2, 8, 6, dtype=torch.float64)
    assert torch.allclose(got(y=y), ref(y=y), atol=1e-12)
    batch = {"y": y, "x_star": torch.randn(2, 8, 6, dtype=torch.float64)}
    for model in (got, ref):  # the gradients with respect to H and rho agree too
        model.loss(batch).backward()
    for (name, p), q in zip(got.named_parameters(), ref.parameters()):
        # each layer's argmin ignores the previous x here: only the last rho reaches the loss
        assert (p.grad is None) == (q.grad is None) == (name in ("layers.0.rho", "layers.1.rho"))
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-10), name


def test_gradient_descent_with_the_derived_gradient_converges_to_it():
    got, ref = _pair("x - 0.5 * grad(f, x)", K=200)
    y = torch.randn(2, 8, 6, dtype=torch.float64)
    assert torch.allclose(got(y=y), ref(y=y, upto=1), atol=1e-9)


def test_deep_cg_graph_grows_linearly_with_its_iterations():
    """CG builds a DAG with much sharing; the derivation must keep it shared (it once copied
    shared parts, so 5 iterations took seconds and 30 never finished)."""
    def size(iters):
        net = unroll.unfold(SPEC.format(step=f"argmin(x: f(x), method = cg, iters = {iters})"),
                            dims={"h": 8, "w": 6}, K=1)
        return len(list(net.graph))
    small, large = size(10), size(40)
    assert large < 5 * small


CSNET = """dims h, w, m
operator Phi : [m, h * w]
input y : [m]
learn H : [3, 3, 3] = 0.1 * dct_filters(3)[0:3]
learn rho : [] = 0.5 per_layer positive
state x : [h, w] = 0
iterate K = 1:
    x = argmin(x: 1/2 * ||Phi vec(x) - y||^2 + rho / 2 * ||cconv(H, x)||^2, method = cg, iters = 200)
output x
"""


def _cconv(H, x):
    """Circular convolution of each image of x with each filter of H, by hand (FFT)."""
    L, a, b = H.shape
    pad = torch.zeros(L, *x.shape[-2:], dtype=H.dtype)
    pad[:, :a, :b] = H
    otf = torch.fft.fft2(torch.roll(pad, (-(a // 2), -(b // 2)), dims=(-2, -1)))
    return torch.fft.ifft2(otf[None] * torch.fft.fft2(x)[:, None]).real


def test_cg_with_a_dense_operator_beside_a_filter_bank_solves_the_normal_equations():
    """ADMM-CSNet's reconstruction: a dense Phi on vec(x) and filter penalties on the image; at
    the CG solution the gradient of the objective (by torch autograd) vanishes."""
    g = torch.Generator().manual_seed(0)
    Phi = torch.randn(20, 30, generator=g, dtype=torch.float64) / 20 ** 0.5
    model = unroll.compile(CSNET, Phi=Phi, dims={"h": 6, "w": 5}, dtype=torch.float64)
    y = torch.randn(2, 20, generator=g, dtype=torch.float64)
    x = model(y=y).detach().requires_grad_()
    v = model.parameter_values()
    f = (0.5 * ((x.reshape(2, -1) @ Phi.T - y) ** 2).sum()
         + v["rho_0"] / 2 * (_cconv(v["H"], x) ** 2).sum())
    f.backward()
    assert x.grad.norm() < 1e-8 * x.norm()
