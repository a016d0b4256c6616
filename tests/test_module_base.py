"""The generated module = the fixed UnrolledModule base class + a subclass with only __init__ and the
straight-line _run / _loss / _cost; the source is available from the API without building."""
import ast
import subprocess
import sys

import numpy as np
import pytest
import torch

import unroll
from unroll.backends.torch_runtime import RUNTIME

A = np.random.default_rng(0).standard_normal((4, 8))


@pytest.fixture(scope="module")
def lista():
    return unroll.compile("zoo:lista", K=3, A=A, dtype=torch.float64)


def test_the_base_class_is_emitted_verbatim_and_shared(lista):
    src = lista.generated.source
    assert RUNTIME.strip() in src
    other = unroll.generate("zoo:fista", K=2, dims={"n": 4, "m": 8}).source
    assert RUNTIME.strip() in other
    assert type(lista).__mro__[1].__name__ == "UnrolledModuleWithObjective"
    assert type(lista).__mro__[2].__name__ == "UnrolledModule"
    tree = ast.parse(src)
    sub = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LISTA")
    assert {n.name for n in sub.body if isinstance(n, ast.FunctionDef)} == {"__init__", "_run", "_loss",
                                                                             "_cost"}
    for fn in (n for n in ast.walk(sub) if isinstance(n, ast.FunctionDef)):
        assert not any(isinstance(x, (ast.For, ast.While)) for x in ast.walk(fn) if fn.name != "__init__")


def test_forward_binds_inputs_like_the_old_signature(lista):
    y = torch.randn(5, 4, dtype=torch.float64)
    out = lista(y=y)
    assert torch.equal(lista(y), out)
    x, layers = lista(y, True)  # return_layers given by position, as forward(y, return_layers, upto)
    assert torch.equal(x, out) and len(layers) == 3
    assert torch.equal(lista(y, upto=2), layers[1])
    with pytest.raises(TypeError, match=r"forward\(\) missing required argument\(s\): y"):
        lista()
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        lista(y=y, z=y)
    with pytest.raises(TypeError, match="multiple values for argument 'y'"):
        lista(y, y=y)
    with pytest.raises(TypeError, match="takes 3 arguments but 4 were given"):
        lista(y, False, None, 1)
    with pytest.raises(ValueError, match="upto must be a layer from 1 to 3, got 4"):
        lista(y, upto=4)
    obj = lista.objective(y)
    assert obj.shape == (3, 5) and torch.equal(obj, lista.objective(y=y, upto=None))


def test_a_spec_without_loss_or_objective():
    spec = ("algorithm A\ndims n = 3\ninput y : [n]\nlearn w : [n] = 1 per_layer positive\n"
            "state x : [n] = 0\niterate K = 2:\n    x = relu(x + w * y)\noutput x\n")
    m = unroll.compile(spec, dtype=torch.float64)
    assert not hasattr(m, "objective")
    with pytest.raises(NotImplementedError, match="declares no loss"):
        m.loss({"y": torch.ones(1, 3)})
    assert [n for n in m.parameter_values()] == ["w_0", "w_1"]
    assert len(m.layer_parameters(1)) == 1 and m.shared_parameters() == []
    with torch.no_grad():
        m.layers[0].w.fill_(-1.0)
    assert float(m.parameter_values()["w_0"].detach().min()) > 0  # the projection's forward
    m.project_()
    assert float(m.layers[0].w.min()) == pytest.approx(1e-12)


def test_generate_gives_the_source_without_building(tmp_path):
    gen = unroll.generate("zoo:lista", K=2, dims={"n": 4, "m": 8})
    built = unroll.compile("zoo:lista", K=2, A=A).generated
    assert gen.source == built.source and gen.class_name == built.class_name == "LISTA"
    net = unroll.unfold("zoo:lista", K=2, dims={"n": 4, "m": 8})
    assert unroll.generate(net, class_name="Mine").class_name == "Mine"
    out = tmp_path / "m.py"
    subprocess.run([sys.executable, "-m", "unroll.cli.main", "compile", "zoo:lista", "--K", "2",
                    "--dim", "n=4", "--dim", "m=8", "-o", str(out)], check=True, capture_output=True)
    assert out.read_text() == gen.source
