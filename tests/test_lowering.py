"""Each backend has one lowering table keyed by the op names: every op of compiler.ops.OPS (and the
values the graph builds itself) is lowered by both, and the torch lowering agrees with the NumPy
oracle on the ops whose numpy entries moved into its table (constructors, reshape, blocks, batch
mean)."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import NUMPY_OPS, evaluate
from unroll.backends.torch_ops import TORCH_OPS
from unroll.backends.walk import GRAPH_OPS, LEAF_KINDS
from unroll.compiler.ops import OPS


def test_every_op_is_lowered_by_both_backends():
    assert set(OPS) <= set(TORCH_OPS) and set(OPS) <= set(NUMPY_OPS)
    assert set(TORCH_OPS) == set(NUMPY_OPS) == set(OPS) | GRAPH_OPS  # one table each, same keys
    assert not (set(TORCH_OPS) & LEAF_KINDS)  # leaves are bound by each backend, never lowered


PER_SAMPLE_LOSS = """dims m = 4
input y : [m]
target x_star : [m]
learn w : [m] = 0.5
state x : [m] = 0
iterate K = 2:
    x = relu(x + w * y)
output x
loss sum((x - x_star)^2)
"""

# specs (tiny sizes) whose graphs hold the ops the numpy oracle used to special-case
CASES = {
    "ista_net": ("zoo:ista_net", {"M": 100}, {"block", "reshape"}),
    "admm_net": ("zoo:admm_net", {"h": 8, "w": 8}, {"grid", "dct_filters"}),
    "tv_admm_mri": ("zoo:tv_admm_mri", {"h": 6, "w": 6}, {"diff_filters"}),
    "per_sample_loss": (PER_SAMPLE_LOSS, {}, {"batch_mean"}),
}


def _rand(rng, shape, dtype):
    return rng.random(shape) + 0.5 + (1j * rng.random(shape) if dtype == "complex" else 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_matches_numpy_on_the_moved_ops(case):
    spec, given, ops_used = CASES[case]
    prog = unroll.check(spec)
    dims = {d: (v if v is not None else given[d]) for d, v in prog.dims.items()}
    net = unroll.unfold(prog, K=2, dims=dims)
    assert ops_used <= {r.op for r in net.nodes()}
    rng = np.random.default_rng(0)
    shape = lambda t: tuple(d if isinstance(d, int) else dims[d] for d in t.shape)
    operators = {n: rng.random(shape(t)) + 0.5 for n, t in prog.operators.items()}
    model = unroll.compile(prog, K=2, dims=dims, dtype=torch.float64, **operators)
    inputs = {n: _rand(rng, (2,) + shape(t), t.dtype) for n, t in prog.inputs.items()}
    targets = {n: _rand(rng, (2,) + shape(t), t.dtype) for n, t in prog.targets.items()}
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, operators, inputs, params=params, targets=targets)
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v) for k, v in inputs.items()})
        loss = model.loss({k: torch.as_tensor(v) for k, v in {**inputs, **targets}.items()})
    np.testing.assert_allclose(out.numpy(), ref["output"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss.item(), ref["loss"], rtol=1e-9)
