"""zoo:alista, zoo:lamp and zoo:tista agree with plain-torch implementations written from the
papers, with perturbed per-layer parameters, and train on the sparse task."""
import numpy as np
import torch

import unroll


def _soft(v, t):
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0)


def _setup(seed=0, n=15, m=30, B=4):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, m, generator=g, dtype=torch.float64) / n ** 0.5
    x = torch.randn(B, m, generator=g, dtype=torch.float64) * (torch.rand(B, m, generator=g) < 0.2)
    return A, x @ A.T, x


def _perturb(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))


def test_alista_matches_hand_written():
    A, y, _ = _setup()
    G = A @ A.T
    W = torch.linalg.solve(G, A)
    W = W / (W * A).sum(0)  # analytic weight: diag(W'A) = 1
    model = unroll.compile("zoo:alista", K=5, A=A.numpy(), W=W.numpy(), dtype=torch.float64)
    _perturb(model)
    v = model.parameter_values()
    x = torch.zeros(y.shape[0], A.shape[1], dtype=torch.float64)
    for k in range(5):
        x = _soft(x - v[f"gamma_{k}"] * (x @ A.T - y) @ W, v[f"theta_{k}"])
    assert torch.allclose(model(y=y), x, atol=1e-12)
    assert sorted(n for n, _ in model.named_parameters()) == sorted(
        f"layers.{k}.{p}" for k in range(5) for p in ("gamma", "theta"))


def test_lamp_matches_hand_written():
    A, y, _ = _setup()
    n = A.shape[0]
    model = unroll.compile("zoo:lamp", K=5, A=A.numpy(), dtype=torch.float64)
    _perturb(model)
    v = model.parameter_values()
    B = v["B"]
    x = torch.zeros(y.shape[0], A.shape[1], dtype=torch.float64)
    r = y.clone()
    for k in range(5):
        lam = v[f"alpha_{k}"] * r.norm(dim=1, keepdim=True) / n ** 0.5
        x = _soft(x + r @ B.T, lam)
        onsager = v[f"beta_{k}"] * (x != 0).sum(1, keepdim=True) / n
        r = y - x @ A.T + onsager * r
    assert torch.allclose(model(y=y), x, atol=1e-12)


def test_lamp_and_alista_learn_on_the_sparse_task(tmp_path):
    from unroll.data import SparseCodingTask
    from unroll.train import TrainConfig, evaluate_layers, train
    A, _, _ = _setup(n=20, m=40)
    A = A.numpy()
    Gi = np.linalg.solve(A @ A.T, A)
    W = Gi / (Gi * A).sum(0)
    for name, ops in (("lamp", {"A": A}), ("alista", {"A": A, "W": W}), ("tista", {"A": A})):
        task = SparseCodingTask(A, extra={"W": W} if name == "alista" else None, n_test=200, p=0.1)
        model = unroll.compile(f"zoo:{name}", K=4, **ops)
        before = evaluate_layers(model, task.bind(model).test_set())[-1]
        res = train(model, task, TrainConfig(lr=0.01, steps=60, eval_every=60, batch_size=32,
                                             out_dir=str(tmp_path / name)), progress=False)
        assert res.layer_nmse_db[-1] < before - 1.0, (name, before, res.layer_nmse_db)


def test_tista_matches_hand_written():
    """zoo:tista (its W, named P, is pinv(A) by default) against the paper's equations."""
    A, y, _ = _setup()
    n, m = A.shape
    model = unroll.compile("zoo:tista", K=5, A=A.numpy(), dtype=torch.float64)
    _perturb(model)
    v = model.parameter_values()
    W = torch.linalg.pinv(A)
    p, a2, s2 = 0.1, 1.0, 1e-4
    trAA, trWW = (A ** 2).sum(), (W ** 2).sum()
    s = torch.zeros(y.shape[0], m, dtype=torch.float64)
    for k in range(5):
        g = v[f"gamma_{k}"]
        e = y - s @ A.T
        r = s + g * e @ W.T
        v2 = torch.clamp(((e ** 2).sum(1, keepdim=True) - n * s2) / trAA, min=1e-9)
        tau2 = v2 / m * (m + (g ** 2 - 2 * g) * n) + g ** 2 * s2 / m * trWW
        xi = a2 + tau2
        f0 = torch.exp(-r ** 2 / (2 * tau2)) / torch.sqrt(2 * torch.pi * tau2)
        f1 = torch.exp(-r ** 2 / (2 * xi)) / torch.sqrt(2 * torch.pi * xi)
        s = r * a2 / xi * p * f1 / ((1 - p) * f0 + p * f1)
    assert torch.allclose(model(y=y), s, rtol=1e-10, atol=1e-12)
    assert torch.allclose(dict(model.named_buffers())["P"], W, atol=1e-12)
