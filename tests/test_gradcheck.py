"""Gradients through the generated code pass `torch.autograd.gradcheck` (float64): the helper
ops (soft, hard, _clamp, _maximum, _minimum), every core op of the torch table exercised through a
tiny compiled spec, the losses, and the positive/unit reparametrisations of learnables."""
import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

import unroll
from unroll.backends.torch_ops import TORCH_OPS

M = 4
SPEC = """dims m
input y : [m]
target x_star : [m]
learn w : [m] = 0.7
learn M : [m, m] = I
state x : [m] = 0
iterate K = 2:
    x = {expr}
output x
loss {loss}
"""

# op -> an update expression that exercises it (x is the state, w a vector, M a matrix).
EXPRS = {
    "add": "x + y + w",
    "sub": "y - w - x",
    "mul": "y * w + x * w",
    "div": "y / (1 + w * w) + x / 2",
    "pow": "w ^ 2 * y + x ^ 3",
    "neg": "-(y * w) - x",
    "matmul": "M y + M x",
    "transpose": "M' y + M' x",
    "soft": "soft(y + M x, w)",
    "hard": "hard(y + M x, w)",
    "relu": "relu(M y + x)",
    "abs": "abs(M y) * w + x",
    "sign": "sign(y) * w + x",
    "softplus": "softplus(M y + x)",
    "sigmoid": "sigmoid(M y + x)",
    "tanh": "tanh(M y + x)",
    "sqrt": "sqrt(1 + (M y + x) ^ 2)",
    "exp": "exp(w * y) + x",
    "log": "log(1 + (w * y + x) ^ 2)",
    "clamp": "clamp(M y + x, -0.5, 0.5)",
    "maximum": "max(M y + x, w)",
    "minimum": "min(M y + x, w)",
    "sum": "sum(M y) * w + x",
    "mean": "mean(M y) * w + x",
    "sum_axis": "sum(M * reshape(y, [1, m]), 1) + x",
    "mean_axis": "mean(M * reshape(y, [m, 1]), 0) * w + x",
    "logsumexp": "logsumexp(M + reshape(y, [1, m]), 1) + logsumexp(y) * w + x",
    "amax": "amax(M + reshape(y, [1, m]), 1) + x",
    "reshape": "reshape(reshape(y, [1, m]) * reshape(w, [1, m]), [m]) + x",
    "norm1": "||M y + x||_1 * w",
    "norm2": "||M y + x|| * w",
    "sqnorm": "||M y + x||^2 * w",
    "norm0": "||y||_0 * w + x",
    "norminf": "||M y + x||_inf * w",
    "opnorm": "norm2(M) * y + x",
    "pinv": "pinv(M) y + x",
    "inv": "inv(M + M' + 4 * I) y + x",
    "diag": "diag(M) * y + diag(y) w + x",
    "quantile": "quantile(M y + x, 0.3) * w + x",
    "soft_ss": "soft_ss(M y + x, w, 0.5)",
    "norm21": "norm21(reshape(M y + x, [2, 2])) * w + x",
}
LOSSES = {"mse": "mse(x, x_star)", "nmse": "nmse(x, x_star)"}


def _model(expr: str, loss: str = "mse(x, x_star)"):
    return unroll.compile(SPEC.format(expr=expr, loss=loss), dims={"m": M}, dtype=torch.float64)


def _random_params(model, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {n: (p.detach() + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype)).requires_grad_()
            for n, p in model.named_parameters()}


def _inputs(seed: int, batch: int = 3):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(batch, M, generator=gen, dtype=torch.float64).requires_grad_()
    x_star = torch.randn(batch, M, generator=gen, dtype=torch.float64)
    return y, x_star


def test_exercised_ops_are_in_the_torch_table():
    assert set(EXPRS) | set(LOSSES) <= set(TORCH_OPS)
    core = {"add", "sub", "mul", "div", "pow", "neg", "matmul", "transpose", "soft", "hard", "relu",
            "abs", "sign", "softplus", "sigmoid", "tanh", "sqrt", "exp", "log", "clamp", "maximum",
            "minimum", "sum", "mean", "norm1", "norm2", "sqnorm", "norm0", "norminf", "opnorm",
            "mse", "nmse"}
    assert core <= set(EXPRS) | set(LOSSES)


@pytest.mark.parametrize("op", sorted(EXPRS))
def test_op_gradients_through_a_compiled_spec(op):
    model = _model(EXPRS[op])
    assert op in model.generated.source or op in ("add", "sub", "mul", "div", "pow", "neg", "matmul",
                                                  "transpose", "maximum", "minimum", "norm1",
                                                  "sqnorm", "norm0", "norminf", "opnorm", "diag", "sum_axis", "mean_axis")
    params = _random_params(model, seed=hash(op) % 1000)
    names = list(params)
    y, _ = _inputs(seed=1)

    def f(y, *values):
        return functional_call(model, dict(zip(names, values)), kwargs={"y": y})

    assert gradcheck(f, (y, *params.values()), eps=1e-6, atol=1e-5, rtol=1e-4)


class _Loss(torch.nn.Module):
    """Wraps a compiled model so that functional_call reaches its `loss`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_gradients(loss):
    model = _model("soft(y + M x, w)", LOSSES[loss])
    wrapped = _Loss(model)
    params = _random_params(model, seed=5)
    names = ["model." + n for n in params]
    y, x_star = _inputs(seed=2)

    def f(y, *values):
        return functional_call(wrapped, dict(zip(names, values)), args=({"y": y, "x_star": x_star},))

    assert gradcheck(f, (y, *params.values()), eps=1e-6, atol=1e-6, rtol=1e-4)


def _helpers():
    model = _model("soft(y, w)")
    return type(model).forward.__globals__


def _away_from(v: torch.Tensor, t: float, margin: float = 1e-2) -> torch.Tensor:
    """Move entries of v off the kinks at +-t and 0 so finite differences are valid."""
    v = v.detach().clone()
    for kink in (t, -t, 0.0):
        close = (v - kink).abs() < margin
        v[close] += 3 * margin
    return v.requires_grad_()


def test_helper_soft_and_hard():
    h = _helpers()
    gen = torch.Generator().manual_seed(0)
    t = torch.full((6,), 0.5, dtype=torch.float64, requires_grad=True)
    v = _away_from(torch.randn(3, 6, generator=gen, dtype=torch.float64), 0.5)
    assert gradcheck(h["soft"], (v, t))
    assert gradcheck(lambda v: h["hard"](v, t.detach()), (v,))
    torch.testing.assert_close(h["soft"](v, t), torch.sign(v) * torch.relu(v.abs() - t))


def test_helper_clamp_maximum_minimum():
    h = _helpers()
    gen = torch.Generator().manual_seed(1)
    v = _away_from(torch.randn(3, 5, generator=gen, dtype=torch.float64), 0.3)
    lo, hi = -0.3, 0.3
    assert gradcheck(lambda v: h["_clamp"](v, lo, hi), (v,))
    b = _away_from(torch.randn(3, 5, generator=gen, dtype=torch.float64), 10.0) * 0 + 0.1
    b = (b.detach() + 0.05 * torch.randn(3, 5, generator=gen, dtype=torch.float64)).requires_grad_()
    assert gradcheck(h["_maximum"], (v, b))
    assert gradcheck(h["_minimum"], (v, b))
    assert gradcheck(lambda v: h["_maximum"](v, 0.1), (v,))
    assert gradcheck(lambda v: h["_minimum"](0.1, v), (v,))  # a number first is swapped


def test_positive_and_unit_reparametrisations():
    text = """dims m
input y : [m]
learn t : [m] = 0.5 positive(softplus)
learn u : [] = 0.25 unit(sigmoid)
state x : [m] = 0
iterate K = 2:
    x = u * soft(y + x, t) + (1 - u) * x
output x
"""
    model = unroll.compile(text, dims={"m": M}, dtype=torch.float64)
    values = model.parameter_values()
    torch.testing.assert_close(values["t"], torch.full((M,), 0.5, dtype=torch.float64))
    torch.testing.assert_close(values["u"], torch.tensor(0.25, dtype=torch.float64))
    raw = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.testing.assert_close(torch.nn.functional.softplus(raw["t"]), values["t"])
    torch.testing.assert_close(torch.sigmoid(raw["u"]), values["u"])
    # Any raw value gives a valid parameter: the constraint cannot be broken by training.
    with torch.no_grad():
        model.t.fill_(-50.0)
        model.u.fill_(80.0)
    assert (model.parameter_values()["t"] > 0).all() and model.parameter_values()["u"] <= 1
    params = _random_params(model, seed=3)
    names = list(params)
    y, _ = _inputs(seed=4)
    y = _away_from(y, 0.5)

    def f(y, *values):
        return functional_call(model, dict(zip(names, values)), kwargs={"y": y})

    assert gradcheck(f, (y, *params.values()), eps=1e-6, atol=1e-5, rtol=1e-4)
