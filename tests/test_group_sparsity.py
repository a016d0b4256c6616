"""Group sparsity (probe finding F3): the group (l2,1) norm `norm21(X)` as a cost term, its prox
derived as block soft thresholding per group (also through `reshape(x, [G, s])`), against
hand-written PyTorch; group-lasso ISTA against a hand-written loop; the per-sample transpose."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import DerivationError, ShapeError

PROX = """algorithm P "prox of the group norm"
dims m, G
input v : [m]
learn t : [] = 0.3
cost g(x) = 2 * norm21(reshape(x, [G, 3]))
state x : [m] = 0
iterate K = 1:
    x = prox(g, v, t)
output x
"""

GLASSO = """algorithm GLASSO "group-lasso ISTA"
dims n, m, G
operator A : [n, m]
input y : [n]
target x_star : [m]
const lam = 0.4
const L = norm2(A)^2
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * norm21(reshape(x, [G, 4]))
state x : [m] = 0
{body}
output x
loss mse(x, x_star)
"""
ITERATE = "iterate K = 10:\n    x = prox(g, x - grad(f, x) / L, 1 / L)"


def block_soft(V: torch.Tensor, s) -> torch.Tensor:
    """Block soft thresholding of the rows of V [B, G, s] by s, written out."""
    nrm = V.norm(dim=-1, keepdim=True)
    return torch.where(nrm > 0, V * torch.clamp(1 - s / nrm.clamp_min(1e-300), min=0), 0 * V)


def test_derived_prox_is_block_soft_thresholding_per_group():
    model = unroll.compile(PROX, dims={"m": 12, "G": 4}, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(5, 12, generator=g, dtype=torch.float64)
    v[0, 3:6] = 0.0           # an all-zero group
    v[1, 6:9] = 0.1           # a group below the threshold 2 * 0.3
    v.requires_grad_()
    out = model(v)
    ref = block_soft(v.reshape(5, 4, 3), 2 * model.t).reshape(5, 12)
    assert (out - ref).abs().max().item() < 1e-15
    assert (out[0, 3:6] == 0).all() and (out[1, 6:9] == 0).all() and (out[2] != 0).any()
    gv, gt = torch.autograd.grad(out.sum(), (v, model.t))
    rv, rt = torch.autograd.grad(ref.sum(), (v, model.t))
    assert torch.isfinite(gv).all() and torch.isfinite(gt)  # the zero group has no NaN gradient
    assert torch.allclose(gt, rt, atol=1e-13)
    rows = [i for i in range(5) if i != 0]  # the hand-written gradient at a zero group is NaN-prone
    assert torch.allclose(gv[rows], rv[rows], atol=1e-13)
    ref_np = evaluate(model.unfolded, {}, {"v": v.detach().numpy()},
                      params={"t": np.array(0.3)})
    np.testing.assert_allclose(out.detach().numpy(), ref_np["output"], rtol=1e-13, atol=1e-15)


def test_norm21_is_the_sum_of_the_group_norms():
    spec = """dims G, s
input X : [G, s]
state c : [] = 0
iterate K = 1:
    c = norm21(X) + norm21(X') * 0
output c
"""
    model = unroll.compile(spec, dims={"G": 3, "s": 5}, dtype=torch.float64)
    X = torch.randn(4, 3, 5, dtype=torch.float64)
    assert torch.allclose(model(X), X.norm(dim=-1).sum(dim=-1), atol=1e-14)
    np.testing.assert_allclose(evaluate(model.unfolded, {}, {"X": X.numpy()})["output"],
                               X.norm(dim=-1).sum(dim=-1).numpy(), rtol=1e-13)


@pytest.mark.parametrize("form", ["iterate", "template"])
def test_group_lasso_ista_matches_hand_written_code(form):
    body = ITERATE if form == "iterate" else "solve f + g with ista(L = L, K = 10)"
    rng = np.random.default_rng(0)
    n, m, G = 16, 32, 8
    A = rng.standard_normal((n, m)) / np.sqrt(n)
    x_true = np.zeros((6, m))
    for b in range(6):
        for grp in rng.choice(G, 2, replace=False):
            x_true[b, 4 * grp:4 * grp + 4] = rng.standard_normal(4)
    y = torch.as_tensor(x_true @ A.T)
    model = unroll.compile(GLASSO.format(body=body), dims={"G": G}, A=A, dtype=torch.float64)
    out = model(y)
    At = torch.as_tensor(A)
    L = torch.linalg.matrix_norm(At, ord=2) ** 2
    x = torch.zeros(6, m, dtype=torch.float64)
    for _ in range(10):
        v = x - (x @ At.T - y) @ At / L
        x = block_soft(v.reshape(6, G, 4), 0.4 / L).reshape(6, m)
    assert (out - x).abs().max().item() < 1e-13
    zero_groups = (x.reshape(6, G, 4).norm(dim=-1) == 0).sum().item()
    assert zero_groups > 0  # the penalty zeroes whole groups


def test_group_norm_errors_are_located():
    with pytest.raises(ShapeError, match=r"norm21 takes groups along the leading axis") as e:
        unroll.check(PROX.replace("norm21(reshape(x, [G, 3]))", "norm21(x)"))
    assert e.value.span.line == 5 and "reshape(x, [G, s])" in (e.value.hint or "")
    with pytest.raises(DerivationError, match="no proximal operator"):
        unroll.check(PROX.replace("2 * norm21(reshape(x, [G, 3]))",
                                  "norm21(reshape(x, [G, 3])) + nonneg(x)"))


def test_transpose_of_a_per_sample_matrix_is_per_sample():
    spec = """dims G, s
input X : [G, s]
state Y : [s, G] = 0
iterate K = 1:
    Y = X'
output Y
"""
    model = unroll.compile(spec, dims={"G": 3, "s": 5}, dtype=torch.float64)
    X = torch.randn(4, 3, 5, dtype=torch.float64)
    assert torch.equal(model(X), X.transpose(1, 2))
