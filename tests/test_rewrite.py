"""Learnable subexpressions: LISTA written as ISTA plus learnables compiles to lista.unroll."""
import numpy as np
import pytest
import torch

import unroll
from unroll.compiler.symbolic import unicode
from unroll.errors import DerivationError


def test_lista_from_ista_is_lista():
    A = np.random.default_rng(0).standard_normal((12, 20))
    a = unroll.compile("zoo:lista", K=4, A=A)
    b = unroll.compile("zoo:lista_from_ista", K=4, A=A)
    assert [(n, p.shape) for n, p in a.named_parameters()] == \
        [(n, p.shape) for n, p in b.named_parameters()]
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q)  # same initial values
    with torch.no_grad():  # and the same outputs for the same (trained-looking) weights
        for p in a.parameters():
            p.add_(0.01 * torch.randn_like(p))
    b.load_state_dict(a.state_dict())
    y = torch.randn(5, 12)
    assert torch.equal(a(y=y), b(y=y))
    assert unicode(unroll.check("zoo:lista_from_ista").updates["x"]) == "soft(Sx + W_e y, θ)"


def _ista_with(learns: str) -> str:
    src = unroll.check("zoo:lista_from_ista").source
    start = src.index("learn W_e")
    end = src.index("state x")
    return src[:start] + learns + "\n" + src[end:]


def test_partial_rewrite_learns_only_the_threshold():
    p = unroll.check(_ista_with("learn theta : [] = lam / L per_layer positive"))
    assert unicode(p.updates["x"]) == "soft(x − Aᵀ(Ax − y)/L, θ)"


def test_unmatched_learnable_is_an_error_at_its_declaration():
    spec = _ista_with("learn W : [m, m] = 2 * I")
    with pytest.raises(DerivationError) as e:
        unroll.check(spec)
    assert "learn W is not used in the body" in str(e.value)
    assert e.value.span.line == spec.splitlines().index("learn W : [m, m] = 2 * I") + 1
