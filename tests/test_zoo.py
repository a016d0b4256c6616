"""Every zoo spec parses, checks, unfolds and compiles; the torch module agrees with the float64
NumPy oracle on outputs, per-layer outputs, the loss and after perturbing the parameters."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.compiler.ir import Program

K = 3
BATCH = 3
SIZES = {"n": 20, "m": 40}  # A is 20 x 40; other dims get a small default
# Inputs that are probability vectors (the spec takes their log): drawn positive, summing to 1.
MARGINALS = {"sinkhorn_log": ("a", "b")}


def _rand(rng, shape, dtype):
    """A random array of `shape`, complex when the spec says so."""
    if dtype == "complex":
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return rng.standard_normal(shape)


def zoo_problem(name: str, seed: int = 0):
    """(program, dims, operators, inputs, targets) with random values of the declared shapes."""
    rng = np.random.default_rng(seed)
    prog = unroll.check(f"zoo:{name}")
    dims = {d: (v if v is not None else SIZES.get(d, 6)) for d, v in prog.dims.items()}

    def shape(t):
        return tuple(d if isinstance(d, int) else dims[d] for d in t.shape)

    ops = {n: _rand(rng, shape(t), t.dtype) for n, t in prog.operators.items()}
    inputs = {n: _rand(rng, (BATCH,) + shape(t), t.dtype) for n, t in prog.inputs.items()}
    targets = {n: _rand(rng, (BATCH,) + shape(t), t.dtype) for n, t in prog.targets.items()}
    for n in MARGINALS.get(name, ()):
        p = np.abs(inputs[n]) + 0.1
        inputs[n] = p / p.sum(axis=-1, keepdims=True)
    return prog, dims, ops, inputs, targets


def _compile(name: str, ops, dims, k: int = K):
    return unroll.compile(f"zoo:{name}", K=k, dims=dims, dtype=torch.float64, **ops)


def _t(inputs):
    return {k: torch.as_tensor(v) for k, v in inputs.items()}


def _np(x):
    return x.detach().cpu().numpy()


ZOO = unroll.zoo.names()


def test_zoo_is_not_empty():
    assert {"ista", "fista", "lista", "lista_untied", "lista_cp"} <= set(ZOO)


@pytest.mark.parametrize("name", ZOO)
def test_every_stage_runs(name):
    prog, dims, ops, inputs, _ = zoo_problem(name)
    spec = unroll.parse(f"zoo:{name}")
    assert spec.statements
    assert isinstance(unroll.check(spec), Program)
    u = unroll.unfold(f"zoo:{name}", K=K, dims=dims, **ops)
    assert u.iterations == K and len(u.state_nodes) == u.K + 1  # u.K: K, plus one with `finally`
    u.graph.lint()
    u.build.lint()
    model = unroll.compile(f"zoo:{name}", K=K, dims=dims, **ops)
    assert isinstance(model, torch.nn.Module)
    assert model.K == K
    out = model(**{k: torch.as_tensor(v, dtype=torch.complex64 if np.iscomplexobj(v) else torch.float32)
                   for k, v in inputs.items()})
    assert torch.isfinite(out).all()
    assert model.output_names == prog.outputs
    assert unroll.zoo.citation(name)


@pytest.mark.parametrize("name", ZOO)
def test_torch_matches_numpy_oracle(name):
    prog, dims, ops, inputs, targets = zoo_problem(name)
    model = _compile(name, ops, dims)
    u = model.unfolded
    params = {k: _np(v) for k, v in model.parameter_values().items()}
    assert set(u.params) <= set(params)  # and the weights of learnable blocks, if any
    ref = evaluate(u, ops, inputs, params=params, targets=targets)
    if not getattr(u.program, "blocks", None):
        # Without blocks (whose weights are random) the oracle's own initial parameters agree too.
        default = evaluate(u, ops, inputs, targets=targets)
        np.testing.assert_allclose(default["output"], ref["output"], rtol=1e-12, atol=1e-12)
    out, layers = model(**_t(inputs), return_layers=True)
    np.testing.assert_allclose(_np(out), ref["output"], rtol=1e-6, atol=1e-6)
    assert len(layers) == u.K == len(ref["layers"])
    for got, want in zip(layers, ref["layers"]):
        np.testing.assert_allclose(_np(got), want, rtol=1e-6, atol=1e-6)
    if u.loss_graph is not None:
        loss = model.loss({**_t(inputs), **_t(targets)})
        np.testing.assert_allclose(_np(loss), ref["loss"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ZOO)
def test_torch_matches_numpy_after_perturbing_parameters(name):
    prog, dims, ops, inputs, targets = zoo_problem(name, seed=1)
    model = _compile(name, ops, dims)
    params0 = {k: _np(v).copy() for k, v in model.parameter_values().items()}
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    params = {k: _np(v) for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, ops, inputs, params=params, targets=targets)
    unperturbed = evaluate(model.unfolded, ops, inputs, params=params0, targets=targets)
    out, layers = model(**_t(inputs), return_layers=True)
    np.testing.assert_allclose(_np(out), ref["output"], rtol=1e-6, atol=1e-6)
    for got, want in zip(layers, ref["layers"]):
        np.testing.assert_allclose(_np(got), want, rtol=1e-6, atol=1e-6)
    if model.unfolded.loss_graph is not None:
        loss = model.loss({**_t(inputs), **_t(targets)})
        np.testing.assert_allclose(_np(loss), ref["loss"], rtol=1e-6, atol=1e-9)
    if params:  # the perturbation must have changed something, or this test checks nothing new
        assert not np.allclose(ref["output"], unperturbed["output"])


@pytest.mark.parametrize("name", ZOO)
def test_upto_equals_layer_outputs(name):
    prog, dims, ops, inputs, targets = zoo_problem(name, seed=2)
    model = _compile(name, ops, dims)
    _, layers = model(**_t(inputs), return_layers=True)
    batch = {**_t(inputs), **_t(targets)}
    for k in range(1, model.unfolded.K + 1):
        torch.testing.assert_close(model(**_t(inputs), upto=k), layers[k - 1], rtol=0, atol=0)
        # (with `finally`, the network unrolled k times has k + 1 layers: no such equality)
        if model.unfolded.loss_graph is None or k > 1 or prog.final:
            continue
        # The loss after k layers is the loss of the same network unrolled k times.
        short = _compile(name, ops, dims, k)
        short.load_state_dict({n: v for n, v in model.state_dict().items()
                               if n in short.state_dict()})
        torch.testing.assert_close(model.loss(batch, upto=k), short.loss(batch), rtol=1e-12, atol=0)


def test_lista_loss_upto_is_mse_of_that_layer():
    _, dims, ops, inputs, targets = zoo_problem("lista", seed=4)
    model = _compile("lista", ops, dims)
    _, layers = model(**_t(inputs), return_layers=True)
    x_star = torch.as_tensor(targets["x_star"])
    for k in range(1, K + 1):
        want = torch.mean((layers[k - 1] - x_star) ** 2)
        torch.testing.assert_close(model.loss({**_t(inputs), "x_star": x_star}, upto=k), want)


def test_parameter_names_follow_the_spec():
    _, dims, ops, _, _ = zoo_problem("lista")
    shared = _compile("lista", ops, dims)
    assert {n for n, _ in shared.named_parameters()} == {"W_e", "S", "theta"}
    untied = _compile("lista_untied", ops, dims)
    assert {n for n, _ in untied.named_parameters()} == {
        f"layers.{k}.{p}" for k in range(K) for p in ("W_e", "S", "theta")}


def test_module_runs_in_float32_by_default():
    _, dims, ops, inputs, _ = zoo_problem("lista")
    model = unroll.compile("zoo:lista", K=K, **ops)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    out = model(y=torch.as_tensor(inputs["y"], dtype=torch.float32))
    assert out.dtype == torch.float32 and out.shape == (BATCH, dims["m"])
