"""zoo:alista and zoo:lamp agree with plain-torch implementations written from the papers,
with perturbed per-layer parameters, and train through `unroll train` on the sparse task."""
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
    for name, ops in (("lamp", {"A": A}), ("alista", {"A": A, "W": W})):
        task = SparseCodingTask(A, extra={"W": W}, n_test=200, p=0.1)
        model = unroll.compile(f"zoo:{name}", K=4, **ops)
        before = evaluate_layers(model, task.bind(model).test_set())[-1]
        res = train(model, task, TrainConfig(lr=0.01, steps=60, eval_every=60, batch_size=32,
                                             out_dir=str(tmp_path / name)), progress=False)
        assert res.layer_nmse_db[-1] < before - 1.0, (name, before, res.layer_nmse_db)
