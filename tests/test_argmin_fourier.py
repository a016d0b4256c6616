"""argmin lowered to one division in the Fourier domain (ADMM-Net's reconstruction layer)."""
import numpy as np
import pytest
import torch

import unroll

EXPLICIT = """
algorithm ADMM_Net_explicit
dims h, w, L = 8
operator P : [h, w]
input    y : [h, w] complex
target   x_star : [h, w]
learn H   : [L, 3, 3]   = dct_filters(3)                per_layer
learn D   : [L, 3, 3]   = dct_filters(3)                per_layer
learn rho : [L, 1, 1]   = 0.2                           per_layer positive
learn eta : [L, 1, 1]   = 1                             per_layer
learn q   : [L, 101]    = soft(grid(101, -1, 1), 0.02)  per_layer
state x    : [h, w]    = real(ifft2(y))
state z    : [L, h, w] = 0
state beta : [L, h, w] = 0
iterate K = 3:
    x = real(ifft2((y + fft2(cconv_t(H, rho * (z - beta)))) / (P + sum_l(rho * abs(otf(H, [h, w]))^2))))
    c = cconv(D, x)
    z = plf(c + beta, q, -1, 1)
    beta = beta + eta * (c - z)
output x
loss nmse(x, x_star)
"""

ONE_STEP = """
dims h, w, L = 8
operator P : [h, w]
input    y : [h, w] complex
input    z : [L, h, w]
input    beta : [L, h, w]
learn H   : [L, 3, 3] = dct_filters(3)
learn rho : [L, 1, 1] = 0.3
state x : [h, w] = 0
iterate K = 1:
    x = argmin(x: 1/2 * ||P * fft2(x) - y||^2 + 1/2 * sum(rho * (cconv(H, x) - z + beta)^2))
output x
"""


def _problem(h=16, seed=0):
    rng = np.random.default_rng(seed)
    P = (rng.random((h, h)) < 0.3).astype(float)
    P[0, 0] = 1.0
    x = rng.random((2, h, h))
    return P, x, P * np.fft.fft2(x, norm="ortho")


def test_admm_net_argmin_equals_the_explicit_reconstruction_layer():
    P, x, y = _problem()
    a = unroll.compile("zoo:admm_net", K=3, P=P, dtype=torch.float64)
    b = unroll.compile(EXPLICIT, P=P, dtype=torch.float64)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.05 * torch.randn_like(p))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(y=torch.tensor(y)), b(y=torch.tensor(y)), rtol=1e-12, atol=1e-12)
    # It is one division: no solve and no conjugate-gradient loop in the graph.
    ops = {a.unfolded.graph[n].op for n in a.unfolded.graph}
    assert "solve" not in ops and "vdot" not in ops and "div" in ops


def _dft(n):
    f = np.fft.fft(np.eye(n), norm="ortho")
    return np.kron(f, f)  # 2-D orthonormal DFT acting on row-major vectors


def _circulant(kernel, n):
    """Matrix of circular convolution with a 3x3 kernel centred at (1, 1), row-major."""
    C = np.zeros((n * n, n * n))
    for i in range(n):
        for j in range(n):
            for a in range(3):
                for b in range(3):
                    C[i * n + j, ((i - a + 1) % n) * n + (j - b + 1) % n] += kernel[a, b]
    return C


def test_fourier_reconstruction_equals_a_dense_solve_of_the_normal_equations():
    h = 16
    P, _, y = _problem(h, seed=1)
    rng = np.random.default_rng(2)
    z, beta = rng.standard_normal((1, 8, h, h)), rng.standard_normal((1, 8, h, h))
    m = unroll.compile(ONE_STEP, P=P, dtype=torch.float64)
    got = m(y=torch.tensor(y[:1]), z=torch.tensor(z), beta=torch.tensor(beta))[0].detach().numpy()

    Fm = _dft(h)
    filters = m.H.detach().numpy()
    rho = m.rho.detach().numpy().reshape(-1)
    A = Fm.conj().T @ np.diag(P.reshape(-1)) @ Fm
    rhs = Fm.conj().T @ (P * y[0]).reshape(-1)
    for l in range(8):
        C = _circulant(filters[l], h)
        A = A + rho[l] * C.T @ C
        rhs = rhs + rho[l] * C.T @ (z[0, l] - beta[0, l]).reshape(-1)
    want = np.linalg.solve(A, rhs).real.reshape(h, h)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_cconv_matches_the_circulant_matrix():
    h = 8
    rng = np.random.default_rng(3)
    spec = """
dims h, w, L = 8
input x0 : [h, w]
learn H : [L, 3, 3] = dct_filters(3)
state c : [L, h, w] = 0
iterate K = 1:
    c = cconv(H, x0)
output c
"""
    m = unroll.compile(spec, dims={"h": h, "w": h}, dtype=torch.float64)
    x0 = rng.standard_normal((1, h, h))
    got = m(x0=torch.tensor(x0))[0].detach().numpy()
    for l in range(8):
        want = _circulant(m.H.detach().numpy()[l], h) @ x0[0].reshape(-1)
        np.testing.assert_allclose(got[l].reshape(-1), want, atol=1e-12)


def test_a_non_fourier_quadratic_is_refused_with_method_fourier():
    bad = ONE_STEP.replace("- z + beta)^2))", "- z + beta)^2), method = fourier)").replace(
        "1/2 * ||P * fft2(x) - y||^2 + ", "1/2 * ||P * fft2(x) - y||^2 + ||x - z||^2 + ")
    with pytest.raises(unroll.SpecError) as e:
        unroll.check(bad)
    assert "fourier" in str(e.value)
