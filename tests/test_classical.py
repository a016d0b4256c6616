"""Classical ISTA and FISTA compiled with K = 1000 match plain NumPy loops of the same algorithms
(float64, relative error ~1e-8); the derived and template forms of ISTA/FISTA match them too."""
import numpy as np
import pytest
import torch

import unroll

LAM = 0.1  # the zoo specs' lambda


def _problem(seed: int = 0, n: int = 20, m: int = 40, batch: int = 3):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, m)) / np.sqrt(n)
    x = rng.standard_normal((batch, m)) * (rng.random((batch, m)) < 0.2)
    y = x @ A.T + 0.01 * rng.standard_normal((batch, n))
    return A, y


def _soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def ista_numpy(A, y, K):
    """x <- soft(x - A'(A x - y) / L, lam / L), from x = 0; y holds one sample per row."""
    L = np.linalg.norm(A, 2) ** 2
    x = np.zeros((y.shape[0], A.shape[1]))
    for _ in range(K):
        x = _soft(x - (x @ A.T - y) @ A / L, LAM / L)
    return x


def fista_numpy(A, y, K):
    """Beck & Teboulle's FISTA from x = z = 0, t = 1."""
    L = np.linalg.norm(A, 2) ** 2
    x = np.zeros((y.shape[0], A.shape[1]))
    z, t = x.copy(), 1.0
    for _ in range(K):
        x_new = _soft(z - (z @ A.T - y) @ A / L, LAM / L)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


def _run(name: str, A, y, K: int) -> np.ndarray:
    model = unroll.compile(f"zoo:{name}", K=K, dtype=torch.float64, A=A)
    assert not list(model.parameters())  # classical: nothing to learn
    with torch.no_grad():
        return model(y=torch.as_tensor(y)).numpy()


def _assert_close(got, want):
    assert np.linalg.norm(got - want) <= 1e-8 * np.linalg.norm(want)


@pytest.mark.parametrize("name,loop", [("ista", ista_numpy), ("fista", fista_numpy)])
def test_K_1000_matches_numpy_loop(name, loop):
    A, y = _problem()
    want = loop(A, y, 1000)
    assert np.count_nonzero(want) > 0
    _assert_close(_run(name, A, y, 1000), want)


@pytest.mark.parametrize("name,loop", [("ista_grad_prox", ista_numpy), ("ista_template", ista_numpy),
                                       ("fista_template", fista_numpy)])
def test_derived_forms_match_numpy_loop(name, loop):
    A, y = _problem(seed=1)
    _assert_close(_run(name, A, y, 100), loop(A, y, 100))


def test_fista_converges_faster_than_ista():
    """A sanity check on the loops themselves: both approach the lasso optimum, FISTA sooner."""
    A, y = _problem(seed=2)
    ref = fista_numpy(A, y, 5000)

    def obj(x):
        return 0.5 * np.sum((x @ A.T - y) ** 2) + LAM * np.abs(x).sum()

    gap_ista, gap_fista = obj(ista_numpy(A, y, 100)) - obj(ref), obj(fista_numpy(A, y, 100)) - obj(ref)
    assert 0 <= gap_fista < gap_ista


def test_numpy_oracle_matches_loop():
    from unroll.backends.numpy_backend import evaluate
    A, y = _problem(seed=3)
    u = unroll.unfold("zoo:fista", K=50, A=A)
    _assert_close(evaluate(u, {"A": A}, {"y": y})["output"], fista_numpy(A, y, 50))
