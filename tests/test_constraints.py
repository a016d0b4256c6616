"""Projected constraints (`positive`, `unit`): stored as their values, used clamped with an identity
gradient, clamped back by `project_()` (which the trainer calls after each step); the numpy oracle
gives the same values. The softplus/sigmoid forms stay available by name."""
import numpy as np
import pytest
import torch

import unroll
from unroll.backends.numpy_backend import constrained, evaluate, project
from unroll.errors import SpecError

SPEC = """dims m
input y : [m]
learn t : [m] = 0.5 {pos}
learn u : [] = 0.25 {unit} per_layer
state x : [m] = 0
iterate K = 3:
    x = u * soft(y + x, t) + (1 - u) * x
output x
"""


def _model(pos="positive", unit="unit"):
    return unroll.compile(SPEC.format(pos=pos, unit=unit), dims={"m": 4}, dtype=torch.float64)


def test_projected_parameters_store_their_values_and_train_with_unit_gradient():
    model = _model()
    torch.testing.assert_close(model.t.detach(), torch.full((4,), 0.5, dtype=torch.float64))
    assert model.layers[1].u.item() == 0.25
    y = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # d out / d t equals the gradient of the same network with t a free parameter.
    free = _model("", "per_layer")
    model(y=y).sum().backward()
    free(y=y).sum().backward()
    torch.testing.assert_close(model.t.grad, free.t.grad, rtol=0, atol=1e-14)
    torch.testing.assert_close(model.layers[2].u.grad, free.layers[2].u.grad, rtol=0, atol=1e-14)


def test_projection_clamps_and_the_forward_is_always_feasible():
    model = _model()
    with torch.no_grad():
        model.t.copy_(torch.tensor([-1.0, 0.0, 0.3, 2.0], dtype=torch.float64))
        model.layers[0].u.fill_(1.5)
        model.layers[1].u.fill_(-0.5)
    raw = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    values = model.parameter_values()
    # the forward clamps even before projecting, and agrees with the numpy oracle
    np.testing.assert_allclose(values["t"].detach().numpy(), constrained("positive", raw["t"]))
    np.testing.assert_allclose(values["u_0"].detach().numpy(), constrained("unit", raw["layers.0.u"]))
    assert (values["t"] > 0).all() and 0 < values["u_0"] < 1 and 0 < values["u_1"] < 1
    y = np.random.default_rng(1).standard_normal((3, 4))
    ref = evaluate(model.unfolded, {}, {"y": y}, params={k: v.detach().numpy() for k, v in values.items()})
    np.testing.assert_allclose(model(y=torch.as_tensor(y)).detach().numpy(), ref["output"], atol=1e-12)
    assert model.project_() is model
    np.testing.assert_array_equal(model.t.detach().numpy(), project("positive", raw["t"]))
    np.testing.assert_array_equal(model.layers[1].u.detach().numpy(), project("unit", raw["layers.1.u"]))
    assert model.t[2].item() == 0.3 and model.t[0].item() > 0


def test_softplus_forms_are_reparametrisations():
    model = _model("positive(softplus)", "unit(sigmoid)")
    with torch.no_grad():
        model.t.fill_(-50.0)
    assert (model.parameter_values()["t"] > 0).all()
    before = model.t.detach().clone()
    model.project_()  # nothing to project: the reparametrisation is always feasible
    torch.testing.assert_close(model.t.detach(), before)
    np.testing.assert_allclose(model.parameter_values()["t"].detach().numpy(),
                               constrained("positive(softplus)", before.numpy()))


def test_trainer_projects_after_each_step(tmp_path):
    from unroll.train import TrainConfig, train

    class Task:
        def sample(self, b, gen):
            y = torch.randn(b, 4, generator=gen)
            return {"y": y, "x_star": -5 * torch.ones(b, 4)}  # pulls t below zero

        def test_set(self):
            return self.sample(8, torch.Generator().manual_seed(9))
    text = SPEC.format(pos="positive", unit="unit") + "target x_star : [m]\nloss mse(x, x_star)\n"
    model = unroll.compile(text, dims={"m": 4})
    train(model, Task(), TrainConfig(lr=0.5, steps=20, eval_every=10, out_dir=str(tmp_path)),
          progress=False)
    assert (model.t > 0).all() and all(0 < layer.u.item() < 1 for layer in model.layers)


def test_standalone_module_has_project(tmp_path):
    model = _model()
    path = tmp_path / "model.py"
    path.write_text(model.generated.source)
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)  # our generated file, in a test
    standalone = ns[model.generated.class_name](dtype=torch.float64)
    with torch.no_grad():
        standalone.t.fill_(-3.0)
    standalone.project_()
    assert (standalone.t > 0).all()


@pytest.mark.parametrize("mod", ["positive(relu)", "shared(softplus)"])
def test_unknown_parametrisation_is_a_located_error(mod):
    with pytest.raises(SpecError) as e:
        unroll.check(SPEC.format(pos=mod, unit="unit"))
    assert "unknown parametrisation" in e.value.message and e.value.span.line == 3


@pytest.mark.parametrize("init, constraint, inside", [("-1", "positive", "(0, inf)"),
                                                      ("1", "unit", "(0, 1)"),
                                                      ("0", "unit", "(0, 1)")])
def test_check_rejects_a_number_init_outside_its_constraint(init, constraint, inside):
    """`unroll check` reports it at the init, as compile does, without sizes or operators."""
    text = (f"dims m\ninput y : [m]\nlearn t : [] = {init} per_layer {constraint}\n"
            "state x : [m] = 0\niterate K = 2:\n    x = x + t * y\noutput x\n")
    with pytest.raises(SpecError) as info:
        unroll.check(text)
    msg = str(info.value)
    assert "<spec>:3:16: " in msg and f"learn t is {constraint} but its initial value" in msg
    assert inside in msg
