"""The checker: the `Program` of one iteration has the declared names, shapes, tying, constraints
and batchedness, applies the shape rules (I, scalars, broadcasting) and types update equations."""
import pytest

import unroll
from unroll.compiler.check import IDENT
from unroll.compiler.ir import Program
from unroll.errors import ShapeError


@pytest.mark.parametrize("name", unroll.zoo.names())
def test_zoo_checks(name):
    p = unroll.check(f"zoo:{name}")
    assert isinstance(p, Program) and p.K >= 1 and p.outputs
    for o in p.outputs:
        assert o in p.states
    assert set(p.updates) == set(p.states)


def test_lista_program():
    p = unroll.check("zoo:lista")
    assert p.name == "LISTA" and p.K == 16 and p.dims == {"n": None, "m": None}
    assert list(p.operators) == ["A"] and list(p.inputs) == ["y"] and list(p.targets) == ["x_star"]
    assert p.operators["A"].shape == ("n", "m")
    assert {n: (lr.shape, lr.tying, lr.constraint) for n, lr in p.learnables.items()} == {
        "W_e": (("m", "n"), "shared", None), "S": (("m", "m"), "shared", None),
        "theta": (("m",), "shared", "positive")}
    assert p.states["x"].shape == ("m",) and p.states["x"].batched
    assert p.updates["x"].op == "soft" and p.updates["x"].shape == ("m",)
    assert p.loss.op == "mse" and p.loss.shape == ()
    assert set(p.consts) == {"lam", "L"} and p.consts["L"].shape == ()
    assert set(p.costs) == {"f", "g"} and p.costs["g"].expr.shape == ()


def test_fista_scalar_state_is_not_batched():
    p = unroll.check("zoo:fista")
    assert p.states["t"].shape == () and not p.states["t"].batched
    assert p.states["x"].batched and p.states["z"].batched
    assert [n for n, _ in p.equations] == ["x_new", "t_new", "z", "x", "t"]


def test_K_override_and_per_layer_tying():
    p = unroll.check("zoo:lista_untied", K=5)
    assert p.K == 5
    assert all(lr.tying == "per_layer" for lr in p.learnables.values())


BASE = "dims n, m\noperator A : [n, m]\ninput y : [n]\nstate x : [m] = 0\n"


def _update(expr: str, decls: str = ""):
    p = unroll.check(BASE + decls + f"iterate K = 2:\n    x = {expr}\noutput x\n")
    return p.updates["x"]


def test_identity_takes_its_size_from_context():
    v = _update("(I - A' A) x")
    assert v.shape == ("m",)
    p = unroll.check(BASE + "learn S : [m, m] = I - A' A\niterate K = 1:\n    x = S x\noutput x\n")
    assert p.learnables["S"].init.shape == ("m", "m")
    assert IDENT == ("*",)


def test_scalars_broadcast_and_scalar_products():
    assert _update("2 x + 1").shape == ("m",)
    assert _update("(1 / 2) (A' y)").shape == ("m",)
    assert _update("x / sum(x * x)").shape == ("m",)
    assert _update("soft(x, 0.1)").shape == ("m",)


def test_norm_squared_becomes_sqnorm():
    p = unroll.check("zoo:ista")
    f = p.costs["f"].expr
    ops = set()

    def walk(v):
        ops.add(v.op)
        for a in v.args:
            walk(a)
    walk(f)
    assert "sqnorm" in ops and "pow" not in ops


def test_locals_are_visible_to_later_equations_only():
    v = _update("x", decls="")
    assert v.op == "state"
    p = unroll.check(BASE + "iterate K = 1:\n    r = A x - y\n    x = x - A' r\noutput x\n")
    assert [n for n, _ in p.equations] == ["r", "x"]
    with pytest.raises(unroll.SpecError, match="unknown name 'r'"):
        unroll.check(BASE + "iterate K = 1:\n    x = x - A' r\n    r = A x - y\noutput x\n")


def test_states_update_simultaneously_from_start_of_iteration_values():
    p = unroll.check("dims m\ninput y : [m]\nstate a : [m] = 0\nstate b : [m] = y\n"
                     "iterate K = 1:\n    a = b\n    b = a\noutput a\n")
    # `b = a` reads the new a (equations run in order), so b ends as the old b.
    assert p.updates["b"].op == "state" and p.updates["b"].attrs == ("b",)


def test_shape_error_reports_smallest_subexpression():
    with pytest.raises(ShapeError) as info:
        _update("soft(x + A x, 0.1)")  # A x is [n]: the sum, not the product, is wrong
    err = info.value
    assert (err.span.line, err.span.col, err.span.end_col) == (6, 14, 21)
    assert "cannot add [m] and [n]" in err.message
