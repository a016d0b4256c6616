"""Sizes the checker cannot compare (probe finding F4): `vec` of a value whose sizes come from
`--dim` / `dims=` has the symbolic entry count (`4*G`), and where two shapes may be equal only once
the dims are bound (`[m]` and `[4*G]`, `[m]` and `[64]`) unfold compares them and raises a located
ShapeError when they differ; two different dim names (`[m]`, `[n]`) stay an error at check time."""
import numpy as np
import pytest
import torch

import unroll
from unroll.compiler.sizes import may_equal, shapes_may_match, size_add, size_mul
from unroll.errors import ShapeError

VEC = """algorithm VR "vec of a reshape with dims"
dims m, G{fix}
input    y : [m]
state x : [m] = 0
iterate K = 1:
    x = vec(reshape(y, [G, 4]))
output x
"""

STATE = """algorithm VS "a state fed from a [G, 4] input"
dims m, G = 16
input    z : [G, 4]
state x : [m] = 0
iterate K = 2:
    x = vec(z) + 0.5 * x
output x
"""


def test_may_equal_decides_what_it_can():
    assert may_equal("m", "m") and may_equal(size_mul(4, "G"), size_mul("G", 4))
    assert not may_equal(3, 4) and not may_equal("m", "n") and not may_equal(size_add("m", 1), "m")
    assert may_equal("m", 64) and may_equal("m", size_mul(4, "G"))  # only the bound dims tell
    assert shapes_may_match(("m", 4), (64, 4)) and not shapes_may_match(("m",), ("m", 1))


@pytest.mark.parametrize("how", ["dims", "spec"])
def test_vec_of_a_dim_sized_value_is_its_entry_count(how):
    spec = VEC.format(fix=" = 16" if how == "spec" else "")
    dims = {"m": 64} if how == "spec" else {"m": 64, "G": 16}
    prog = unroll.check(spec)
    assert prog.updates["x"].shape in ((64,), (size_mul(4, "G"),))
    model = unroll.compile(spec, dims=dims, dtype=torch.float64)
    y = torch.randn(3, 64, dtype=torch.float64)
    assert torch.equal(model(y), y)


def test_sizes_that_differ_once_bound_are_located_errors_at_unfold():
    with pytest.raises(ShapeError, match=r"cannot reshape \[64\] to \[15, 4\]") as e:
        unroll.compile(VEC.format(fix=""), dims={"m": 64, "G": 15})
    assert (e.value.span.line, e.value.span.col) == (6, 13)
    unroll.compile(STATE, dims={"m": 64})
    with pytest.raises(ShapeError, match=r"cannot add \[64\] and \[60\] with G=16, m=60") as e:
        unroll.compile(STATE, dims={"m": 60})
    assert (e.value.span.line, e.value.span.col) == (6, 9)
    only = STATE.replace("vec(z) + 0.5 * x", "vec(z)")
    with pytest.raises(ShapeError, match=r"state x is \[60\] but its value is \[64\]") as e:
        unroll.compile(only, dims={"m": 60})
    assert e.value.span.line == 6
    init = STATE.replace("state x : [m] = 0", "state x : [m] = vec(z)")
    with pytest.raises(ShapeError, match=r"state x is \[60\] but its value is \[64\]") as e:
        unroll.compile(init, dims={"m": 60})
    assert e.value.span.line == 4


def test_products_compare_once_bound():
    spec = """algorithm VM "t"
dims n, m, G
operator A : [n, m]
input    z : [G, 4]
state x : [n] = 0
iterate K = 1:
    x = A vec(z)
output x
"""
    A = np.random.default_rng(0).standard_normal((3, 8))
    model = unroll.compile(spec, dims={"G": 2}, A=A, dtype=torch.float64)
    z = torch.randn(5, 2, 4, dtype=torch.float64)
    assert torch.allclose(model(z), z.reshape(5, 8) @ torch.as_tensor(A).T)
    with pytest.raises(ShapeError, match=r"cannot multiply \[3, 8\] by \[12\]"):
        unroll.compile(spec, dims={"G": 3}, A=A)


def test_different_dim_names_stay_a_check_error():
    spec = """algorithm V4 "t"
dims m, n
input    y : [n]
state x : [m] = 0
iterate K = 2:
    x = y + x
output x
"""
    with pytest.raises(ShapeError, match=r"cannot add \[n\] and \[m\]"):
        unroll.check(spec)
    with pytest.raises(ShapeError, match=r"state x is \[m\] but the new value is \[n\]"):
        unroll.check(spec.replace("y + x", "y"))


def test_op_rules_defer_too():
    spec = """algorithm VI "t"
dims m
operator H : [m, 8]
input y : [8]
const Hi = inv(H)
state x : [8] = 0
iterate K = 1:
    x = Hi y
output x
"""
    H = np.eye(8) * 2.0
    model = unroll.compile(spec, H=H, dtype=torch.float64)
    y = torch.randn(2, 8, dtype=torch.float64)
    assert torch.allclose(model(y), y / 2)
    with pytest.raises(ShapeError, match=r"inv needs a fixed square matrix.*with m=7") as e:
        unroll.compile(spec, H=np.ones((7, 8)))
    assert e.value.span.line == 5
    with pytest.raises(ShapeError, match="inv needs a fixed square matrix"):
        unroll.check(spec.replace("[m, 8]", "[m, n]").replace("dims m", "dims m, n"))
