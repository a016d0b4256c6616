"""The torch lowering and the NumPy oracle agree op by op (float64), including broadcasting of
per-sample scalars against vectors; module attributes, dtypes and parameter values."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate, initial_parameters
from test_gradcheck import EXPRS, SPEC

M = 4


def _compare(text: str, batch: int, seed: int = 0, dims=None, **ops):
    model = unroll.compile(text, dims=dims or {"m": M}, dtype=torch.float64, **ops)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    rng = np.random.default_rng(seed)
    inputs = {n: rng.standard_normal((batch, M)) for n in model.input_names}
    targets = {n: rng.standard_normal((batch, M)) for n in model.target_names}
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, ops, inputs, params=params, targets=targets)
    out, layers = model(**{k: torch.as_tensor(v) for k, v in inputs.items()}, return_layers=True)
    assert out.shape == ref["output"].shape
    np.testing.assert_allclose(out.detach().numpy(), ref["output"], rtol=1e-10, atol=1e-12)
    for a, b in zip(layers, ref["layers"]):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-10, atol=1e-12)
    if targets:
        loss = model.loss({**{k: torch.as_tensor(v) for k, v in inputs.items()},
                           **{k: torch.as_tensor(v) for k, v in targets.items()}})
        np.testing.assert_allclose(loss.item(), ref["loss"], rtol=1e-10)
    return out, ref


@pytest.mark.parametrize("op", sorted(EXPRS))
@pytest.mark.parametrize("batch", [3, M], ids=["batch3", "batch_eq_m"])
def test_op_torch_matches_numpy(op, batch):
    _compare(SPEC.format(expr=EXPRS[op], loss="nmse(x, x_star)"), batch)


def test_per_sample_scalar_times_vector_keeps_the_batch_in_front():
    """Steepest descent: the step ||r||^2 / ||A'r||^2 is one number per sample."""
    text = """dims n, m
operator A : [n, m]
input y : [n]
state x : [m] = 0
iterate K = 3:
    r = y - A x
    g = A' r
    x = x + (||g||^2 / ||A g||^2) * g
output x
"""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((M, M))
    y = rng.standard_normal((M, M))  # batch == m: a wrong broadcast would not raise
    model = unroll.compile(text, dtype=torch.float64, A=A)
    got = model(y=torch.as_tensor(y)).detach().numpy()
    x = np.zeros((M, M))
    for _ in range(3):
        g = (y - x @ A.T) @ A
        step = np.sum(g * g, 1) / np.sum((g @ A.T) ** 2, 1)
        x = x + step[:, None] * g
    np.testing.assert_allclose(got, x, rtol=1e-10)
    np.testing.assert_allclose(evaluate(model.unfolded, {"A": A}, {"y": y})["output"], x, rtol=1e-10)


def test_initial_parameters_match_the_module():
    A = np.random.default_rng(1).standard_normal((20, 40))
    model = unroll.compile("zoo:lista", K=2, dtype=torch.float64, A=A)
    init = initial_parameters(model.unfolded, {"A": A})
    got = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    assert set(init) == set(got)
    for k in init:
        np.testing.assert_allclose(got[k], init[k], rtol=1e-12, atol=1e-15)
    L = np.linalg.norm(A, 2) ** 2
    np.testing.assert_allclose(got["W_e"], A.T / L, rtol=1e-12)
    np.testing.assert_allclose(got["S"], np.eye(40) - A.T @ A / L, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["theta"], np.full(40, 0.1 / L), rtol=1e-12)


def test_module_attributes_and_dtypes():
    A = np.random.default_rng(2).standard_normal((20, 40))
    m32 = unroll.compile("zoo:lista", K=2, A=A)
    assert (m32.input_names, m32.target_names, m32.output_names) == (("y",), ("x_star",), ("x",))
    assert m32.operator_names == ("A",) and m32.state_names == ("x",) and m32.spec_name == "LISTA"
    assert m32.A.dtype == torch.float32 and m32.W_e.dtype == torch.float32
    assert "A" in dict(m32.named_buffers())
    m64 = unroll.compile("zoo:lista", K=2, dtype=torch.float64, A=torch.as_tensor(A))
    y = torch.randn(3, 20, dtype=torch.float64)
    assert m64(y=y).dtype == torch.float64
    torch.testing.assert_close(m32(y=y.float()), m64(y=y).float(), rtol=1e-4, atol=1e-5)
    assert unroll.compile("zoo:lista", K=2, device="cpu", A=A).A.device.type == "cpu"


def test_classical_spec_has_no_parameters_but_runs_backward_to_inputs():
    A = np.random.default_rng(3).standard_normal((20, 40))
    model = unroll.compile("zoo:ista", K=5, dtype=torch.float64, A=A)
    assert not list(model.parameters())
    y = torch.randn(2, 20, dtype=torch.float64, requires_grad=True)
    model(y=y).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
