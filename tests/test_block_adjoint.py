"""`B'(v)`: the adjoint of a linear learnable block with B's own weights (variational networks
apply each filter K_i and its transpose K_i'): <B a, b> = <a, B' b>, torch equals the NumPy
oracle, a VN layer equals hand-written code, and non-linear blocks are refused where they are."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import unroll
from unroll.backends import numpy_backend
from unroll.errors import SpecError

SPEC = """algorithm T "t"
dims h, w, n
input y : [{shape}]
target x_star : [{shape}]
block B : [{shape}] -> [{out}] = {layers}
state x : [{shape}] = y
iterate K = 2:
    x = x - 0.1 * B'(B(x)) + 0 * x_star_free
output x
loss mse(x, x_star)
""".replace(" + 0 * x_star_free", "")

CASES = {
    "conv": ("1, h, w", "3, h, w", "conv(1 -> 3, 3) per_layer"),
    "two convs": ("2, h, w", "4, h, w", "conv(2 -> 5, 3) | conv(5 -> 4, 5)"),
    "residual": ("2, h, w", "2, h, w", "conv(2 -> 3, 3) | conv(3 -> 2, 3) residual"),
    "linear": ("n", "7", "linear(n -> 6) | linear(6 -> 7) per_layer"),
}


def _model(case):
    shape, out, layers = CASES[case]
    spec = SPEC.format(shape=shape, out=out, layers=layers)
    torch.manual_seed(0)
    return spec, unroll.compile(spec, dims={"h": 6, "w": 5, "n": 4}, dtype=torch.float64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_adjoint_identity_and_oracle(case):
    spec, model = _model(case)
    adjoint = type(model).__init__.__globals__["_block_adjoint"]
    block = model.layers[0].B if hasattr(model, "layers") and hasattr(model.layers[0], "B") else model.B
    g = torch.Generator().manual_seed(1)
    shape, out = [tuple(6 if d == "h" else 5 if d == "w" else 4 if d == "n" else int(d)
                        for d in s.replace(" ", "").split(",")) for s in CASES[case][:2]]
    a = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    b = torch.randn(3, *out, generator=g, dtype=torch.float64)
    lhs, rhs = (block(a) * b).sum(), (a * adjoint(block, b)).sum()
    assert abs(lhs - rhs) < 1e-10 * abs(lhs).clamp(min=1)
    net = unroll.unfold(spec, dims={"h": 6, "w": 5, "n": 4})
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    oracle = numpy_backend.evaluate(net, {}, {"y": a.numpy()}, params)["output"]
    np.testing.assert_allclose(oracle, model(y=a).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_variational_network_layer_matches_hand_written():
    spec = """algorithm VN "t"
dims h, w
input y : [1, h, w]
target x_star : [1, h, w]
block Kf : [1, h, w] -> [4, h, w] = conv(1 -> 4, 3) per_layer
learn q : [4, 9] = 0.1 * grid(9, -1, 1) per_layer
learn lam : [] = 0.5 per_layer positive
state x : [1, h, w] = y
iterate K = 3:
    x = x - Kf'(plf(Kf(x), q, -1, 1)) - lam * (x - y)
output x
loss mse(x, x_star)
"""
    torch.manual_seed(0)
    model = unroll.compile(spec, dims={"h": 6, "w": 5}, dtype=torch.float64)
    y = torch.randn(2, 1, 6, 5, dtype=torch.float64)
    v = model.parameter_values()
    x = y
    for k in range(3):
        wk = v[f"Kf_{k}.0.weight"]
        z = F.conv2d(x, wk, padding=1)
        q = v[f"q_{k}"]
        zc = z.clamp(-1, 1)  # piecewise-linear activation on 9 knots over [-1, 1], slope 1 outside
        t = (zc + 1) / (2 / 8)
        i = t.floor().clamp(0, 7).long()
        qk = q[None, :, None, None, :].expand(*z.shape, 9)
        left = qk.gather(-1, i[..., None])[..., 0]
        right = qk.gather(-1, (i + 1)[..., None])[..., 0]
        phi = left + (t - i) * (right - left) + (z - zc)
        x = x - F.conv_transpose2d(phi, wk, padding=1) - v[f"lam_{k}"] * (x - y)
    assert torch.allclose(model(y=y), x, atol=1e-12)


@pytest.mark.parametrize("layers, needle", [
    ("conv(1 -> 3, 3) | relu", "layer 2 of B is relu"),
    ("conv(1 -> 3, 3, bias)", "layer 1 of B is conv(...) with a bias"),
])
def test_nonlinear_blocks_have_no_adjoint(layers, needle):
    with pytest.raises(SpecError) as info:
        unroll.check(SPEC.format(shape="1, h, w", out="3, h, w", layers=layers))
    assert needle in str(info.value) and ":8:" in str(info.value)


def test_adjoint_takes_what_the_block_gives():
    text = SPEC.format(shape="1, h, w", out="3, h, w", layers="conv(1 -> 3, 3)").replace(
        "B'(B(x))", "B'(x)")
    with pytest.raises(SpecError, match="B' takes \\[3, h, w\\] \\(what B gives\\), got \\[1, h, w\\]"):
        unroll.check(text)
