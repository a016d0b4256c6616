"""Constants of a given shape: `ones([r, 1])` and `zeros([n])` in consts, inits and bodies (shapes
from numbers, dims and size expressions), folded where they change nothing (x * ones, x + zeros),
checked against hand-written torch and the NumPy oracle, with located errors for bad shapes."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import SpecError

DT = torch.float64

# Deep NMF's update (Hershey et al.): the denominator W' 1 is W' ones([f]).
NMF = """dims f, t, r
operator W : [f, r]
input V : [f, t]
const c = 2 * ones([r, 1])
learn w : [r] = ones([r]) / 2
state H : [r, t] = ones([r, t])
iterate K = 2:
    H = H * (W' (V / (W H))) / (reshape(W' ones([f]), [r, 1]) + c + zeros([r, 1]) + 0.01 * ones([r, 1]) + reshape(w, [r, 1]))
output H
"""


def test_ones_in_consts_inits_and_bodies_match_hand_written_nmf():
    rng = np.random.default_rng(0)
    W = rng.random((5, 3))
    V = torch.rand(2, 5, 4, dtype=DT) + 0.1
    model = unroll.compile(NMF, W=W, dims={"t": 4}, dtype=DT)
    out = model(V=V)
    Wt, H = torch.as_tensor(W), torch.ones(2, 3, 4, dtype=DT)
    for _ in range(2):
        H = H * (Wt.T @ (V / (Wt @ H))) / (Wt.sum(0)[:, None] + 2 + 0.01 + 0.5)
    torch.testing.assert_close(out, H, rtol=1e-13, atol=1e-13)
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, {"W": W}, {"V": V.numpy()}, params=params)
    np.testing.assert_allclose(out.detach().numpy(), ref["output"], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(model.w.detach(), torch.full((3,), 0.5, dtype=DT))


SIZES = """dims n
input y : [n]
state x : [n + 1] = zeros([n + 1])
iterate K = 1:
    x = cat([y, ones([1])]) * ones([n + 1]) + x + zeros([2 * n - n + 1]) + 0 * ones([1 + n])
output x
"""


def test_size_expressions_and_folding():
    model = unroll.compile(SIZES, dims={"n": 3}, dtype=DT)
    y = torch.rand(2, 3, dtype=DT)
    torch.testing.assert_close(model(y=y), torch.cat([y, torch.ones(2, 1, dtype=DT)], 1))
    run = model.generated.source.split("def _run", 1)[1]
    # x * ones, x + zeros and 0 * ones fold away: the only ones left is the one inside cat
    assert run.count("torch.ones(") == 1 and "torch.zeros(" not in run and " * " not in run


@pytest.mark.parametrize("call, msg", [
    ("ones(3)", r"write ones\(\[n\]\)"),
    ("ones([])", "unexpected"),
    ("zeros([n], [n])", r"write zeros\(\[n\]\)"),
    ("ones([0])", "a size must be positive"),
    ("ones([q])", "'q' is not a dim"),
    ("ones([2.5])", "must be an integer"),
    ("ones([n], k = 1)", "takes no keyword arguments"),
    ("ones([m])", r"cannot add \[n\] and \[m\]"),
])
def test_bad_shapes_are_located_errors(call, msg):
    spec = f"dims n, m\ninput y : [n]\nstate x : [n] = 0\niterate K = 1:\n    x = y + {call}\noutput x\n"
    with pytest.raises(SpecError, match=msg) as e:
        unroll.check(spec)
    assert e.value.span is not None and e.value.span.line == 5


def test_ones_prints_and_differentiates():
    spec = """dims n
input y : [n]
state x : [n] = y
cost f(x) = 1/2 * ||x - ones([n])||^2 + sum(ones([n]) * x)
iterate K = 1:
    x = x - grad(f, x)
output x
"""
    prog = unroll.check(spec)
    from unroll.compiler.pretty import to_text
    assert "ones([n])" in to_text(prog.updates["x"])
    model = unroll.compile(spec, dims={"n": 4}, dtype=DT)
    y = torch.rand(2, 4, dtype=DT)
    torch.testing.assert_close(model(y=y), y - (y - 1) - 1)
