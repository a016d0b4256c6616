"""Reductions along one per-sample axis: `sum(v, axis)`, `mean(v, axis)`, `logsumexp(v, axis)`,
`amax(v, axis)` against hand-written torch and the NumPy oracle, their gradients through `grad`,
located errors for bad axes, and zoo:sinkhorn_log against a hand-written log-domain Sinkhorn."""
import time

import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.compiler.pretty import equation_lines
from unroll.errors import SpecError

DT = torch.float64

AXES = """dims n, m
operator C : [n, m]
input a : [n]
input b : [m]
learn w : [] = 0.5
state u : [n] = 0
state v : [m] = 0
iterate K = 2:
    M = reshape(u, [n, 1]) + reshape(v, [1, m]) - C / w
    u = log(a) - logsumexp(M, 1) + 0.1 * amax(M, -1) + mean(M, 1) + 0.01 * sum(M, axis = 1)
    v = log(b) - logsumexp(M, 0) + 0.2 * logsumexp(M) + 0.01 * sum(M) + 0.3 * amax(M) + mean(M, -2)
output u
"""


def _hand(C, a, b, w, K=2):
    u, v = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(K):
        M = u[:, :, None] + v[:, None, :] - C / w
        u, v = (a.log() - M.logsumexp(2) + 0.1 * M.amax(2) + M.mean(2) + 0.01 * M.sum(2),
                b.log() - M.logsumexp(1) + 0.2 * M.flatten(1).logsumexp(1)[:, None]
                + 0.01 * M.sum((1, 2))[:, None] + 0.3 * M.flatten(1).amax(1)[:, None] + M.mean(1))
    return u


def test_axis_reductions_match_hand_written_torch_and_the_numpy_oracle():
    rng = np.random.default_rng(0)
    C = rng.random((3, 4))
    model = unroll.compile(AXES, C=C, dtype=DT)
    a, b = torch.rand(2, 3, dtype=DT) + 0.1, torch.rand(2, 4, dtype=DT) + 0.1
    out = model(a=a, b=b)
    torch.testing.assert_close(out, _hand(torch.as_tensor(C), a, b, 0.5), rtol=1e-12, atol=1e-12)
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, {"C": C}, {"a": a.numpy(), "b": b.numpy()}, params=params)
    np.testing.assert_allclose(out.detach().numpy(), ref["output"], rtol=1e-12, atol=1e-12)


def test_printed_equations_read_back_as_the_same_computation():
    """`unroll show` prints the axis (negative axes counted from 0) and the text parses back."""
    prog = unroll.check(AXES)
    lines = equation_lines(prog)
    assert lines[1] == ("u = log(a) - logsumexp(M, 1) + 0.1 * amax(M, 1) + mean(M, 1) + "
                        "0.01 * sum(M, 1)")
    assert "0.2 * logsumexp(M)" in lines[2] and "mean(M, 0)" in lines[2]
    assert prog.updates["v"].shape == ("m",)
    again = AXES[:AXES.index("iterate")] + "iterate K = 2:\n" + "".join(
        f"    {line}\n" for line in lines) + "output u\n"
    C = np.random.default_rng(2).random((3, 4))
    a, b = torch.rand(2, 3, dtype=DT) + 0.1, torch.rand(2, 4, dtype=DT) + 0.1
    outs = [unroll.compile(spec, C=C, dtype=DT)(a=a, b=b) for spec in (AXES, again)]
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("expr, msg", [
    ("sum(M, 2)", "axis 2 is out of range for a value with 2 axes"),
    ("logsumexp(M, -3)", "axis -3 is out of range"),
    ("mean(M, 0, 1)", "takes a value and one axis"),
    ("amax(M, dim = 1)", "has no option 'dim'"),
    ("logsumexp(complex(M, M), 1)", "needs real values"),
    ("sum(M, 0.5)", "must be an integer"),
    ("logsumexp()", "write logsumexp(v) or logsumexp(v, axis)"),
])
def test_bad_axes_are_located_errors(expr, msg):
    spec = AXES.replace("0.01 * sum(M, axis = 1)", f"sum({expr})")
    with pytest.raises(SpecError, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
        unroll.check(spec)
    assert e.value.span is not None and e.value.span.line == 10


def test_sum_without_an_axis_keeps_its_meaning():
    prog = unroll.check(AXES)
    v = prog.updates["v"]
    found = []

    def walk(x):
        found.append(x.op)
        for y in x.args:
            walk(y)
    walk(v)
    assert "sum" in found and "sum_axis" not in found and "mean_axis" in found


GRAD = """dims n, m
operator C : [n, m]
input y : [n]
state x : [n] = y
cost f(x) = sum(logsumexp(reshape(x, [n, 1]) - C, 1)) + 2 * sum(sum(reshape(x, [n, 1]) * C, 1) ^ 2) + sum(mean(reshape(x ^ 2, [n, 1]) + C, 1)) + logsumexp(x)
iterate K = 1:
    x = grad(f, x)
output x
"""


def test_grad_through_axis_reductions_matches_autograd():
    rng = np.random.default_rng(1)
    C = rng.random((3, 4))
    model = unroll.compile(GRAD, C=C, dtype=DT)
    y = torch.rand(2, 3, dtype=DT, requires_grad=True)
    Ct = torch.as_tensor(C)
    x = y[:, :, None]
    f = ((x - Ct).logsumexp(2).sum() + 2 * ((x * Ct).sum(2) ** 2).sum()
         + (x ** 2 + Ct).mean(2).sum() + y.logsumexp(1).sum())
    want, = torch.autograd.grad(f, y)
    torch.testing.assert_close(model(y=y.detach()), want, rtol=1e-12, atol=1e-12)
    assert "_spread" in model.generated.source  # the adjoint of a sum along an axis


def test_amax_is_not_differentiated_by_grad():
    spec = GRAD.replace("+ logsumexp(x)", "+ amax(x)")
    with pytest.raises(SpecError, match="amax"):
        unroll.check(spec)


# ---- zoo:sinkhorn_log ----
def _marginals(batch, size, gen):
    x = torch.rand(batch, size, generator=gen, dtype=DT) + 0.1
    return x / x.sum(1, keepdim=True)


def _sinkhorn(C, a, b, eps_list):
    """Log-domain Sinkhorn, one eps per iteration, written out with torch.logsumexp."""
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for eps in eps_list:
        f = eps * a.log() - eps * torch.logsumexp((g[:, None, :] - C) / eps, dim=2)
        g = eps * b.log() - eps * torch.logsumexp((f[:, :, None] - C) / eps, dim=1)
    return torch.exp((f[:, :, None] + g[:, None, :] - C) / eps_list[-1])


def test_sinkhorn_log_matches_a_hand_written_log_domain_sinkhorn():
    gen = torch.Generator().manual_seed(0)
    n, m, K = 8, 10, 10
    C = torch.rand(n, m, generator=gen, dtype=DT)
    a, b = _marginals(5, n, gen), _marginals(5, m, gen)
    model = unroll.compile("zoo:sinkhorn_log", K=K, C=C.numpy(), dtype=DT)
    with torch.no_grad():  # a schedule down to eps = 0.005, where exp(-C / eps) underflows
        for k in range(K):
            model.get_parameter(f"layers.{k}.eps").fill_(0.05 * 0.77 ** k)
    eps = [model.parameter_values()[f"eps_{k}"].item() for k in range(K)]
    assert eps[-1] < 0.0055
    P = model(a=a, b=b)
    want = _sinkhorn(C, a, b, eps)
    assert (P - want).abs().max().item() < 1e-12
    assert (P.sum(1) - b).abs().max().item() < 1e-12  # the last half-step fits the columns
    assert torch.isfinite(P).all()


def test_sinkhorn_log_training_lowers_the_loss():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    n, m, K = 8, 10, 10
    C = torch.rand(n, m, generator=gen, dtype=DT)
    a, b = _marginals(16, n, gen), _marginals(16, m, gen)
    batch = {"a": a, "b": b, "P_star": _sinkhorn(C, a, b, [0.02] * 300)}
    model = unroll.compile("zoo:sinkhorn_log", K=K, C=C.numpy(), dtype=DT)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    t0 = time.process_time()
    with torch.no_grad():
        before = model.loss(batch).item()
    for _ in range(60):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    with torch.no_grad():
        after = model.loss(batch).item()
    assert after < 0.8 * before, (before, after, time.process_time() - t0)
