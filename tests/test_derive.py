"""grad(f, x) derived by the compiler agrees with torch.autograd; non-smooth terms are errors."""
import numpy as np
import pytest
import torch

import unroll
from unroll.compiler.symbolic import latex, unicode
from unroll.errors import DerivationError

HEAD = """algorithm g
dims n, m
operator A : [n, m]
operator D : [m, m]
input y : [n]
input z : [m]
input x0 : [m]
const rho = 0.7
const c = 1.5
"""

T = torch
# (cost text, the same cost in torch of (x, A, D, y, z); grad term)
FORMS = [
    ("1/2 * ||A x - y||^2", lambda x, A, D, y, z: 0.5 * ((x @ A.T - y) ** 2).sum(-1), "f"),
    ("1/2 * ||A x - y||^2 + rho/2 * ||D x - z||^2",
     lambda x, A, D, y, z: 0.5 * ((x @ A.T - y) ** 2).sum(-1) + 0.35 * ((x @ D.T - z) ** 2).sum(-1),
     "f"),
    ("||x||^2", lambda x, A, D, y, z: (x ** 2).sum(-1), "f"),
    ("sum(exp(x))", lambda x, A, D, y, z: T.exp(x).sum(-1), "f"),
    ("sum(log(1 + exp(A x)))", lambda x, A, D, y, z: T.log(1 + T.exp(x @ A.T)).sum(-1), "f"),
    ("sum(softplus(A x) - y * (A x))",
     lambda x, A, D, y, z: (T.nn.functional.softplus(x @ A.T) - y * (x @ A.T)).sum(-1), "f"),
    ("sum(tanh(D x) * z)", lambda x, A, D, y, z: (T.tanh(x @ D.T) * z).sum(-1), "f"),
    ("sum(sigmoid(x) * x)", lambda x, A, D, y, z: (T.sigmoid(x) * x).sum(-1), "f"),
    ("mean((A x - y)^2)", lambda x, A, D, y, z: ((x @ A.T - y) ** 2).mean(-1), "f"),
    ("sum(sqrt(1 + x^2))", lambda x, A, D, y, z: T.sqrt(1 + x ** 2).sum(-1), "f"),
    ("sum((A x - y) / c) + ||D' x||^2 / 4",
     lambda x, A, D, y, z: ((x @ A.T - y) / 1.5).sum(-1) + ((x @ D) ** 2).sum(-1) / 4, "f"),
    ("1/2 * ||x - z||^2 * c", lambda x, A, D, y, z: 0.75 * ((x - z) ** 2).sum(-1), "f"),
    ("sum(x^3) / 3", lambda x, A, D, y, z: (x ** 3).sum(-1) / 3, "f"),
]


def _grad_spec(cost: str, call: str = "grad(f, x)", extra: str = "") -> str:
    return HEAD + f"cost f(x) = {cost}\n{extra}state x : [m] = x0\niterate K = 1:\n" \
                  f"    x = {call}\noutput x\n"


def _data(seed=0):
    rng = np.random.default_rng(seed)
    n, m, B = 6, 5, 3
    return dict(A=rng.standard_normal((n, m)), D=rng.standard_normal((m, m))), dict(
        y=rng.standard_normal((B, n)), z=rng.standard_normal((B, m)),
        x0=rng.standard_normal((B, m)))


@pytest.mark.parametrize("cost,fn,_", FORMS, ids=[f[0] for f in FORMS])
def test_grad_matches_autograd(cost, fn, _):
    ops, ins = _data()
    model = unroll.compile(_grad_spec(cost), dtype=torch.float64, **ops)
    t = {k: torch.tensor(v) for k, v in {**ops, **ins}.items()}
    x = t["x0"].clone().requires_grad_(True)
    want, = torch.autograd.grad(fn(x, t["A"], t["D"], t["y"], t["z"]).sum(), x)
    got = model(y=t["y"], z=t["z"], x0=t["x0"])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_grad_of_sum_of_terms_and_its_printed_form():
    spec = HEAD + "cost f(x) = 1/2 * ||A x - y||^2\ncost h(x) = 1/2 * ||D x - z||^2\n" \
                  "state x : [m] = x0\niterate K = 1:\n    x = grad(f + rho * h, x)\noutput x\n"
    p = unroll.check(spec)
    text = unicode(p.updates["x"])
    assert text == "0.7 Dᵀ(Dx − z) + Aᵀ(Ax − y)" or text == "Aᵀ(Ax − y) + 0.7 Dᵀ(Dx − z)", text
    assert "A^{T}" in latex(p.updates["x"])
    ops, ins = _data(1)
    got = unroll.compile(spec, dtype=torch.float64, **ops)(**{k: torch.tensor(v) for k, v in
                                                             ins.items()})
    A, D = ops["A"], ops["D"]
    want = (ins["x0"] @ A.T - ins["y"]) @ A + 0.7 * (ins["x0"] @ D.T - ins["z"]) @ D
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)


def test_gradient_step_prints_like_the_hand_written_one():
    p = unroll.check("zoo:ista_grad_prox")
    assert unicode(p.updates["x"]) == "soft(x − Aᵀ(Ax − y)/L, 0.1/L)"
    assert unicode(p.costs["f"].expr) == "‖Ax − y‖²/2"


@pytest.mark.parametrize("cost,what", [("lam * ||x||_1", "||.||_1"), ("sum(abs(x))", "abs"),
                                       ("||A x - y||", "||.|| (not squared)")])
def test_non_smooth_term_is_a_derivation_error(cost, what):
    spec = HEAD + "const lam = 0.1\n" + f"cost g(x) = {cost}\nstate x : [m] = x0\niterate K = 1:\n" \
                                         "    x = x - grad(g, x)\noutput x\n"
    with pytest.raises(DerivationError) as e:
        unroll.check(spec)
    assert "cost g is not differentiable in x" in str(e.value) and what in str(e.value)
    assert e.value.span.line == spec.count("\n") - 1  # the line of the call
    assert "prox(g" in str(e.value)


def test_grad_of_a_non_cost_is_an_error():
    with pytest.raises(DerivationError, match="'y' is not a cost term"):
        unroll.check(_grad_spec("||x||^2", "grad(y, x)"))
