"""Honest gradients: `check` warns (and `train` refuses without --allow-no-grad) about a learnable
the loss cannot train, naming the op that cuts the path; hard_ste and hard_smooth are the
remedies, with their gradients checked."""
import numpy as np
import pytest
import torch
from torch.func import functional_call

import unroll
from unroll.backends import numpy_backend as nb
from unroll.cli.main import main
from unroll.compiler.gradflow import no_gradient

HEAD = """algorithm T "t"
dims n, m
operator A : [n, m]
input    y : [n]
target   x_star : [m]
learn t : [] = 0.1 per_layer positive
learn mu : [] = 0.2 shared
state x : [m] = 0
iterate K = 3:
"""


def spec(body: str, loss: str = "mse(x, x_star)") -> str:
    return HEAD + "    " + body + "\noutput x\nloss " + loss + "\n"


@pytest.mark.parametrize("body,op,at", [
    ("x = hard(x - mu * A'(A x - y), t)", "hard", "hard("),
    ("x = x - mu * A'(A x - y) + 0.1 * sign(x - t)", "sign", "sign("),
    ("x = x - mu * ||x - t||_0 * A'(A x - y)", "norm0", "||x - t||_0"),
])
def test_cutting_ops_are_named_with_their_location(body, op, at):
    col = body.index(at) + 5
    program = unroll.check(spec(body))
    found = no_gradient(program)
    assert [f.name for f in found] == ["t"] and found[0].cut.op == op
    text = str(found[0].warning(program))
    assert f":10:{col}: warning: learn t gets no gradient" in text and op in text
    assert "hint:" in text


@pytest.mark.parametrize("body", [
    "x = hard_ste(x - mu * A'(A x - y), t)",
    "x = hard_smooth(x - mu * A'(A x - y), t, 0.01)",
    "x = soft(x - mu * A'(A x - y), t)",
    "x = hard(x - mu * A'(A x - y), 0.1) * t",      # t reaches the loss through the product
])
def test_remedies_and_ordinary_uses_are_silent(body):
    assert no_gradient(unroll.check(spec(body))) == []


def test_unused_in_the_loss_is_reported():
    program = unroll.check(spec("x = x - mu * A'(A x - y)\n    z = t * x"))
    found = no_gradient(program)
    assert [f.name for f in found] == ["t"] and found[0].cut is None
    assert "the loss does not depend on it" in str(found[0].warning(program))


def test_a_state_through_a_cut_carries_no_gradient():
    # w is learned into state s, but s reaches x only through sign(s): no gradient for w
    text = HEAD.replace("state x : [m] = 0", "learn w : [m] = 1\nstate s : [m] = 0\nstate x : [m] = 0") + \
        "    s = s + w\n    x = x - mu * sign(s) * (A'(A x - y)) + t * x\noutput x\nloss mse(x, x_star)\n"
    found = no_gradient(unroll.check(text))
    assert [(f.name, f.cut.op) for f in found] == [("w", "sign")]


def test_check_warns_and_train_refuses_unless_allowed(tmp_path, capsys):
    path = tmp_path / "iht.unroll"
    path.write_text(spec("x = hard(x - mu * A'(A x - y), t)"))
    assert main(["check", str(path)]) == 0
    _, err = capsys.readouterr()
    assert "warning: learn t gets no gradient" in err and "hard_ste" in err
    args = ["train", str(path), "--steps", "2", "--eval-every", "2", "--batch-size", "4",
            "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--quiet"]
    assert main(args) == 2
    _, err = capsys.readouterr()
    assert "error: learn t gets no gradient" in err and "--allow-no-grad" in err
    assert "Traceback" not in err
    assert main(args + ["--allow-no-grad"]) == 0
    _, err = capsys.readouterr()
    assert "warning: learn t" in err


def _model(op: str):
    text = spec(f"x = {op}(x - mu * A'(A x - y), t{', 0.05' if op == 'hard_smooth' else ''})")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 10)) / 2
    return text, A, unroll.compile(text, A=A, dtype=torch.float64)


def test_hard_smooth_gradcheck_in_input_and_parameters():
    _, A, m = _model("hard_smooth")
    y = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in m.parameters())

    def f(y, *ps):
        return functional_call(m, dict(zip(names, ps)), kwargs={"y": y})
    assert torch.autograd.gradcheck(f, (y, *params))


def test_hard_ste_is_hard_forward_and_soft_backward():
    _, A, ste = _model("hard_ste")
    hard = unroll.compile(spec("x = hard(x - mu * A'(A x - y), t)"), A=A, dtype=torch.float64)
    soft = unroll.compile(spec("x = soft(x - mu * A'(A x - y), t)"), A=A, dtype=torch.float64)
    y = torch.randn(4, 6, dtype=torch.float64)
    torch.testing.assert_close(ste(y=y), hard(y=y), rtol=0, atol=0)
    # one layer: the gradient is exactly soft thresholding's, at the same point
    v = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    ns = type(ste).forward.__globals__  # the generated module's helpers
    w = torch.randn(5, 10, dtype=torch.float64)
    g_ste = torch.autograd.grad((ns["hard_ste"](v, t) * w).sum(), (v, t))
    g_soft = torch.autograd.grad((ns["soft"](v, t) * w).sum(), (v, t))
    assert all(torch.equal(a, b) for a, b in zip(g_ste, g_soft)) and g_ste[1] != 0
    # and through the whole network the threshold now gets a gradient
    x_star = torch.randn(4, 10, dtype=torch.float64)
    ste.loss({"y": y, "x_star": x_star}).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in ste.named_parameters())


@pytest.mark.parametrize("op", ["hard_ste", "hard_smooth"])
def test_torch_equals_numpy_oracle(op):
    text, A, m = _model(op)
    y = np.random.default_rng(1).standard_normal((3, 6))
    u = unroll.unfold(text, A=A)
    pv = {k: v.detach().numpy() for k, v in m.parameter_values().items()}
    out = nb.evaluate(u, {"A": A}, {"y": y}, params=pv)["output"]
    assert np.abs(out - m(y=torch.tensor(y)).detach().numpy()).max() < 1e-12


@pytest.mark.parametrize("loss", ["sum_k(mse(x[k], x_star))", "mse(x[2], x_star)",
                                  "sum_k(log(k + 1) * mse(x[k], x_star)) + 0 * mse(z, x_star)"])
def test_a_loss_over_layers_trains_what_the_states_read(loss):
    """`x[k]` in the loss reaches x's updates and so t and mu; z's coefficient only when z is
    read (here as 0 * ..., still a path: its gradient is zero by value, not by an op)."""
    body = "x = x - mu * A'(A x - y) * t\n    z = z + w * x"
    text = (HEAD.replace("state x : [m] = 0", "state x : [m] = 0\nstate z : [m] = 0\n"
                         "learn w : [] = 0.3 shared") + "    " + body + "\noutput x\nloss " + loss + "\n")
    found = [f.name for f in no_gradient(unroll.check(text))]
    assert found == ([] if "z" in loss else ["w"])
