"""The generated `model.py`: a standalone file that needs only torch, loads the compiled module's
weights and reproduces its outputs; its line map points back at the spec."""
import ast
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import unroll
from test_zoo import zoo_problem

K = 3
A = np.random.default_rng(0).standard_normal((20, 40))
Y = np.random.default_rng(1).standard_normal((4, 20))


def _compile(name: str):
    return unroll.compile(f"zoo:{name}", K=K, dtype=torch.float64, A=A)


def _import(path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _imports(source: str) -> set[str]:
    """Top-level package names of every import statement in `source`."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", unroll.zoo.names())
def test_generated_file_reproduces_the_module(name, tmp_path):
    _, dims, ops, inputs, targets = zoo_problem(name)
    model = unroll.compile(f"zoo:{name}", K=K, dims=dims, dtype=torch.float64, **ops)
    path = tmp_path / f"{name}_model.py"
    path.write_text(model.generated.source)
    mod = _import(path, f"generated_{name}")
    cls = getattr(mod, model.generated.class_name)
    clone = cls(*[torch.as_tensor(ops[o]) for o in model.operator_names], dtype=torch.float64)
    # Perturb first so the check does not pass merely because both start from the same init.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    clone.load_state_dict(model.state_dict())
    x = {k: torch.as_tensor(v) for k, v in inputs.items()}
    torch.testing.assert_close(clone(**x), model(**x), rtol=0, atol=0)
    _, la = clone(**x, return_layers=True)
    _, lb = model(**x, return_layers=True)
    assert len(la) == len(lb) == model.unfolded.K  # K, plus one with `finally`
    for a, b in zip(la, lb):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    if model.unfolded.loss_graph is not None:
        batch = {**x, **{k: torch.as_tensor(v) for k, v in targets.items()}}
        torch.testing.assert_close(clone.loss(batch), model.loss(batch), rtol=0, atol=0)
    assert clone.K == K and clone.output_names == model.output_names


@pytest.mark.parametrize("name", unroll.zoo.names())
def test_generated_file_imports_only_torch(name):
    _, dims, ops, _, _ = zoo_problem(name)
    src = unroll.compile(f"zoo:{name}", K=K, dims=dims, **ops).generated.source
    assert _imports(src) == {"torch"}
    import_lines = [ln.strip() for ln in src.splitlines() if ln.lstrip().startswith(("import ", "from "))]
    assert import_lines and all(ln.split()[1].split(".")[0] == "torch" for ln in import_lines)
    assert "unroll" not in _imports(src)


def test_generated_file_runs_in_a_fresh_interpreter_without_unroll(tmp_path):
    model = _compile("lista")
    (tmp_path / "model.py").write_text(model.generated.source)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "y.npy", Y)
    script = (
        "import sys, json; sys.modules['unroll'] = None\n"  # importing unroll would now fail
        "import numpy as np, torch\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import model\n"
        f"m = model.{model.generated.class_name}(torch.as_tensor(np.load('A.npy')), dtype=torch.float64)\n"
        "m.load_state_dict(torch.load('weights.pt', weights_only=True))\n"
        "out = m(y=torch.as_tensor(np.load('y.npy')))\n"
        "print(json.dumps(out.tolist()))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    got = np.array(json.loads(res.stdout))
    np.testing.assert_allclose(got, model(y=torch.as_tensor(Y)).detach().numpy(), rtol=0, atol=1e-15)


def test_line_map_points_back_at_the_spec():
    model = _compile("lista")
    gen = model.generated
    lines = gen.source.splitlines()
    spec_lines = unroll.zoo.path("lista").read_text().splitlines()
    soft_line = next(i for i, ln in enumerate(spec_lines, 1) if "soft(" in ln)
    hits = [(ln, node, span) for ln, (node, span) in gen.line_map.items() if "soft(" in lines[ln - 1]]
    assert len(hits) == K
    for ln, node, span in hits:
        assert span.startswith(f"lista.unroll:{soft_line}:")
        assert node in model.unfolded.graph.nx
        assert lines[ln - 1].strip().startswith(f"{node} =")


def test_generated_source_is_valid_python_with_docstrings():
    src = _compile("fista").generated.source
    tree = ast.parse(src)
    model = _compile("fista")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef)
               and n.name == model.generated.class_name)  # helpers may define classes too
    assert ast.get_docstring(cls)
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    assert methods == {"__init__", "_run", "_loss", "_cost"}  # the rest is the fixed base class
    base = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "UnrolledModule")
    assert ast.get_docstring(base)
    assert {"forward", "loss", "parameter_values", "project_", "layer_parameters",
            "shared_parameters"} <= {n.name for n in base.body if isinstance(n, ast.FunctionDef)}
