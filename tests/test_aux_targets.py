"""Aux terms read targets (issue 11, item 4): a per-layer loss term can supervise any value the
iteration computes, not only a state; `loss(batch)` supplies the targets, `forward` needs none.
Checked against a hand-written loop, the float64 NumPy oracle and every gradient mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import unroll
from unroll.backends import numpy_backend
from unroll.cli.main import main
from unroll.errors import SpecError
from unroll.data.arrays import ArrayTask
from unroll.train import TrainConfig, evaluate_layers, train

# ISTA whose gradient step `r` (a local, never a state) is supervised at every layer, weighted by
# a schedule in k and K.
SPEC = """algorithm SupervisedISTA "t"
dims n, m
operator A : [m, n]
input y : [m]
target x_star : [n]
learn step : [] = 0.1 shared
learn theta : [] = 0.01 per_layer
state x : [n] = 0
iterate K = 5:
    r = x - step * A'(A x - y)
    x = soft(r, theta)
    aux fit = (k + 1) / K * mse(r, x_star)
output x
loss mse(x, x_star) + 0.5 * fit
"""


def _data(seed=0, B=3, m=4, n=6):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=torch.float64)
    y = torch.randn(B, m, generator=g, dtype=torch.float64)
    xs = torch.randn(B, n, generator=g, dtype=torch.float64)
    return A, y, xs


def _by_hand(A, y, xs, K, step=0.1, theta=0.01):
    x, fit = torch.zeros_like(xs), 0.0
    for k in range(K):
        r = x - step * (x @ A.T - y) @ A  # x - step * A'(A x - y), one sample per row
        x = torch.sign(r) * torch.clamp(r.abs() - theta, min=0)
        fit = fit + (k + 1) / K * ((r - xs) ** 2).mean()
    return ((x - xs) ** 2).mean() + 0.5 * fit


@pytest.mark.parametrize("K", [5, 2])
def test_aux_term_reads_a_target_like_a_hand_written_loop(K):
    A, y, xs = _data()
    model = unroll.compile(SPEC, A=A, dtype=torch.float64, K=K)
    got = model.loss({"y": y, "x_star": xs})
    assert torch.allclose(got, _by_hand(A, y, xs, K), rtol=1e-12, atol=0)


def test_forward_needs_no_target_and_a_bare_run_says_which_it_lacks():
    A, y, xs = _data()
    model = unroll.compile(SPEC, A=A, dtype=torch.float64)
    out = model(y)  # aux terms are skipped: no target needed
    assert out.shape == xs.shape
    with pytest.raises(ValueError, match="target 'x_star'.*loss\\(batch\\)"):
        model._run(y)  # aux terms on, but no batch to read the target from


def test_gradient_modes_agree_with_plain_backprop():
    A, y, xs = _data(1)
    runs = {}
    for mode in ("unroll", "checkpoint", "truncated:5"):  # truncated at T = K: the full gradient
        model = unroll.compile(SPEC, A=A, dtype=torch.float64, grad=mode, K=5)
        loss = model.loss({"y": y, "x_star": xs})
        loss.backward()
        runs[mode] = [loss.detach()] + [p.grad.clone() for p in model.parameters()]
    for mode in ("checkpoint", "truncated:5"):
        for a, b in zip(runs["unroll"], runs[mode]):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-14), mode


def test_numpy_oracle_reads_the_targets_too():
    A, y, xs = _data(2)
    model = unroll.compile(SPEC, A=A, dtype=torch.float64)
    net = unroll.unfold(SPEC, A=A.numpy())
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    out = numpy_backend.evaluate(net, {"A": A.numpy()}, {"y": y.numpy()}, params,
                                 targets={"x_star": xs.numpy()})
    assert out["loss"] == pytest.approx(model.loss({"y": y, "x_star": xs}).item(), rel=1e-12)
    blind = numpy_backend.evaluate(net, {"A": A.numpy()}, {"y": y.numpy()}, params)
    np.testing.assert_allclose(blind["output"], model(y).detach().numpy(), rtol=1e-12)
    assert np.isnan(blind["states"]["fit"])  # an aux term without its target is unknown, not 0
    assert "loss" not in blind


def test_targets_stay_invisible_to_the_update_equations():
    bad = SPEC.replace("    aux fit = (k + 1) / K * mse(r, x_star)\n",
                       "    e = mse(r, x_star)\n    aux fit = e\n")
    with pytest.raises(SpecError) as info:
        unroll.check(bad)
    msg = str(info.value)
    assert ":12:16:" in msg and "target 'x_star' cannot be used here" in msg and "aux terms" in msg
    with pytest.raises(SpecError, match="unknown name 'K'"):  # K is the aux terms' and loss's
        unroll.check(SPEC.replace("r = x - step", "r = x - K * step"))


def test_show_marks_aux_terms(tmp_path, capsys):
    spec = tmp_path / "s.unroll"
    spec.write_text(SPEC)
    assert main(["show", str(spec)]) == 0
    assert "  aux fit = (k + 1) / K * mse(r, x_star)" in capsys.readouterr().out


def test_training_on_an_aux_target_loss_lowers_the_held_out_error(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((10, 20)) / np.sqrt(10)
    X = rng.standard_normal((240, 20)) * (rng.random((240, 20)) < 0.15)
    arrays = {"A": A, "y": X @ A.T, "x_star": X}
    program = unroll.check(SPEC)
    task = ArrayTask.for_spec(program, arrays, source="mem", test_fraction=0.25)
    model = unroll.compile(program, dims=task.dims(), grad="checkpoint", **task.operators())
    before = evaluate_layers(unroll.compile(program, dims=task.dims(), **task.operators()),
                             task.test_set())
    res = train(model, task, TrainConfig(lr=0.01, steps=80, eval_every=80, batch_size=16,
                                         out_dir=str(tmp_path / "r")), progress=False)
    assert res.layer_nmse_db[-1] < before[-1] - 0.5
