"""Spec names never collide with the generated module's own names (bad-input probe F3).

Every identifier in the scope of generated modules (module globals, class attributes, locals and
arguments of the generated methods) is either made from the spec (graph node names, spec names)
or reserved: spec names may not take it, or are renamed around it. Then every such name is tried
in every role of a small spec: it is refused with a located error, or it works and computes the
same network as the spec with the usual names.
"""
from __future__ import annotations

import ast as pyast
import re

import numpy as np
import pytest
import torch

import unroll
from unroll.backends.torch_codegen import attr_name, generate
from unroll.compiler.graph import RESERVED
from unroll.compiler.names import reserved_reason
from unroll.errors import NameError_, SpecError

# Specs whose generated modules cover the code generator's features: shared and per-layer
# learnables, constraints, aux terms, an objective, blocks, filter banks and solves.
SCOPE_SPECS = ["lista", "lista_cp", "lista_untied", "ista_grad_prox", "admm_lasso", "ista_net",
               "fista_net", "tv_admm_mri"]
SIZES = {"n": 4, "m": 6, "M": 5, "N": 1089, "h": 8, "w": 8}


def _unfolded(name: str):
    program = unroll.check(f"zoo:{name}")
    dims = {d: v or SIZES.get(d, 8) for d, v in program.dims.items()}
    return unroll.unfold(program, K=2, dims=dims)


def _scopes(source: str) -> tuple[set[str], set[str], set[str]]:
    """(module-level names, class attribute names, names local to the class's methods)."""
    tree = pyast.parse(source)
    module, attrs, local = set(), set(), set()
    for node in tree.body:
        if isinstance(node, (pyast.Import, pyast.ImportFrom)):
            module.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (pyast.FunctionDef, pyast.ClassDef)):
            module.add(node.name)
        if isinstance(node, pyast.ClassDef):
            for item in node.body:
                if isinstance(item, pyast.FunctionDef):
                    attrs.add(item.name)
                    own = {n.id for c in pyast.walk(item) if isinstance(c, pyast.comprehension)
                           for n in pyast.walk(c.target) if isinstance(n, pyast.Name)}
                    for sub in pyast.walk(item):  # comprehension variables have their own scope
                        if isinstance(sub, pyast.Name) and sub.id not in own:
                            local.add(sub.id)
                        elif isinstance(sub, pyast.arg):
                            local.add(sub.arg)
                        elif (isinstance(sub, pyast.Attribute) and isinstance(sub.value, pyast.Name)
                              and sub.value.id == "self"):
                            attrs.add(sub.attr)
                elif isinstance(item, pyast.Assign):
                    attrs.update(t.id for t in item.targets if isinstance(t, pyast.Name))
    return module, attrs, local


def _spec_made(u) -> tuple[set[str], set[str]]:
    """(locals made from the spec: graph node names and inputs; attributes made from spec names)."""
    graphs = [g for g in (u.build, u.graph, u.loss_graph, u.objective_graph) if g is not None]
    p = u.program
    names = {n for g in graphs for n in g} | set(p.inputs)
    spec_names = set(p.operators) | set(p.consts) | set(p.learnables) | set(p.blocks)
    return names, {attr_name(n) for n in spec_names}


def _internal_names() -> tuple[set[str], set[str], set[str]]:
    module, attrs, local = set(), set(), set()
    for name in SCOPE_SPECS:
        u = _unfolded(name)
        m, a, l = _scopes(generate(u).source)
        made_local, made_attrs = _spec_made(u)
        module |= m
        attrs |= a - made_attrs
        local |= l - made_local - m
    return module, attrs, local


MODULE_NAMES, ATTR_NAMES, LOCAL_NAMES = _internal_names()


def _renamed_attr(name: str) -> bool:
    return attr_name(name) != name


def test_module_globals_are_reserved():
    """A spec name that equals a helper or an import would shadow it inside the methods."""
    bad = sorted(n for n in MODULE_NAMES
                 if not (reserved_reason(n, "const") or n in RESERVED or n[:1].isupper()))
    assert not bad, f"module-level names a spec could take: {bad}"


def test_method_locals_are_reserved():
    """Locals and arguments of the generated methods that do not come from the spec."""
    language = {"k", "I"}  # the layer index and the identity: never a declared name
    bad = sorted(n for n in LOCAL_NAMES if not (reserved_reason(n, "const") or n in RESERVED
                                                   or n in language))
    assert not bad, f"generated locals a spec could take: {bad}"


def test_class_attributes_are_renamed_around():
    """Class attributes and methods (and torch.nn.Module's) are never a spec name's attribute."""
    needed = ATTR_NAMES | set(dir(torch.nn.Module)) | set(vars(torch.nn.Module())) | {
        "generated", "unfolded", "objective", "forward", "training"}
    bad = sorted(n for n in needed if not (reserved_reason(n, "const") or _renamed_attr(n)))
    assert not bad, f"attributes a spec name would overwrite: {bad}"


TEMPLATE = """algorithm T
dims n, m
operator A : [n, m]
input y : [n]
target x_star : [m]
const lam = 0.1
const L = norm2(A)^2
cost f(x) = 1/2 * ||A x - y||^2
learn S : [m, m] = I - A' A / L shared
learn theta : [m] = lam / L per_layer positive
state x : [m] = 0
iterate K = 2:
    x = soft(x - A'(A x - y) / L + S x - x, theta)
    aux r = sum(x)
output x
loss mse(x, x_star) + 0 * r
"""
ROLES = {"dim": "n", "operator": "A", "input": "y", "target": "x_star", "const": "lam",
         "learn": "S", "learn_per_layer": "theta", "state": "x", "cost": "f", "aux": "r", "algorithm": "T"}
_A = np.random.default_rng(0).standard_normal((4, 6))
_Y = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
_X = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)


def _outcome(text: str, names: dict[str, str]):
    """(output, loss) of the spec, or the SpecError it raises."""
    try:  # checked first: an operator named like compile's own arguments never reaches compile
        model = unroll.compile(unroll.check(text), K=2, **{names["A"]: _A})
    except SpecError as e:
        return e
    out = model(**{names["y"]: torch.as_tensor(_Y)})
    loss = model.loss({names["y"]: torch.as_tensor(_Y), names["x_star"]: torch.as_tensor(_X)})
    assert loss.requires_grad
    return out.detach(), float(loss)


REFERENCE = _outcome(TEMPLATE, {"A": "A", "y": "y", "x_star": "x_star"})
SCOPE = sorted(MODULE_NAMES | ATTR_NAMES | LOCAL_NAMES | {"__debug__", "__class__"})


def _substituted(role: str, name: str) -> tuple[str, dict[str, str]]:
    old = ROLES[role]
    text = re.sub(rf"\b{old}\b", name, TEMPLATE) if role != "learn_per_layer" else \
        TEMPLATE.replace("theta", name)
    return text, {"A": name if old == "A" else "A", "y": name if old == "y" else "y",
                  "x_star": name if old == "x_star" else "x_star"}


@pytest.mark.parametrize("role", list(ROLES))
def test_every_scope_name_in_every_role(role):
    """Refused with a name error at the declaration, or the very same network."""
    taken = set(re.findall(r"[A-Za-z_]\w*", TEMPLATE))
    tried = 0
    for name in SCOPE:
        if name in taken or not re.fullmatch(r"[A-Za-z_]\w*", name):
            continue
        text, names = _substituted(role, name)
        got = _outcome(text, names)
        tried += 1
        if isinstance(got, SpecError):
            assert isinstance(got, NameError_), f"{role} {name}: {got}"
            assert got.span is not None and got.span.line > 0, f"{role} {name}: {got}"
            continue
        out, loss = got
        assert torch.allclose(out, REFERENCE[0], atol=1e-6), f"{role} {name}: different output"
        assert loss == pytest.approx(REFERENCE[1], rel=1e-6), f"{role} {name}: different loss"
    assert tried > 50


def test_target_named_like_a_local_is_refused_not_silently_wrong():
    """The probe's silent case: a target `_states` made the loss compare with its own state."""
    text = TEMPLATE.replace("x_star", "_states")
    with pytest.raises(NameError_, match="reserved"):
        unroll.check(text)
