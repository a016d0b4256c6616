"""Matrix-free operators (`operator A : [m] <- [n] linear`): given as a pair of torch callables or
an object with A(x) and A_adjoint(y) (deepinv's Physics), they agree with the dense matrix in
products, adjoints, grad, norm2 (power iteration) and argmin (CG), in torch and in the numpy
oracle, and no dense matrix is ever built."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends import numpy_backend as nb
from unroll.errors import SpecError

N, KER = 30, np.array([0.25, 0.5, 0.25, 0.1])
M_ = N + len(KER) - 1


def conv_matrix():
    """The dense 1-D full convolution with zero boundary: [N + k - 1, N]."""
    A = np.zeros((M_, N))
    for i in range(N):
        A[i:i + len(KER), i] = KER
    return A


def conv_pair():
    k = torch.tensor(KER)

    def fwd(x):
        return torch.nn.functional.conv1d(x[:, None], k.flip(0).to(x.dtype)[None, None],
                                          padding=len(KER) - 1)[:, 0]

    def adj(y):
        return torch.nn.functional.conv1d(y[:, None], k.to(y.dtype)[None, None])[:, 0]
    return fwd, adj


class Blur(torch.nn.Module):
    """A deepinv-style physics object: A(x) and A_adjoint(y) methods, a buffer of its own."""

    def __init__(self):
        super().__init__()
        self.register_buffer("k", torch.tensor(KER))
        self.calls = 0

    def A(self, x):
        self.calls += 1
        return conv_pair()[0](x)

    def A_adjoint(self, y):
        return conv_pair()[1](y)


HEAD = """algorithm MF "t"
dims n, m
operator A : [m] <- [n] linear
input    y : [m]
target   x_star : [n]
"""
ISTA = HEAD + """const L = norm2(A)^2
learn lam : [] = 0.05 per_layer positive
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * ||x||_1
state x : [n] = 0
iterate K = 5:
    x = prox(g, x - grad(f, x) / L, 1 / L)
output x
loss mse(x, x_star)
"""
ADMM = HEAD + """learn rho : [] = 1 per_layer positive
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = 0.05 * ||x||_1
state x : [n] = 0
solve f + g with admm(rho = rho, K = 4)
output x
loss mse(x, x_star)
"""
HAND = HEAD + """learn W : [] = 0.5 per_layer
state x : [n] = 0
iterate K = 3:
    x = relu(x - W * A'(A x - y))
output x
loss mse(x, x_star)
"""


def _dense(spec):
    return spec.replace("operator A : [m] <- [n] linear", "operator A : [m, n]")


@pytest.mark.parametrize("spec", [ISTA, ADMM, HAND], ids=["grad_prox_norm", "admm_cg", "products"])
@pytest.mark.parametrize("given", ["pair", "physics"])
def test_matrix_free_equals_dense(spec, given):
    op = conv_pair() if given == "pair" else Blur()
    dims = {"n": N, "m": M_}
    mf = unroll.compile(spec, dims=dims, A=op, dtype=torch.float64)
    de = unroll.compile(_dense(spec), A=conv_matrix(), dtype=torch.float64)
    y = torch.randn(3, M_, dtype=torch.float64)
    xs = torch.randn(3, N, dtype=torch.float64)
    torch.testing.assert_close(mf(y=y), de(y=y), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mf.objective(y=y), de.objective(y=y), rtol=1e-10, atol=1e-10) \
        if hasattr(de, "objective") else None
    lm, ld = mf.loss({"y": y, "x_star": xs}), de.loss({"y": y, "x_star": xs})
    lm.backward()
    ld.backward()
    for (n1, p1), (n2, p2) in zip(mf.named_parameters(), de.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-8, atol=1e-10)
    # never a matrix: no dense operator, identity or solve in the network
    ops = {d["op"] for _, d in mf.unfolded.graph.nx.nodes(data=True)}
    assert "linop_apply" in ops and not ops & {"operator", "identity", "solve"}
    assert not any(n.startswith("A") for n, _ in mf.named_buffers())  # nor a buffer


def test_norm2_by_power_iteration():
    mf = unroll.compile(ISTA, dims={"n": N, "m": M_}, A=conv_pair(), dtype=torch.float64)
    assert abs(mf.L.item() - np.linalg.norm(conv_matrix(), 2) ** 2) < 1e-9


@pytest.mark.parametrize("spec", [ISTA, ADMM, HAND])
def test_numpy_oracle_calls_the_callables(spec):
    dims = {"n": N, "m": M_}
    mf = unroll.compile(spec, dims=dims, A=conv_pair(), dtype=torch.float64)
    u = unroll.unfold(spec, dims=dims, A=conv_pair())
    y = np.random.default_rng(0).standard_normal((2, M_))
    pv = {k: v.detach().numpy() for k, v in mf.parameter_values().items()}
    r = nb.evaluate(u, {"A": conv_pair()}, {"y": y}, params=pv)
    assert np.abs(r["output"] - mf(y=torch.tensor(y)).detach().numpy()).max() < 1e-10


def test_numpy_pair_in_the_oracle():
    A = conv_matrix()
    pair = (lambda x: np.asarray(x) @ A.T if isinstance(x, np.ndarray) else (_ for _ in ()).throw(TypeError()),
            lambda y: np.asarray(y) @ A if isinstance(y, np.ndarray) else (_ for _ in ()).throw(TypeError()))
    u = unroll.unfold(HAND, dims={"n": N, "m": M_}, A=pair)
    y = np.random.default_rng(0).standard_normal((2, M_))
    want = nb.evaluate(unroll.unfold(_dense(HAND), A=A), {"A": A}, {"y": y})["output"]
    assert np.abs(nb.evaluate(u, {"A": pair}, {"y": y})["output"] - want).max() < 1e-12


def test_physics_object_is_not_a_submodule():
    blur = Blur()
    mf = unroll.compile(HAND, dims={"n": N, "m": M_}, A=blur)
    assert "k" not in dict(mf.named_buffers()) and all("k" != n for n, _ in mf.named_parameters())
    mf(y=torch.randn(2, M_))
    assert blur.calls > 0


@pytest.mark.parametrize("body,needle", [
    ("const B = A' A", "matrix-free operator A cannot be used in matmul"),
    ("const B = A", "matrix-free operator A is not a value"),
    ("learn W : [n, m] = A'", "matrix-free operator A is not a value"),
    ("const c = sum(A + 1)", "cannot be used in add"),
])
def test_bad_uses_are_located_errors(body, needle):
    text = HEAD + body + "\nstate x : [n] = 0\niterate K = 2:\n    x = x + A' y\noutput x\n"
    with pytest.raises(SpecError) as e:
        unroll.check(text)
    assert needle in str(e.value) and ":6:" in str(e.value) and "apply it" in str(e.value)


def test_wrong_shape_and_wrong_kind_of_operator():
    text = HEAD + "state x : [n] = 0\niterate K = 2:\n    x = x + A y\noutput x\n"
    with pytest.raises(SpecError, match=r"operator A takes \[n\], got \[m\]"):
        unroll.check(text)
    with pytest.raises(SpecError, match="matrix-free but was given an array"):
        unroll.compile(HAND, dims={"n": N, "m": M_}, A=conv_matrix())
    with pytest.raises(SpecError, match="a tensor but was given"):
        unroll.compile(_dense(HAND), A=conv_pair())


def test_shown_as_products():
    from unroll.compiler.pretty import to_text
    p = unroll.check(ISTA)
    assert to_text(p.updates["x"]) == "soft(x - A'(A x - y) / L, lam / L)"


def test_trains_on_arrays_with_the_operator_from_python(tmp_path):
    from unroll.data.arrays import ArrayTask, DataFileError
    from unroll.train import TrainConfig, train
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, N)) * (rng.random((64, N)) < 0.2)
    arrays = {"y": x @ conv_matrix().T, "x_star": x}
    program = unroll.check(HAND)
    with pytest.raises(DataFileError, match="matrix-free"):
        ArrayTask.for_spec(program, arrays)
    task = ArrayTask.for_spec(program, arrays, {"A": conv_pair()}, dims={"m": M_})
    model = unroll.compile(program, dims=task.dims(), **task.operators())
    res = train(model, task, TrainConfig(lr=0.01, steps=20, eval_every=20, batch_size=8,
                                         out_dir=str(tmp_path)), progress=False)
    assert np.isfinite(res.layer_nmse_db[-1])


def test_deepinv_physics_works_as_is():
    dinv = pytest.importorskip("deepinv")
    fwd, adj = conv_pair()
    physics = dinv.physics.LinearPhysics(A=fwd, A_adjoint=adj)
    mf = unroll.compile(ISTA, dims={"n": N, "m": M_}, A=physics, dtype=torch.float64)
    de = unroll.compile(_dense(ISTA), A=conv_matrix(), dtype=torch.float64)
    y = torch.randn(3, M_, dtype=torch.float64)
    torch.testing.assert_close(mf(y=y), de(y=y), rtol=1e-10, atol=1e-10)


IMAGE_ISTA = """algorithm MF2 "t"
dims c, h, w
operator A : [c, h, w] <- [c, h, w] linear
input    y : [c, h, w]
const L = norm2(A)^2
learn lam : [] = 0.01 per_layer positive
cost f(x) = 1/2 * ||A x - y||^2
cost g(x) = lam * ||x||_1
state x : [c, h, w] = 0
iterate K = 5:
    x = prox(g, x - grad(f, x) / L, 1 / L)
output x
"""


def test_native_deepinv_blur_matches_its_dense_matrix():
    """A physics class deepinv ships (2-D blur on [B, C, H, W] images), not a wrapper of our own
    callables: the compiled ISTA equals the one built on the dense matrix of that blur."""
    dinv = pytest.importorskip("deepinv")
    from deepinv.physics.functional import blur as fblur
    physics = dinv.physics.Blur(filter=fblur.gaussian_blur(sigma=(1.0, 1.0)).double(),
                                padding="circular")
    h = w = 8
    n = h * w
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, h, w)
    dense = physics.A(basis).reshape(n, n).T.numpy()
    spec = (IMAGE_ISTA.replace("dims c, h, w", "dims n").replace("[c, h, w] <- [c, h, w] linear", "[n, n]")
            .replace("[c, h, w]", "[n]"))
    mf = unroll.compile(IMAGE_ISTA, dims={"c": 1, "h": h, "w": w}, A=physics, dtype=torch.float64)
    de = unroll.compile(spec, dims={"n": n}, A=dense, dtype=torch.float64)
    y = torch.randn(3, 1, h, w, dtype=torch.float64)
    torch.testing.assert_close(mf(y=y), de(y=y.reshape(3, n)).reshape(3, 1, h, w),
                               rtol=1e-10, atol=1e-10)


CG_STEP = HEAD + """learn lam : [] = 0.5 shared positive
state x : [n] = 0
iterate K = 3:
    z = 0.5 * x
    x = argmin(x: ||A x - y||^2 + lam * ||x - z||^2, method = cg, iters = 4)
output x
loss mse(x, x_star)
"""


def test_cg_starts_from_zero_without_applying_the_operator_to_it():
    """CG's first residual is b itself: A and A' are never applied to the zero start, neither in
    the derived step (`unroll show`) nor in the network (counted calls), and it still equals dense."""
    from unroll.compiler.pretty import shared_lines
    text = "\n".join(shared_lines([("x", unroll.check(CG_STEP).updates["x"])]))  # as `unroll show`
    assert "A 0" not in text and "A'(-2 * y)" in text
    fwd, adj = conv_pair()
    calls = {"A": 0, "A'": 0}

    def counted(f, key):
        def g(v):
            calls[key] += 1
            return f(v)
        return g
    mf = unroll.compile(CG_STEP, dims={"n": N, "m": M_}, A=(counted(fwd, "A"), counted(adj, "A'")),
                        dtype=torch.float64)
    y = torch.randn(2, M_, dtype=torch.float64)
    calls.update({"A": 0, "A'": 0})
    out = mf(y=y)
    # one A, A' pair per CG iteration (3 layers x 4) and A'y once (the same in every layer)
    assert calls == {"A": 12, "A'": 13}
    de = unroll.compile(_dense(CG_STEP), A=conv_matrix(), dtype=torch.float64)
    torch.testing.assert_close(out, de(y=y), rtol=1e-10, atol=1e-10)
