"""The learnable piecewise-linear function (ADMM-Net's S_PLF): soft thresholding when initialised
from it, slope 1 beyond its range, correct gradients for the values and the control points."""
import numpy as np
import torch

import unroll
from unroll.backends.numpy_backend import _plf
from unroll.backends.torch_ops import HELPERS

NS: dict = {"torch": torch, "F": torch.nn.functional}
exec(compile(HELPERS, "<helpers>", "exec"), NS)  # our own helper source, as generated files hold it
plf, soft = NS["plf"], NS["soft"]

SPEC = """
dims h, w, L = 2
input c : [L, h, w]
learn q : [L, 101] = soft(grid(101, -1, 1), 0.1)
state z : [L, h, w] = 0
iterate K = 1:
    z = plf(c, q, -1, 1)
output z
"""


def test_initialised_from_soft_it_is_soft_on_its_grid_and_beyond():
    m = unroll.compile(SPEC, dims={"h": 3, "w": 5}, dtype=torch.float64)
    grid = torch.linspace(-1, 1, 101, dtype=torch.float64)
    far = torch.tensor([-7.5, -1.3, 1.01, 4.0], dtype=torch.float64)
    v = torch.cat([grid, far, grid[:15]]).reshape(4, 2, 3, 5)  # every grid point, and beyond
    got = m(c=v).detach()
    torch.testing.assert_close(got, soft(v, 0.1), rtol=0, atol=1e-12)
    outside = torch.tensor([[-3.0, 2.5]], dtype=torch.float64).reshape(1, 1, 1, 2).expand(1, 2, 1, 2)
    q = m.q.detach()
    torch.testing.assert_close(plf(outside, q, -1.0, 1.0, -3), soft(outside, 0.1))


def test_gradients_for_values_and_control_points():
    torch.manual_seed(0)
    q = torch.randn(2, 11, dtype=torch.float64, requires_grad=True)
    # values away from the knots (the function is piecewise linear) and some outside the range
    v = (torch.rand(3, 2, 4, 4, dtype=torch.float64) * 2.8 - 1.4)
    v = torch.where((v * 5).frac().abs() < 0.05, v + 0.03, v).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: plf(a, b, -1.0, 1.0, -3), (v, q))


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((3, 21))
    v = rng.uniform(-2, 2, (4, 3, 6, 6))
    got = plf(torch.tensor(v), torch.tensor(q), -1.0, 1.0, -3).numpy()
    np.testing.assert_allclose(got, _plf(v, q, -1.0, 1.0, -3), rtol=1e-12, atol=1e-12)
