"""Support selection (probe finding F2): the per-sample order statistic `quantile(v, q)` and the
LISTA-CPSS shrinkage `soft_ss(v, t, p)`; zoo:lista_cpss against a hand-written PyTorch LISTA-CPSS
in float64 (outputs and gradients), the NumPy oracle, located errors for bad levels, and a short
training run that lowers the loss."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import ShapeError, SpecError

QSPEC = """dims m
input y : [m]
learn w : [m] = 0.5
state x : [m] = 0
iterate K = 2:
    x = x + w * y - quantile(abs(y + x), {q}) + {extra}
output x
"""


def _nearest_rank_threshold(a: torch.Tensor, p: float) -> torch.Tensor:
    """The (1 - p) percentile of each row of a, nearest rank with ties to even (tfp.stats.percentile,
    as the authors' shrink_ss uses), written out with a sort."""
    idx = round((a.shape[1] - 1) * (1.0 - p))
    return a.sort(dim=1).values[:, idx:idx + 1]


def shrink_ss(v: torch.Tensor, theta: torch.Tensor, p: float) -> torch.Tensor:
    """The authors' shrink_ss: entries above theta and in the top p pass, a constant mask."""
    a = v.abs()
    keep = ((a > theta) & (a > _nearest_rank_threshold(a.detach(), p))).to(v.dtype).detach()
    rest = (1 - keep) * v
    return keep * v + torch.sign(rest) * torch.relu(rest.abs() - theta)


def lista_cpss(y, A, Ws, thetas, p=0.012, p_max=0.13):
    """LISTA-CPSS by hand: x <- shrink_ss(x + W_k'(y - A x), theta_k, min(p (k + 1), p_max))."""
    x = torch.zeros(y.shape[0], A.shape[1], dtype=y.dtype)
    for k, (W, theta) in enumerate(zip(Ws, thetas)):
        x = shrink_ss(x + (y - x @ A.T) @ W, theta, min(p * (k + 1), p_max))
    return x


def _problem(n=30, m=60, batch=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, m, generator=g, dtype=torch.float64) / n ** 0.5
    x = torch.randn(batch, m, generator=g, dtype=torch.float64) * (
        torch.rand(batch, m, generator=g, dtype=torch.float64) < 0.1)
    return A, x @ A.T, x


@pytest.mark.parametrize("perturb", [False, True])
def test_lista_cpss_matches_a_hand_written_network(perturb):
    K = 16
    A, y, x_star = _problem()
    model = unroll.compile("zoo:lista_cpss", K=K, A=A.numpy(), dtype=torch.float64)
    if perturb:  # away from the init, where every W_k is the same
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for prm in model.parameters():
                prm.mul_(1 + 0.15 * (2 * torch.rand(prm.shape, generator=g, dtype=prm.dtype) - 1))
    Ws = [model.layers[k].W for k in range(K)]
    thetas = [model.layers[k].theta for k in range(K)]
    out = model(y)
    ref = lista_cpss(y, A, Ws, thetas)
    assert (out - ref).abs().max().item() < 1e-12
    assert ((ref != 0).sum(dim=1) > 0).all() and (ref.abs() > 0).float().mean() < 0.9
    # the selection mattered: plain soft thresholding (p = 0) gives another output
    assert (lista_cpss(y, A, Ws, thetas, p=0.0, p_max=0.0) - ref).abs().max().item() > 1e-3
    loss, ref_loss = model.loss({"y": y, "x_star": x_star}), ((ref - x_star) ** 2).mean()
    grads = torch.autograd.grad(loss, Ws + thetas)
    ref_grads = torch.autograd.grad(ref_loss, Ws + thetas)
    assert max((a - b).abs().max().item() for a, b in zip(grads, ref_grads)) < 1e-12


def test_lista_cpss_numpy_oracle_agrees():
    A, y, x_star = _problem(n=10, m=40, batch=6)
    model = unroll.compile("zoo:lista_cpss", K=12, A=A.numpy(), dtype=torch.float64)
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, {"A": A.numpy()}, {"y": y.numpy()}, params=params,
                   targets={"x_star": x_star.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(model(y).numpy(), ref["output"], rtol=1e-10, atol=1e-13)


def test_training_lista_cpss_lowers_the_loss():
    torch.manual_seed(0)
    A, y, x_star = _problem(n=20, m=40, batch=200, seed=3)
    model = unroll.compile("zoo:lista_cpss", K=6, A=A.numpy(), dtype=torch.float64)
    batch = {"y": y, "x_star": x_star}
    before = model.loss(batch).item()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(60):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
        model.project_()
    after = model.loss(batch).item()
    assert after < 0.7 * before, (before, after)


def test_quantile_is_torch_quantile_per_sample_with_its_gradient():
    model = unroll.compile(QSPEC.format(q=0.3, extra=0), dims={"m": 7}, dtype=torch.float64)
    y = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    out = model(y)
    x1 = model.w * y - torch.quantile(y.abs(), 0.3, dim=1, keepdim=True)
    ref = x1 + model.w * y - torch.quantile((y + x1).abs(), 0.3, dim=1, keepdim=True)
    assert (out - ref).abs().max().item() < 1e-14
    g, = torch.autograd.grad(out.sum(), y)
    g_ref, = torch.autograd.grad(ref.sum(), y)
    assert torch.allclose(g, g_ref, atol=1e-14)
    ref_np = evaluate(model.unfolded, {}, {"y": y.detach().numpy()},
                      params={k: v.detach().numpy() for k, v in model.parameter_values().items()})
    np.testing.assert_allclose(out.detach().numpy(), ref_np["output"], rtol=1e-12)


def test_quantile_and_soft_ss_on_images_reduce_over_all_per_sample_axes():
    spec = """dims h, w
input y : [h, w]
state x : [h, w] = 0
iterate K = 1:
    x = soft_ss(y, 0.1, 0.25) + quantile(y, 0.5)
output x
"""
    model = unroll.compile(spec, dims={"h": 4, "w": 5}, dtype=torch.float64)
    y = torch.randn(3, 4, 5, dtype=torch.float64)
    flat = y.reshape(3, 20)
    ref = shrink_ss(flat, torch.tensor(0.1, dtype=torch.float64), 0.25) + torch.quantile(
        flat, 0.5, dim=1, keepdim=True)
    assert (model(y).reshape(3, 20) - ref).abs().max().item() < 1e-14
    ref_np = evaluate(model.unfolded, {}, {"y": y.numpy()})
    np.testing.assert_allclose(model(y).numpy(), ref_np["output"], rtol=1e-12)


def test_bad_levels_are_located_errors():
    with pytest.raises(SpecError, match=r"argument 2 of quantile is 1.5, outside \[0, 1\]") as e:
        unroll.check(QSPEC.format(q=1.5, extra=0))
    assert e.value.span.line == 6
    with pytest.raises(ShapeError, match="the level q of quantile"):
        unroll.check(QSPEC.format(q="w", extra=0))
    with pytest.raises(ShapeError, match="the fraction p of soft_ss"):
        unroll.check(QSPEC.format(q=0.5, extra="soft_ss(y, 0.1, y)"))
    with pytest.raises(SpecError, match=r"argument 3 of soft_ss is -0.1"):
        unroll.check(QSPEC.format(q=0.5, extra="soft_ss(y, 0.1, -0.1)"))
    # a schedule in k leaves [0, 1] only in some layers: an error at unfold, naming the layer
    sched = QSPEC.format(q=0.5, extra="soft_ss(y, 0.1, 0.4 * k)")
    unroll.compile(sched, K=3, dims={"m": 4})
    with pytest.raises(SpecError, match=r"argument 3 of soft_ss is 1.2 in layer 3, outside"):
        unroll.compile(sched, K=4, dims={"m": 4})


def test_soft_ss_keeps_the_top_fraction_and_gives_p_no_gradient():
    spec = """dims m
input y : [m]
learn t : [] = 0.5
state x : [m] = 0
iterate K = 1:
    x = soft_ss(y, t, 0.25)
output x
"""
    model = unroll.compile(spec, dims={"m": 8}, dtype=torch.float64)
    y = torch.tensor([[3.0, -2.0, 0.4, 1.0, -0.6, 0.1, 2.5, -0.2]], dtype=torch.float64)
    # 8 entries, p = 1/4: |v| above the nearest-rank 75 % point (rank round(5.25) = 5: 2.0) pass
    want = torch.tensor([[3.0, -1.5, 0.0, 0.5, -0.1, 0.0, 2.5, 0.0]], dtype=torch.float64)
    assert torch.allclose(model(y), want, atol=1e-15)
    g, = torch.autograd.grad(model(y).sum(), model.t)
    assert g.item() == 1.0 - 1.0 + 1.0  # d/dt of the soft-thresholded survivors -2.0, 1.0, -0.6


def test_soft_ss_takes_a_per_sample_threshold():
    spec = """dims m
input y : [m]
state x : [m] = 0
iterate K = 1:
    x = soft_ss(y, 0.5 * mean(abs(y)), 0.2)
output x
"""
    model = unroll.compile(spec, dims={"m": 10}, dtype=torch.float64)
    y = torch.randn(4, 10, dtype=torch.float64)
    t = 0.5 * y.abs().mean(dim=1, keepdim=True)
    assert (model(y) - shrink_ss(y, t, 0.2)).abs().max().item() < 1e-15
    np.testing.assert_allclose(evaluate(model.unfolded, {}, {"y": y.numpy()})["output"],
                               shrink_ss(y, t, 0.2).numpy(), rtol=1e-13, atol=1e-15)
