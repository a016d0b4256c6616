"""Issue 11 item 4: losses over every layer: x[k] inside sum_k(...), weights scheduled in k, K,
layer-indexed channels, in both backends, with located errors."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import SpecError

SPEC = """algorithm deep_sup
dims n, m
operator A : [n, m]
input y : [n]
target x_star : [m]
learn W : [m, n] = A' / 4 per_layer
learn theta : [] = 0.05 per_layer positive
state x : [m] = 0
state h : [2, m] = 0
iterate K = 4:
    x = soft(x + W (y - A x), theta)
    h = stack([x, x * x])
output x
loss {loss}
"""


def _model(loss: str, K: int | None = None):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 7)) / 3
    return unroll.compile(SPEC.format(loss=loss), K=K, A=A, dtype=torch.float64), A


def _batch():
    rng = np.random.default_rng(1)
    return {"y": torch.tensor(rng.standard_normal((3, 5))),
            "x_star": torch.tensor(rng.standard_normal((3, 7)))}


def test_weighted_deep_supervision_equals_the_hand_written_sum():
    model, A = _model("sum_k(0.5^(K - k) * mse(x[k], x_star)) + 0.1 * nmse(h[2][1], x_star)")
    b = _batch()
    _, layers = model(y=b["y"], return_layers=True)
    mse = lambda a: ((a - b["x_star"]) ** 2).mean()  # noqa: E731
    want = sum(0.5 ** (4 - k) * mse(layers[k - 1]) for k in range(1, 5))
    want = want + 0.1 * ((layers[1] ** 2 - b["x_star"]) ** 2).sum() / (b["x_star"] ** 2).sum()
    torch.testing.assert_close(model.loss(b), want)
    pv = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    got = evaluate(model.unfolded, {"A": A}, {"y": b["y"].numpy()}, pv,
                   {"x_star": b["x_star"].numpy()})["loss"]
    np.testing.assert_allclose(got, float(want), rtol=1e-12)


def test_K_follows_the_unfolded_depth_and_gradients_reach_every_layer():
    model, _ = _model("sum_k(k / K * mse(x[k], x_star))", K=3)
    b = _batch()
    _, layers = model(y=b["y"], return_layers=True)
    want = sum(k / 3 * ((layers[k - 1] - b["x_star"]) ** 2).mean() for k in (1, 2, 3))
    loss = model.loss(b)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert all(model.layers[k].W.grad.abs().sum() > 0 for k in range(3))


def test_upto_reads_the_last_layer_run():
    model, _ = _model("sum_k(mse(x[k], x_star))")
    b = _batch()
    _, layers = model(y=b["y"], return_layers=True)
    mse = lambda a: ((a - b["x_star"]) ** 2).mean()  # noqa: E731
    torch.testing.assert_close(model.loss(b, upto=2), mse(layers[0]) + 3 * mse(layers[1]))


def test_show_prints_the_layer_loss():
    from unroll.cli.inspect_cmds import show_text
    text = show_text(unroll.check(SPEC.format(loss="sum_k(0.5^(K - k) * mse(x[k], x_star))")),
                     None, {"n": 5, "m": 7})
    assert "sum_k(0.5^(K - k) * mse(x[k], x_star))" in text


@pytest.mark.parametrize("loss, msg", [
    ("mse(x[0.5], x_star)", "is not a whole number"),
    ("mse(x[5], x_star)", "the loss reads the layers 1..K (K = 4)"),
    ("mse(x[0], x_star)", "the loss reads the layers 1..K"),
    ("sum_k(sum_k(mse(x[k], x_star)))", "not nested"),
    ("sum_k(x[k])", "sum_k sums scalars"),
    ("mse(x[k], x_star)", "the layer index k is only defined inside iterate"),
])
def test_bad_layer_losses_are_located(loss, msg):
    with pytest.raises(SpecError) as e:
        _model(loss)
    assert msg in str(e.value) and e.value.span.line == 14


def test_sum_k_outside_the_loss_is_an_error():
    spec = SPEC.format(loss="mse(x, x_star)").replace("h = stack([x, x * x])",
                                                      "h = stack([x, x]) * sum_k(1)")
    with pytest.raises(SpecError) as e:
        unroll.check(spec)
    assert "only allowed in the loss" in str(e.value) and e.value.span.line == 12
