"""The image compressive-sensing zoo specs (ISTA-Net, ISTA-Net+, FISTA-Net) against the papers'
architectures: parameter counts and a hand-written reference phase with the same weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import unroll

N, M = 1089, 109


@pytest.fixture(scope="module")
def ops():
    rng = np.random.default_rng(0)
    phi = np.linalg.qr(rng.standard_normal((N, M)))[0].T
    return {"Phi": phi, "Q": phi.T.copy()}


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_ista_net_plus_has_the_papers_parameter_count(ops):
    m = unroll.compile("zoo:ista_net_plus", **ops)
    # Per phase: D 1*32*9 + H 2*32*32*9 + H~ 2*32*32*9 + G 32*9 + rho + theta.
    assert _count(m) == 9 * (288 + 18432 + 18432 + 288 + 2) == 336978


def test_ista_net_parameter_count(ops):
    m = unroll.compile("zoo:ista_net", **ops)
    assert _count(m) == 9 * (288 + 9216 + 9216 + 288 + 2)


def test_fista_net_shares_its_proximal_block(ops):
    m = unroll.compile("zoo:fista_net", **ops)
    names = [n for n, _ in m.named_parameters()]
    assert not any(n.startswith("layers.") for n in names)
    conv = (32 * 9 + 32) + 8 * (32 * 32 * 9 + 32) + (32 * 9 + 1)
    assert _count(m) == conv + 6


def _reference_phase(x, y, phi, layer, rho, theta):
    """One ISTA-Net+ phase written by hand as in the paper's released code."""
    ptp = phi.T @ phi
    r = x - rho * (x @ ptp.T) + rho * (y @ phi)
    img = r.view(-1, 1, 33, 33)
    d = F.conv2d(img, layer.D[0].weight, padding=1)
    h = F.conv2d(F.relu(F.conv2d(d, layer.H[0].weight, padding=1)), layer.H[2].weight, padding=1)
    st = torch.sign(h) * F.relu(torch.abs(h) - theta)
    b = F.conv2d(F.relu(F.conv2d(st, layer.Ht[0].weight, padding=1)), layer.Ht[2].weight, padding=1)
    g = F.conv2d(b, layer.G[0].weight, padding=1)
    hb = F.conv2d(F.relu(F.conv2d(h, layer.Ht[0].weight, padding=1)), layer.Ht[2].weight, padding=1)
    return (img + g).view(-1, N), hb - d


def test_one_compiled_phase_equals_a_hand_written_phase(ops):
    torch.manual_seed(0)
    m = unroll.compile("zoo:ista_net_plus", dtype=torch.float64, **ops)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
    y = torch.randn(3, M, dtype=torch.float64)
    phi = torch.as_tensor(ops["Phi"])
    x0 = y @ torch.as_tensor(ops["Q"]).T
    layer = m.layers[0]
    want, sym = _reference_phase(x0, y, phi, layer, layer.rho, layer.theta)
    got = m(y=y, upto=1)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # The auxiliary symmetry term of the loss matches too.
    x_star = torch.randn(3, N, dtype=torch.float64)
    loss = m.loss({"y": y, "x_star": x_star}, upto=1)
    ref = torch.mean((want - x_star) ** 2) + 0.01 * torch.mean(sym ** 2)
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)


def test_fista_net_schedules_follow_the_layer_index(ops):
    u = unroll.unfold("zoo:fista_net", **ops)
    # rho at layer 0 is (softplus(b) - softplus(b)) / softplus(b) = 0: x equals x_new there.
    m = unroll.compile("zoo:fista_net", dtype=torch.float64, **ops)
    y = torch.randn(2, M, dtype=torch.float64)
    out, layers = m(y=y, return_layers=True)
    assert len(layers) == u.K == 9
    assert torch.isfinite(out).all()


def test_a_short_training_run_lowers_the_loss(ops):
    torch.manual_seed(0)
    m = unroll.compile("zoo:ista_net_plus", K=2, **ops)
    rng = np.random.default_rng(1)
    # Smooth blocks: low-frequency images are what the network should learn to reconstruct.
    u = np.linspace(0, 1, 33)
    blocks = []
    for _ in range(16):
        a, b, c = rng.uniform(-3, 3, 3)
        img = 0.5 + 0.25 * np.sin(a * u[:, None] + b * u[None, :] + c)
        blocks.append(img.reshape(-1))
    x = torch.tensor(np.array(blocks), dtype=torch.float32)
    batch = {"y": x @ torch.tensor(ops["Phi"], dtype=torch.float32).T, "x_star": x}
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    first = m.loss(batch).item()
    for _ in range(30):
        opt.zero_grad()
        loss = m.loss(batch)
        loss.backward()
        opt.step()
    assert m.loss(batch).item() < 0.5 * first
