"""grad and argmin(method = cg) through complex intermediates (fft2 data terms of MRI): a real
cost of a real (or complex) state differentiates by the real-adjoint convention (adjoint
dL/dRe + i dL/dIm; fft2's adjoint is ifft2), checked against torch autograd; CG on the mask·FFT
data term equals the exact real-variable minimiser and the Fourier closed form where that is it."""
import pytest
import torch

import unroll
from unroll.errors import DerivationError

H, W = 6, 5
SPEC = """algorithm C "t"
dims h, w
operator P : [h, w]
input    y : [h, w] complex
input    u : [h, w] {dtype}
state x : [h, w] {dtype} = u
cost f(x) = {cost}
iterate K = 1:
    x = grad(f, x)
output x
"""


def _fft(v):
    return torch.fft.fft2(v, norm="ortho")


def _ifft(v):
    return torch.fft.ifft2(v, norm="ortho")


def _sq(v):
    return (v.abs() ** 2).sum(dim=(-2, -1))


def _re(v):
    return v.real.sum(dim=(-2, -1))


# (cost in the spec, the same cost in torch of (x, P, y)): each reaches complex ops' rules
CASES = {
    "mask_fft_residual": ("1/2 * ||P * fft2(x) - y||^2", lambda x, P, y: _sq(P * _fft(x) - y) / 2),
    "ifft2_complex_product": ("||ifft2(y * fft2(x))||^2", lambda x, P, y: _sq(_ifft(y * _fft(x)))),
    "real_conj": ("sum(real(conj(y) * fft2(x)))", lambda x, P, y: _re(y.conj() * _fft(x))),
    "imag": ("sum(imag(fft2(x) * y))", lambda x, P, y: _fft(x).mul(y).imag.sum(dim=(-2, -1))),
    "complex_pow": ("||complex(x, x ^ 2) - y||^2",
                    lambda x, P, y: _sq(torch.complex(x, x ** 2) - y)),
    "exp_of_complex": ("sum(real(exp(complex(0 * x, x)) * y))",
                       lambda x, P, y: _re(torch.exp(torch.complex(0 * x, x)) * y)),
    "divide_by_complex": ("||fft2(x) / (y + 3)||^2 + sum(real((y + 3) / fft2(x + 2)))",
                          lambda x, P, y: _sq(_fft(x) / (y + 3)) + _re((y + 3) / _fft(x + 2))),
    "complex_square": ("sum(real(fft2(x) ^ 2 * y))", lambda x, P, y: _re(_fft(x) ** 2 * y)),
    "conj_of_ifft2": ("||conj(ifft2(P * y)) - fft2(x)||^2 / 4",
                      lambda x, P, y: _sq(_ifft(P * y).conj() - _fft(x)) / 4),
}


def _data(dtype):
    g = torch.Generator().manual_seed(0)
    P = torch.rand(H, W, generator=g, dtype=torch.float64) * (torch.rand(H, W, generator=g) > 0.4)
    y = torch.randn(3, H, W, generator=g, dtype=torch.complex128)
    u = torch.randn(3, H, W, generator=g, dtype=dtype)
    return P, y, u


# a complex state too, except where complex(a, b) takes it (its arguments are real)
@pytest.mark.parametrize("case,dtype", [(c, d) for c in sorted(CASES) for d in ("real", "complex")
                                        if d == "real" or "complex(" not in CASES[c][0]])
def test_grad_through_complex_ops_equals_autograd(case, dtype):
    cost, ref = CASES[case]
    tdtype = torch.complex128 if dtype == "complex" else torch.float64
    P, y, u = _data(tdtype)
    spec = SPEC.format(cost=cost, dtype="complex" if dtype == "complex" else "")
    model = unroll.compile(spec, dims={"h": H, "w": W}, dtype=torch.float64, P=P)
    x = u.clone().requires_grad_()
    want, = torch.autograd.grad(ref(x, P, y).sum(), x)  # torch: dL/dRe + i dL/dIm
    got = model(y=y, u=u)
    assert got.dtype == tdtype
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_the_mask_fft_gradient_is_the_hand_written_adjoint():
    p = unroll.check(SPEC.format(cost="1/2 * ||P * fft2(x) - y||^2", dtype=""))
    from unroll.compiler.pretty import to_text
    assert to_text(p.updates["x"]) == "real(ifft2((P * fft2(x) - y) * P))"


CG = """algorithm CG "t"
dims h, w
operator P : [h, w]
input    y : [h, w] complex
state x : [h, w] {dtype} = {init}
iterate K = 2:
    z = 0.5 * x
    x = argmin(x: 1/2 * ||P * fft2(x) - y||^2 + 1/2 * ||x - z||^2, {method})
output x
"""


def _cg_models(P, dtype, iters):
    init = "ifft2(y)" if dtype == "complex" else "real(ifft2(y))"
    spec = CG.format(dtype=dtype, init=init, method="{method}")
    out = []
    for method in (f"method = cg, iters = {iters}", "method = fourier"):
        out.append(unroll.compile(spec.format(method=method), dims={"h": H, "w": W},
                                  dtype=torch.float64, P=P))
    return out


def _real_minimiser(P, y, z):
    """argmin over real x of 1/2||P fft2(x) - y||^2 + 1/2||x - z||^2, by a dense solve."""
    n = H * W
    basis = torch.eye(n, dtype=torch.float64).reshape(n, H, W)
    A = (P * _fft(basis)).reshape(n, n).T  # column j: P fft2(e_j)
    Hm = (A.conj().T @ A).real + torch.eye(n, dtype=torch.float64)
    b = (A.conj().T @ y.reshape(-1, n).T).real + z.reshape(-1, n).T
    return torch.linalg.solve(Hm, b).T.reshape(-1, H, W)


def test_cg_argmin_is_the_exact_real_minimiser():
    """A random (asymmetric) mask: CG solves the real-variable normal equations exactly."""
    P, y, _ = _data(torch.float64)
    cg, _ = _cg_models(P, "", iters=30)
    x = torch.fft.ifft2(y, norm="ortho").real
    for _ in range(2):  # the spec's two layers, each minimising around half the previous x
        x = _real_minimiser(P, y, 0.5 * x)
    torch.testing.assert_close(cg(y=y), x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", ["", "complex"])
def test_cg_argmin_equals_the_fourier_closed_form(dtype):
    """Where the closed form is the minimiser (a complex state; a real state with a mask symmetric
    under k -> -k) CG reaches it to 1e-8 in 10 iterations and to rounding in 30."""
    P, y, _ = _data(torch.float64)
    if not dtype:
        P = (P + torch.roll(torch.flip(P, (0, 1)), (1, 1), (0, 1))) / 2
    for iters, tol in ((10, 1e-7), (30, 1e-12)):
        cg, fourier = _cg_models(P, dtype, iters)
        assert (cg(y=y) - fourier(y=y)).abs().max().item() < tol


MODL = """algorithm MoDL "MoDL-like: CG data consistency for A = P fft2 and a residual CNN"
dims h, w
operator P : [h, w]
input    y : [h, w] complex
target   x_star : [h, w]
learn lam : [] = 0.5 shared positive
block Dw : [1, h, w] -> [1, h, w] = conv(1 -> 4, 3, bias) | relu | conv(4 -> 1, 3, bias, init = zeros) residual shared
state x : [h, w] = real(ifft2(y))
iterate K = 3:
    z = reshape(Dw(reshape(x, [1, h, w])), [h, w])
    x = argmin(x: ||P * fft2(x) - y||^2 + lam * ||x - z||^2, method = cg, iters = 6)
output x
loss mse(x, x_star)
"""


def test_modl_with_cg_data_consistency_trains():
    torch.manual_seed(0)
    n = 12
    g = torch.Generator().manual_seed(1)
    P = (torch.rand(n, n, generator=g) < 0.4).double()
    P[0, 0] = 1.0
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    imgs = []
    for _ in range(16):  # smooth blobs: what a small CNN learns to restore
        c = torch.rand(2, generator=g) * n
        r = 2 + 2 * torch.rand(1, generator=g)
        imgs.append(torch.exp(-((ii - c[0]) ** 2 + (jj - c[1]) ** 2) / r ** 2))
    x_star = torch.stack(imgs).double()
    y = P * torch.fft.fft2(x_star, norm="ortho")
    model = unroll.compile(MODL, dims={"h": n, "w": n}, dtype=torch.float64, P=P)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = {"y": y, "x_star": x_star}
    first = model.loss(batch).item()
    for _ in range(40):
        opt.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        opt.step()
    assert model.loss(batch).item() < 0.7 * first


def test_a_complex_valued_cost_and_a_missing_rule_are_named():
    spec = SPEC.format(cost="sum(fft2(x))", dtype="")
    with pytest.raises(DerivationError) as e:
        unroll.check(spec)
    assert "complex-valued" in str(e.value) and "prox" not in str(e.value)
    spec = SPEC.format(cost="1/2 * ||P * fft2(x) - y||^2 + sum(nonzero(x, 1))", dtype="")
    with pytest.raises(DerivationError) as e:
        unroll.check(spec)
    assert "nonzero has no derivative rule" in str(e.value) and "prox" not in str(e.value)
    assert "sub" not in str(e.value)


CONV = """algorithm V "t"
dims h, w
operator H : [2, 3, 3]
input    y : [2, h, w]
input    u : [h, w]
state x : [h, w] = u
cost f(x) = 1/2 * ||cconv(H, x) - y||^2 + 1/2 * ||x - cconv_t(H, y)||^2
iterate K = 1:
    x = {update}
output x
"""


def test_grad_and_cg_through_circular_convolutions():
    """cconv and cconv_t differentiate in the image (each is the other's adjoint), so gradient
    steps and CG work on filter-bank terms too; CG equals the Fourier closed form."""
    def otf(Hf):  # the documented convention: zero-padded, its middle rolled to [0, 0]
        pad = torch.nn.functional.pad(Hf, (0, W - 3, 0, H - 3))
        return torch.fft.fft2(torch.roll(pad, (-1, -1), (-2, -1)))

    def _cconv(Hf, v):
        return torch.fft.ifft2(otf(Hf) * torch.fft.fft2(v).unsqueeze(-3)).real

    def _cconv_t(Hf, z):
        return torch.fft.ifft2(otf(Hf).conj() * torch.fft.fft2(z)).real.sum(-3)
    g = torch.Generator().manual_seed(2)
    Hf = torch.randn(2, 3, 3, generator=g, dtype=torch.float64)
    y = torch.randn(3, 2, H, W, generator=g, dtype=torch.float64)
    u = torch.randn(3, H, W, generator=g, dtype=torch.float64)
    dims = {"h": H, "w": W}
    model = unroll.compile(CONV.format(update="grad(f, x)"), dims=dims, dtype=torch.float64, H=Hf)
    x = u.clone().requires_grad_()
    cost = ((_cconv(Hf, x) - y) ** 2).sum() / 2 + ((x - _cconv_t(Hf, y)) ** 2).sum() / 2
    want, = torch.autograd.grad(cost, x)
    torch.testing.assert_close(model(y=y, u=u), want, rtol=1e-10, atol=1e-12)
    solve = "argmin(x: f(x), method = {})"
    cg = unroll.compile(CONV.format(update=solve.format("cg, iters = 60")), dims=dims,
                        dtype=torch.float64, H=Hf)
    fourier = unroll.compile(CONV.format(update=solve.format("fourier")), dims=dims,
                             dtype=torch.float64, H=Hf)
    torch.testing.assert_close(cg(y=y, u=u), fourier(y=y, u=u), rtol=0, atol=1e-8)


def test_cg_with_a_learnable_matched_into_it_derives_quickly():
    """A learnable only in a cost (matched into the derived step by rewrite) and a 20-iteration CG:
    the matcher visits the CG DAG once per node (it walked it as a tree, exponentially)."""
    spec = CONV.replace("operator H", "learn H").replace(": [2, 3, 3]\n", ": [2, 3, 3] = 0.1\n")
    p = unroll.check(spec.format(update="argmin(x: f(x), method = cg, iters = 20)"))
    assert p.updates["x"].op != "state"


def test_numpy_oracle_agrees_on_complex_grad_and_cg():
    """The NumPy oracle evaluates the derived graphs (complex adjoints, CG) as torch does."""
    import numpy as np
    from unroll.backends import numpy_backend as nb
    P, y, u = _data(torch.float64)
    dims = {"h": H, "w": W}
    for spec, inputs in ((SPEC.format(cost=CASES["mask_fft_residual"][0], dtype=""), {"u": u}),
                         (CG.format(dtype="", init="real(ifft2(y))", method="method = cg"), {})):
        inputs = {"y": y, **inputs}
        want = unroll.compile(spec, dims=dims, dtype=torch.float64, P=P)(**inputs).numpy()
        got = nb.evaluate(unroll.unfold(spec, dims=dims, P=P.numpy()), {"P": P.numpy()},
                          {k: v.numpy() for k, v in inputs.items()}, params={})["output"]
        assert np.abs(got - want).max() < 1e-12
