"""The training loop: resume is bit-identical, divergence keeps the last good checkpoint,
checkpoints load with weights_only, layer-wise stages and the time budget behave."""
import json

import pytest
import torch

from unroll.data import SparseCodingTask, gaussian_dictionary
from unroll.train import (
    TrainConfig,
    TrainingDiverged,
    evaluate_layers,
    load_checkpoint,
    plan_stages,
    save_checkpoint,
    train,
)
from lista_standin import TinyLISTA

A = gaussian_dictionary(20, 40, seed=0)


def _task():
    return SparseCodingTask(A, p=0.1, n_test=200, seed=1)


def _cfg(tmp_path, name, **kw):
    base = dict(lr=1e-3, batch_size=16, steps=40, eval_every=10, checkpoint_every=10, out_dir=str(tmp_path / name))
    base.update(kw)
    return TrainConfig(**base)


class Crash(Exception):
    pass


class FaultyTask:
    """Wraps a task; from sample call number ``at`` on, crashes or returns NaN measurements."""

    def __init__(self, inner, at, mode):
        self.inner, self.at, self.mode, self.calls = inner, at, mode, 0

    def bind(self, model):
        self.inner = self.inner.bind(model)
        return self

    def test_set(self):
        return self.inner.test_set()

    def sample(self, batch, generator):
        self.calls += 1
        out = self.inner.sample(batch, generator)
        if self.calls >= self.at:
            if self.mode == "crash":
                raise Crash()
            out["y"] = torch.full_like(out["y"], float("nan"))
        return out


def _same_params(m1, m2):
    s1, s2 = m1.state_dict(), m2.state_dict()
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_resume_is_bit_identical(tmp_path, schedule):
    full = TinyLISTA(A)
    res_full = train(full, _task(), _cfg(tmp_path, "full", schedule=schedule), progress=False)
    assert res_full.steps == 40 and res_full.stopped == "completed"

    cut = TinyLISTA(A)
    with pytest.raises(Crash):  # dies while drawing the batch for step 21; last.pt is at step 20
        train(cut, FaultyTask(_task(), 21, "crash"), _cfg(tmp_path, "cut", schedule=schedule), progress=False)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == 20
    resumed = TinyLISTA(A)
    res = train(resumed, _task(), _cfg(tmp_path, "cut", schedule=schedule, resume=True), progress=False)
    assert res.resumed_from == 20 and res.steps == 40
    assert _same_params(full, resumed)
    assert res.log == res_full.log
    assert res.layer_nmse_db == res_full.layer_nmse_db


def test_layerwise_resume_across_stages(tmp_path):
    kw = dict(layerwise=True, stage_steps=(4, 3, 3), checkpoint_every=7, eval_every=5)
    full = TinyLISTA(A)
    res_full = train(full, _task(), _cfg(tmp_path, "full", **kw), progress=False)
    assert res_full.total_steps == 30
    cut = TinyLISTA(A)
    with pytest.raises(Crash):
        train(cut, FaultyTask(_task(), 17, "crash"), _cfg(tmp_path, "cut", **kw), progress=False)
    resumed = TinyLISTA(A)
    res = train(resumed, _task(), _cfg(tmp_path, "cut", resume=True, **kw), progress=False)
    assert res.resumed_from == 14
    assert _same_params(full, resumed)


def test_layerwise_first_stage_trains_only_the_new_layer(tmp_path):
    model = TinyLISTA(A)
    W0, S0, th0 = model.W.detach().clone(), model.S.detach().clone(), [t.detach().clone() for t in model.theta]
    cfg = _cfg(tmp_path, "lw", layerwise=True, stage_steps=(5, 0, 0), eval_every=100, lr=1e-2)
    res = train(model, _task(), cfg, progress=False)
    assert res.steps == 15 and [r["stage"] for r in res.log] == ["layer 3/3 stage 1"]
    assert torch.equal(model.W, W0) and torch.equal(model.S, S0)
    assert all(not torch.equal(t, t0) for t, t0 in zip(model.theta, th0))


def test_plan_stages():
    stages = plan_stages(TrainConfig(layerwise=True, lr=1.0), K=2)
    assert [(s.upto, s.lr, s.scope) for s in stages] == [
        (1, 1.0, "layer"), (1, 0.2, "upto"), (1, 0.02, "upto"),
        (2, 1.0, "layer"), (2, 0.2, "upto"), (2, 0.02, "upto"),
    ]
    assert plan_stages(TrainConfig(steps=7), K=5)[0].steps == 7
    assert plan_stages(TrainConfig(epochs=2, batch_size=10), K=5, train_size=25)[0].steps == 6
    with pytest.raises(ValueError, match="train_size"):
        plan_stages(TrainConfig(epochs=2), K=5)


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    model = TinyLISTA(A)
    with pytest.raises(TrainingDiverged, match=r"step 26.*loss is nan.*step 20") as info:
        train(model, FaultyTask(_task(), 26, "nan"), _cfg(tmp_path, "nan"), progress=False)
    assert info.value.step == 26
    ckpt = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert ckpt["step"] == 20
    for name, value in model.state_dict().items():
        assert torch.isfinite(value).all()
        assert torch.equal(value, ckpt["model"][name])
    status = json.loads((tmp_path / "nan" / "log.json").read_text())["status"]
    assert status.startswith("diverged")


def test_checkpoint_contents_load_weights_only(tmp_path):
    model = TinyLISTA(A)
    res = train(model, _task(), _cfg(tmp_path, "ck", steps=20), progress=False)
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "ck" / name, weights_only=True)
        assert {"model", "optimizer", "scheduler", "step", "rng", "log", "config"} <= set(ckpt)
        assert ckpt["rng"]["torch"].dtype == torch.uint8
        assert ckpt["config"]["steps"] == 20
    assert torch.load(res.last_checkpoint, weights_only=True)["step"] == 20
    assert res.best_checkpoint is not None and res.best_nmse_db <= res.layer_nmse_db[-1]
    header = (tmp_path / "ck" / "log.csv").read_text().splitlines()[0].split(",")
    assert {"step", "train_loss", "test_nmse_db", "nmse_db_L1", "nmse_db_L3"} <= set(header)
    assert len(json.loads((tmp_path / "ck" / "log.json").read_text())["rows"]) == 2


def test_atomic_save_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    with pytest.raises(Exception):
        save_checkpoint(path, {"step": 2, "bad": lambda: None})  # cannot be pickled
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_time_budget_stops_cleanly(tmp_path):
    model = TinyLISTA(A)
    res = train(model, _task(), _cfg(tmp_path, "tb", time_budget=0.0), progress=False)
    assert res.stopped == "time_budget" and res.steps == 1
    assert load_checkpoint(res.last_checkpoint)["step"] == 1
    assert len(res.layer_nmse_db) == 3
    # the stop's evaluation is the best so far (no scheduled one ran): not 'inf at step -1'
    assert res.best_step == 1 and res.best_nmse_db == res.layer_nmse_db[-1]
    assert res.best_checkpoint is not None and load_checkpoint(res.best_checkpoint)["step"] == 1


def test_resume_refuses_changed_settings(tmp_path):
    train(TinyLISTA(A), _task(), _cfg(tmp_path, "r", steps=10), progress=False)
    with pytest.raises(ValueError, match="lr: checkpoint 0.001, now 0.01"):
        train(TinyLISTA(A), _task(), _cfg(tmp_path, "r", steps=10, lr=1e-2, resume=True), progress=False)


def test_training_improves_and_ista_init_decreases_per_layer(tmp_path):
    model = TinyLISTA(A)
    before = evaluate_layers(model, _task().test_set())
    assert before[0] > before[1] > before[2]
    res = train(model, _task(), _cfg(tmp_path, "imp", lr=1e-2, steps=60, schedule="const"), progress=False)
    assert res.layer_nmse_db[-1] < before[-1] - 1.0
