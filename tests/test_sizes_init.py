"""Issue 11 item 2: block sizes that are dims and size expressions (bound from the spec, dims= and
--dim), per-layer initialisation (zeros, xavier, kaiming, orthogonal, dct, a scale) and residual
blocks that start as the identity."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.cli.main import main as cli
from unroll.errors import SpecError

MLP = """algorithm mlp_prox
dims m, h
input y : [m]
block R : [m] -> [m] = linear(m -> 2*h, bias) | relu | linear(2*h -> h + 1{init1}) | tanh | linear(h + 1 -> m, init = zeros)  residual
state x : [m] = y
iterate K = 2:
    x = R(x) - 0.1 * x
output x
"""


def test_layer_sizes_follow_the_dims():
    for h in (3, 5):
        m = unroll.compile(MLP.format(init1=""), dims={"m": 4, "h": h})
        lin = [mod for mod in m.R if isinstance(mod, torch.nn.Linear)]
        assert [tuple(l.weight.shape) for l in lin] == [(2 * h, 4), (h + 1, 2 * h), (4, h + 1)]


def test_spec_values_and_the_command_line_bind_block_sizes(capsys, tmp_path):
    f = tmp_path / "mlp.unroll"
    f.write_text(MLP.format(init1="").replace("dims m, h", "dims m = 4, h"))
    assert cli(["check", str(f), "--dim", "h=3"]) == 0
    out = capsys.readouterr().out
    # 4*6 + 6 + 6*4 + 4*4 parameters (weights and the first bias)
    assert f"{4 * 6 + 6 + 6 * 4 + 4 * 4:,} params" in out


def test_residual_block_with_a_zero_last_layer_starts_as_the_identity():
    m = unroll.compile(MLP.format(init1=""), dims={"m": 4, "h": 3}, dtype=torch.float64)
    y = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(m(y=y), y * 0.9 * 0.9)
    assert float(m.R[-1].weight.abs().sum()) == 0


@pytest.mark.parametrize("init, check", [
    ("zeros", lambda w: float(w.abs().max()) == 0),
    ("orthogonal", lambda w: torch.allclose(w @ w.T, torch.eye(w.shape[0], dtype=w.dtype), atol=1e-10)),
    ("orthogonal * 0.5", lambda w: torch.allclose(w @ w.T, 0.25 * torch.eye(w.shape[0], dtype=w.dtype), atol=1e-10)),
    ("dct", lambda w: torch.allclose(w @ w.T, torch.eye(w.shape[0], dtype=w.dtype), atol=1e-10)
     and torch.allclose(w[0], torch.full_like(w[0], w.shape[1] ** -0.5))),
    ("xavier * 0.001", lambda w: 0 < float(w.abs().max()) < 0.01),
    ("kaiming", lambda w: 0.3 < float(w.std()) * (w.shape[1] / 2) ** 0.5 < 3),
])
def test_layer_initialisations(init, check):
    spec = MLP.format(init1="").replace("linear(m -> 2*h, bias)", f"linear(m -> h, init = {init})") \
        .replace("linear(2*h -> h + 1)", "linear(h -> h + 1)")
    torch.manual_seed(0)
    m = unroll.compile(spec, dims={"m": 8, "h": 6}, dtype=torch.float64)
    assert check(m.R[0].weight.detach())


def test_dct_conv_init_gives_the_dct_filters():
    spec = """dims s
input y : [s, s]
block C : [1, s, s] -> [8, s, s] = conv(1 -> 8, 3, init = dct)
state x : [s, s] = y
iterate K = 1:
    x = sum_l(C(reshape(x, [1, s, s])))
output x
"""
    m = unroll.compile(spec, dims={"s": 6}, dtype=torch.float64)
    w = m.C[0].weight.detach()[:, 0].reshape(8, 9)
    torch.testing.assert_close(w @ w.T, torch.eye(8, dtype=torch.float64))  # orthonormal atoms


def test_compiled_sized_block_matches_hand_written_and_numpy():
    torch.manual_seed(1)
    m = unroll.compile(MLP.format(init1=", init = xavier * 0.5"), dims={"m": 4, "h": 3},
                       dtype=torch.float64)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.4)
    y = torch.randn(3, 4, dtype=torch.float64)
    l1, l2, l3 = (mod for mod in m.R if isinstance(mod, torch.nn.Linear))
    x = y
    for _ in range(2):
        x = x + l3(torch.tanh(l2(torch.relu(l1(x))))) - 0.1 * x
    torch.testing.assert_close(m(y=y), x)
    pv = {k: v.detach().numpy() for k, v in m.parameter_values().items()}
    np.testing.assert_allclose(evaluate(m.unfolded, {}, {"y": y.numpy()}, pv)["output"],
                               x.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("block, msg", [
    ("linear(m -> h, init = glorot)", "unknown initialisation 'glorot'"),
    ("linear(m -> h, scale = xavier)", "unknown layer option 'scale'"),
    ("linear(m -> q)", "unknown dim 'q'"),
    ("linear(m -> h) | linear(h + 1 -> m)", "linear expects h + 1 inputs, got h"),
])
def test_bad_layer_sizes_and_inits_are_located(block, msg):
    spec = f"dims m, h\ninput y : [m]\nblock R : [m] -> [m] = {block}\nstate x : [m] = y\n" \
           "iterate K = 1:\n    x = R(x)\noutput x\n"
    with pytest.raises(SpecError) as e:
        unroll.check(spec)
    assert msg in str(e.value) and e.value.span.line == 3


def test_sizes_that_only_clash_once_bound_are_errors_at_the_block():
    spec = "dims m, h\ninput y : [m]\nblock R : [m] -> [m] = linear(m -> h) | linear(m -> m)\n" \
           "state x : [m] = y\niterate K = 1:\n    x = R(x)\noutput x\n"
    unroll.unfold(spec, dims={"m": 3, "h": 3})  # h = m: fine
    with pytest.raises(SpecError) as e:
        unroll.unfold(spec, dims={"m": 3, "h": 4})
    assert "expects 3 input channels but gets 4" in str(e.value) and e.value.span.line == 3
    with pytest.raises(SpecError) as e:
        unroll.unfold(MLP.format(init1="").replace("h + 1", "h - 3"), dims={"m": 4, "h": 3})
    assert "below 1" in str(e.value)


def test_residual_needs_equal_shapes():
    spec = "dims m\ninput y : [m]\nblock R : [m] -> [2*m] = linear(m -> 2*m) residual\n" \
           "state x : [m] = y\niterate K = 1:\n    x = R(x)[0:m]\noutput x\n"
    with pytest.raises(SpecError) as e:
        unroll.check(spec)
    assert "a residual block returns x + layers(x)" in str(e.value)


def test_reshape_takes_size_expressions():
    """`reshape(v, [h * w])` as operators and blocks take `[m, h * w]`; a size that cannot match
    is a located error at check time."""
    spec = """dims h, w
input y : [h * w]
block D : [1, h, w] -> [1, h, w] = conv(1 -> 1, 3)
state x : [h * w] = y
iterate K = 2:
    x = x - reshape(D(reshape(x, [1, h, w])), [h * w])
output x
"""
    torch.manual_seed(0)
    model = unroll.compile(spec, dims={"h": 4, "w": 5}, dtype=torch.float64)
    y = torch.randn(3, 20, dtype=torch.float64)
    conv = model.D[0]
    x = y
    for _ in range(2):
        x = x - conv(x.reshape(3, 1, 4, 5)).reshape(3, 20)
    assert torch.allclose(model(y=y), x)
    with pytest.raises(SpecError, match=r"cannot reshape \[1, h, w\] \(h\*w entries\) to \[h\*w \+ 1\]"):
        unroll.check(spec.replace("[h * w])\noutput", "[h * w + 1])\noutput"))
    with pytest.raises(SpecError, match="a size must be positive, got 0"):
        unroll.check(spec.replace("[h * w])\noutput", "[h - h])\noutput"))
