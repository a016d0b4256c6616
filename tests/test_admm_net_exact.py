"""The language features the released Deep ADMM-Net needs (a `finally` layer after the loop, filter
banks in a basis, column-major DCT atoms, safe denominators) and zoo:admm_net_exact built from them."""
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

import unroll
from unroll.backends.numpy_backend import evaluate
from unroll.errors import NameError_, ShapeError, SpecError

FINAL = """algorithm T
dims m
input y : [m]
learn a : [m] = 0.5 per_layer
learn b : [m] = 2 per_layer
state x : [m] = 0
state u : [m] = 0
iterate K = 3:
    x = a * x + y + u
    u = b * x
finally x
output x
"""


def test_finally_adds_one_layer_with_its_own_copies_of_what_it_uses():
    model = unroll.compile(FINAL, dims={"m": 2}, dtype=torch.float64)
    assert model.K == 3 and model.unfolded.K == 4 and model.unfolded.iterations == 3
    names = {n for n, _ in model.named_parameters()}
    assert "layers.3.a" in names and "layers.3.b" not in names  # b is not used by the final x
    assert sum(p.numel() for p in model.parameters()) == 4 * 2 + 3 * 2
    with torch.no_grad():
        for k, layer in enumerate(model.layers):
            layer.a.fill_(0.1 * (k + 1))
            if k < 3:
                layer.b.fill_(1.0 + k)
    y = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    x = u = torch.zeros_like(y)
    want = []
    for k in range(3):  # the three full iterations, then x once more from the last u
        x = 0.1 * (k + 1) * x + y + u
        u = (1.0 + k) * x
        want.append(x)
    want.append(0.4 * x + y + u)
    out, layers = model(y=y, return_layers=True)
    assert len(layers) == 4
    for got, w in zip(layers, want):
        torch.testing.assert_close(got, w)
    torch.testing.assert_close(out, want[-1])
    torch.testing.assert_close(model(y=y, upto=3), want[2])
    ref = evaluate(model.unfolded, {}, {"y": y.numpy()},
                   params={k: v.detach().numpy() for k, v in model.parameter_values().items()})
    np.testing.assert_allclose(ref["output"], want[-1].numpy(), rtol=1e-12)
    assert len(ref["layers"]) == 4


def test_finally_survives_a_checkpoint_round_trip():
    model = unroll.compile(FINAL, dims={"m": 2}, dtype=torch.float64)
    again = unroll.compile(FINAL, K=model.K, dims={"m": 2}, dtype=torch.float64)
    again.load_state_dict(model.state_dict())  # same parameters: K is the iteration count


@pytest.mark.parametrize("line, cls, where, words", [
    ("finally v", NameError_, (11, 1), "finally 'v': not a state"),
    ("finally x\nfinally u", SpecError, (12, 1), "one `finally` line"),
])
def test_finally_errors_are_located(line, cls, where, words):
    text = FINAL.replace("finally x", line)
    with pytest.raises(cls) as e:
        unroll.check(text)
    assert (e.value.span.line, e.value.span.col) == where and words in str(e.value)


def _readme_atoms() -> np.ndarray:
    """The README's construction: rows 2..9 of kron(dctmtx(3), dctmtx(3)), reshaped column-major."""
    C = np.array([[1, 1, 1] / np.sqrt(3), [1, 0, -1] / np.sqrt(2), [1, -2, 1] / np.sqrt(6)])
    return np.stack([row.reshape(3, 3, order="F") for row in np.kron(C, C)[1:]])


BANK = """algorithm B
dims h = 5, w = 5, L = 3
input y : [h, w]
learn G : [8, L] = 0.3
learn e : [h, w] = 0
state x : [L, h, w] = 0
iterate K = 1:
    x = cconv(bank(G, dct_filters(3, order = F)), y / nonzero(e + y * y, 1e-6))
output x
"""


def test_bank_of_column_major_dct_atoms_matches_the_readme():
    model = unroll.compile(BANK, dtype=torch.float64)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((8, 3))
    y = rng.standard_normal((1, 5, 5))
    y[0, 2, 3] = 0.0  # a zero denominator becomes 1e-6
    with torch.no_grad():
        model.G.copy_(torch.tensor(G))
    H = np.einsum("rl,rab->lab", G, _readme_atoms())
    den = y[0] ** 2
    den[den == 0] = 1e-6
    v = y[0] / den
    want = np.zeros((3, 5, 5))
    for l in range(3):  # circular convolution centred at the kernel's middle, spatially
        for i in range(3):
            for j in range(3):
                want[l] += H[l, i, j] * np.roll(v, (i - 1, j - 1), axis=(0, 1))
    got = model(y=torch.tensor(y))[0].detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    ref = evaluate(model.unfolded, {}, {"y": y}, params={"G": G, "e": np.zeros((5, 5))})
    np.testing.assert_allclose(ref["output"][0], want, rtol=1e-10, atol=1e-9)


def test_default_dct_atoms_are_the_transposes():
    a = unroll.compile(BANK.replace(", order = F", ""), dtype=torch.float64)
    b = unroll.compile(BANK, dtype=torch.float64)
    y = torch.randn(1, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        a.G.copy_(torch.eye(8)[:, :3])
        b.G.copy_(torch.eye(8)[:, :3])
    flipped = a(y=y.transpose(-1, -2)).transpose(-1, -2)  # conv of the transposed image, transposed
    torch.testing.assert_close(flipped, b(y=y))


def test_bank_and_nonzero_gradients():
    model = unroll.compile(BANK, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    params = {n: (p.detach() + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype)).requires_grad_()
              for n, p in model.named_parameters()}
    y = (torch.randn(2, 5, 5, generator=gen, dtype=torch.float64) + 2.0).requires_grad_()

    def f(y, *values):
        return functional_call(model, dict(zip(params, values)), kwargs={"y": y})

    assert gradcheck(f, (y, *params.values()), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("expr, words", [
    ("bank(e, dct_filters(3, order = F))", "atoms [5, a, b]"),
    ("bank(G, dct_filters(3, order = X))", "order = C"),
    ("bank(y, dct_filters(3))", "coefficients G [R, L]"),
])
def test_bank_errors_are_located(expr, words):
    text = BANK.replace("bank(G, dct_filters(3, order = F))", expr)
    with pytest.raises((ShapeError, SpecError)) as e:
        unroll.check(text)
    assert e.value.span.line == 8 and words in str(e.value)


def test_admm_net_exact_has_the_authors_parameter_count():
    u = unroll.unfold("zoo:admm_net_exact", K=17, dims={"h": 256, "w": 256})
    assert u.K == 18 and u.iterations == 17  # 17 stages and the final X layer
    total = sum(int(np.prod(info.shape)) for info in u.params.values())
    assert total == 16256 == 17 * 952 + 72


def test_admm_net_exact_torch_matches_numpy_with_perturbed_weights():
    rng = np.random.default_rng(3)
    P = (rng.random((12, 12)) < 0.4).astype(float)
    P[0, 0] = 1.0
    model = unroll.compile("zoo:admm_net_exact", K=2, P=P, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    x = rng.random((2, 12, 12))
    y = P * np.fft.fft2(x, norm="ortho")
    params = {k: v.detach().numpy() for k, v in model.parameter_values().items()}
    ref = evaluate(model.unfolded, {"P": P}, {"y": y}, params=params, targets={"x_star": x})
    out, layers = model(y=torch.tensor(y), return_layers=True)
    assert len(layers) == len(ref["layers"]) == 3
    for got, want in zip(layers, ref["layers"]):
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-12)
    loss = model.loss({"y": torch.tensor(y), "x_star": torch.tensor(x)})
    np.testing.assert_allclose(loss.item(), ref["loss"], rtol=1e-10)
