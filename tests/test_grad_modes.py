"""Gradient modes: checkpoint and truncated:K give the unrolled gradients, truncated:T stops at the
last T layers, implicit matches the unrolled gradient at convergence, and specs that are not one
shared fixed-point map are refused with a located reason."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.grad_modes import parse_grad
from unroll.errors import SpecError

ISTA_LEARNED = """algorithm ISTA_learned
dims n, m
operator A : [n, m]
input y : [n]
target x_star : [m]
const L = norm2(A)^2
learn step : [] = 1 / L positive
learn theta : [] = 0.05 / L positive
state x : [m] = 0
iterate K = 1000:
    x = soft(x - step * A' (A x - y), theta)
output x
loss mse(x, x_star)
"""


def _problem(n=20, m=40, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, m)) / np.sqrt(n)
    xs = rng.standard_normal((batch, m)) * (rng.random((batch, m)) < 0.2)
    return A, {"y": torch.as_tensor(xs @ A.T), "x_star": torch.as_tensor(xs)}


def _grads(spec, grad, K, A, batch, upto=None):
    torch.manual_seed(0)  # same random block weights in every mode
    model = unroll.compile(spec, K=K, A=A, dtype=torch.float64, grad=grad)
    loss = model.loss(batch, upto=upto)
    loss.backward()
    return loss.detach(), {n: (p.grad if p.grad is not None else torch.zeros_like(p))
                           for n, p in model.named_parameters()}


@pytest.mark.parametrize("spec", ["zoo:lista", "zoo:lista_untied", "zoo:lista_cp", "zoo:lista_cpss"])
def test_checkpoint_and_full_truncation_equal_unroll(spec):
    A, batch = _problem()
    loss, ref = _grads(spec, "unroll", 6, A, batch)
    for grad in ("checkpoint", "truncated:6"):
        loss_g, got = _grads(spec, grad, 6, A, batch)
        assert loss_g.item() == pytest.approx(loss.item(), abs=1e-14)
        for name in ref:
            torch.testing.assert_close(got[name], ref[name], rtol=0, atol=1e-10)
    _, ref3 = _grads(spec, "unroll", 6, A, batch, upto=3)  # layer-wise depth works in every mode
    _, got3 = _grads(spec, "checkpoint", 6, A, batch, upto=3)
    for name in ref3:
        torch.testing.assert_close(got3[name], ref3[name], rtol=0, atol=1e-10)


def test_truncated_backpropagates_through_the_last_T_layers_only():
    A, batch = _problem()
    _, ref = _grads("zoo:lista_untied", "unroll", 6, A, batch)
    _, got = _grads("zoo:lista_untied", "truncated:2", 6, A, batch)
    for k in range(6):
        name = f"layers.{k}.W_e"
        if k < 4:  # no graph through the first K - T layers
            assert torch.count_nonzero(got[name]) == 0 and torch.count_nonzero(ref[name]) > 0
        else:
            torch.testing.assert_close(got[name], ref[name], rtol=0, atol=1e-10)


def test_implicit_matches_unrolled_gradient_at_convergence():
    A, batch = _problem(n=60, m=30, batch=8)  # well conditioned: ISTA converges in a few hundred
    _, ref = _grads(ISTA_LEARNED, "unroll", 1000, A, batch)
    model = unroll.compile(ISTA_LEARNED, A=A, dtype=torch.float64, grad="implicit")
    model.loss(batch).backward()
    got = torch.stack([model.step.grad, model.theta.grad])
    want = torch.stack([ref["step"], ref["theta"]])
    rel = ((got - want).norm() / want.norm()).item()
    assert rel <= 1e-3, rel
    info = model._run.info
    assert info["forward_iterations"] < 1000 and info["adjoint_iterations"] < 1000
    # GMRES needs far fewer vector-Jacobian products than the forward needed iterations
    assert info["adjoint_iterations"] < info["forward_iterations"] / 2, info
    with torch.no_grad():  # inference runs the plain unrolled network
        torch.testing.assert_close(model(y=batch["y"]), unroll.compile(ISTA_LEARNED, A=A,
                                   dtype=torch.float64)(y=batch["y"]))


@pytest.mark.parametrize("spec, line, what", [
    ("zoo:lista_untied", 11, "per_layer"),
    (ISTA_LEARNED.replace("x - step *", "x - step * k *"), 11, "layer index k"),
])
def test_implicit_refuses_specs_without_one_shared_map(spec, line, what):
    with pytest.raises(SpecError) as e:
        unroll.compile(spec, K=4, A=np.eye(4)[:3], grad="implicit")
    assert what in e.value.message and e.value.span.line == line
    assert "grad='checkpoint'" in e.value.hint


def test_implicit_refuses_aux_terms_and_per_layer_blocks():
    from unroll.compiler.fixed_point import implicit_problem
    problem = implicit_problem(unroll.check("zoo:ista_net_plus"))
    assert problem is not None and problem.span.line == 13  # learn rho ... per_layer
    shared = unroll.zoo.path("ista_net_plus").read_text().replace("per_layer", "shared")
    problem = implicit_problem(unroll.check(shared))
    assert problem is not None and "aux state" in problem.message
    assert implicit_problem(unroll.check("zoo:lista")) is None


def test_parse_grad_and_bad_modes():
    assert parse_grad("truncated:8") == ("truncated", 8)
    for bad in ("truncated:0", "truncated:x", "backprop"):
        with pytest.raises(ValueError):
            parse_grad(bad)
    A, _ = _problem()
    with pytest.raises(ValueError, match="more than"):
        unroll.compile("zoo:lista", K=4, A=A, grad="truncated:5")
    with pytest.raises(ValueError, match="fast"):
        unroll.compile("zoo:lista", K=4, A=A, grad="checkpoint", fast=True)


def test_checkpoint_covers_a_finally_layer():
    from unroll.data.mri import undersample
    P = (np.random.default_rng(0).random((8, 8)) < 0.3).astype(float)
    P[0, 0] = 1
    grads = {}
    for grad in ("unroll", "checkpoint", "truncated:3"):  # K = 2 iterations + the final layer
        torch.manual_seed(0)
        m = unroll.compile("zoo:admm_net_exact", K=2, dims={"h": 8, "w": 8}, P=P,
                           dtype=torch.float64, grad=grad)
        xs = torch.rand(2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        m.loss({"y": undersample(xs, m.P), "x_star": xs}).backward()
        grads[grad] = {n: p.grad for n, p in m.named_parameters()}
    for grad in ("checkpoint", "truncated:3"):
        for n, g in grads["unroll"].items():
            torch.testing.assert_close(grads[grad][n], g, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gmres_solves_a_nonsymmetric_system_on_lists_of_tensors(dtype):
    """The adjoint solver: (I - M) u = g for a contraction M that is neither symmetric nor
    complex-linear (conj in it, as autograd's products of non-holomorphic maps are), split over
    two tensors, in fewer products than fixed-point iteration needs."""
    from unroll.backends.krylov import gmres
    gen = torch.Generator().manual_seed(0)
    n = 40
    M = torch.randn(n, n, generator=gen, dtype=torch.float64)
    M = 0.97 * M / torch.linalg.matrix_norm(M, 2)

    def apply_m(v):
        w = M.to(v.dtype) @ v
        return w.conj() if v.is_complex() else w

    def matvec(u):
        v = torch.cat([u[0], u[1]])
        out = v - apply_m(v)
        return [out[:15], out[15:]]
    g = torch.randn(n, generator=gen, dtype=dtype)
    u, used, rel = gmres(matvec, [g[:15], g[15:]], [g[:15], g[15:]], tol=1e-10, max_products=200)
    sol = torch.cat(u)
    torch.testing.assert_close(sol - apply_m(sol), g, rtol=0, atol=1e-8)
    assert rel <= 1e-10 and used < 200


def test_layerwise_training_refuses_implicit_before_it_starts(tmp_path, capsys):
    from unroll.cli.main import main
    from unroll.train import TrainConfig, train
    A, batch = _problem()
    model = unroll.compile("zoo:lista", K=4, A=A, grad="implicit")
    with pytest.raises(ValueError, match="layer-wise"):
        train(model, None, TrainConfig(layerwise=True, out_dir=str(tmp_path / "api")), progress=False)
    assert not (tmp_path / "api").exists()  # refused before the run folder or any data
    out = tmp_path / "cli"
    assert main(["train", "zoo:lista", "--layerwise", "--grad", "implicit", "--out", str(out)]) == 2
    assert "--layerwise" in capsys.readouterr().err and not out.exists()


def test_implicit_warns_once_when_short_of_convergence_and_counts_the_rest():
    """K = 5 is far from ISTA's fixed point: the first step warns (forward and adjoint), later
    steps only count, so a training log is not flooded."""
    import warnings
    A, batch = _problem()
    model = unroll.compile(ISTA_LEARNED, K=5, A=A, dtype=torch.float64, grad="implicit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            model.loss(batch).backward()
    texts = [str(w.message) for w in caught if "grad='implicit'" in str(w.message)]
    assert len(texts) == 2 and "forward iteration" in texts[0] and "adjoint" in texts[1]
    assert model._run.unconverged == {"forward": 3, "adjoint": 3}
