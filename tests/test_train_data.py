"""`unroll train SPEC --data FILE`: any spec trains on arrays named after its inputs and targets,
with a held-out split and resume; bad files exit 2 naming the file and the array; a spec with
several operators trains on the built-in task with the extra ones given."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import torch

import unroll
from unroll.cli.main import main
from unroll.data import SparseCodingTask, TaskBindingError
from unroll.data.arrays import ArrayTask, DataFileError, read_arrays
from unroll.train import TrainConfig, train

# Not a built-in task: two inputs, a [c, h]-shaped target, an operator named M.
DENOISE = """algorithm Denoise "t"
dims c, h
operator M : [h, h]
input y : [c, h]
input w : [c, h]
target t : [c, h]
learn a : [] = 0.5 per_layer
learn b : [] = 0.1 per_layer
state x : [c, h] = y
iterate K = 3:
    x = x - a * (x - y) - b * (x M') + 0 * w
output x
loss mse(x, t)
"""


def _problem(tmp_path, N=60, c=2, h=5, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((N, c, h))
    y = t + 0.3 * rng.standard_normal((N, c, h))
    M = np.eye(h) - np.roll(np.eye(h), 1, axis=1)
    spec = tmp_path / "den.unroll"
    spec.write_text(DENOISE)
    return spec, {"y": y, "w": np.zeros_like(y), "t": t, "M": M}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["npz", "pt", "mat"])
def test_any_spec_trains_on_a_file_and_resumes(tmp_path, capsys, fmt):
    spec, arrays = _problem(tmp_path)
    path = tmp_path / f"data.{fmt}"
    if fmt == "npz":
        np.savez(path, **arrays)
    elif fmt == "pt":
        torch.save({k: torch.as_tensor(v) for k, v in arrays.items()}, path)
    else:
        scipy.io.savemat(path, arrays)
    out_dir = tmp_path / "run"
    args = ["train", str(spec), "--data", str(path), "--steps", "40", "--eval-every", "20",
            "--batch-size", "8", "--lr", "0.01", "--out", str(out_dir), "--quiet"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "54 training, 6 held-out samples" in out
    log = json.loads((out_dir / "log.json").read_text())
    assert len(log["rows"][-1]["layer_nmse_db"]) == 3  # per-layer metrics on the held-out split
    assert (out_dir / "last.pt").exists() and (out_dir / "best.pt").exists()
    code, out, err = run(capsys, *args, "--resume")  # the saved run is complete: nothing to do
    assert code == 0, err
    assert json.loads((out_dir / "log.json").read_text())["rows"][-1]["step"] == 40


def test_resume_on_arrays_is_bit_identical(tmp_path):
    spec, arrays = _problem(tmp_path)
    program = unroll.check(spec)
    task = ArrayTask.for_spec(program, arrays, source="mem")

    def cfg(name, **kw):
        return TrainConfig(lr=0.01, steps=40, eval_every=10, checkpoint_every=20, batch_size=8,
                           out_dir=str(tmp_path / name), **kw)
    full = unroll.compile(program, dims=task.dims(), **task.operators())
    res_full = train(full, task, cfg("full"), progress=False)

    class Crash(Exception):
        pass

    class Cut:
        calls = 0

        def bind(self, model):
            return self

        def test_set(self):
            return task.test_set()

        def sample(self, batch, gen):
            Cut.calls += 1
            if Cut.calls > 20:
                raise Crash()
            return task.sample(batch, gen)
    cut = unroll.compile(program, dims=task.dims(), **task.operators())
    with pytest.raises(Crash):
        train(cut, Cut(), cfg("cut"), progress=False)
    resumed = unroll.compile(program, dims=task.dims(), **task.operators())
    res = train(resumed, task, cfg("cut", resume=True), progress=False)
    assert res.resumed_from == 20 and res.layer_nmse_db == res_full.layer_nmse_db
    assert res.initial_nmse_db == res_full.initial_nmse_db  # kept by the checkpoint
    assert all(torch.equal(a, b) for a, b in zip(full.parameters(), resumed.parameters()))


def test_training_lowers_the_held_out_error(tmp_path):
    spec, arrays = _problem(tmp_path, N=200)
    program = unroll.check(spec)
    task = ArrayTask.for_spec(program, arrays, source="mem", test_fraction=0.25)
    model = unroll.compile(program, dims=task.dims(), **task.operators())
    res = train(model, task, TrainConfig(lr=0.02, steps=60, eval_every=60, batch_size=16,
                                         out_dir=str(tmp_path / "r")), progress=False)
    from unroll.train import evaluate_layers
    before = evaluate_layers(unroll.compile(program, dims=task.dims(), **task.operators()),
                             task.test_set())
    assert res.layer_nmse_db[-1] < before[-1] - 0.5
    assert res.initial_nmse_db == pytest.approx(before, abs=1e-9)  # logged before the first step
    logged = json.loads((tmp_path / "r" / "log.json").read_text())["initial_layer_nmse_db"]
    assert logged == pytest.approx(before, abs=1e-9)


def test_operator_from_its_own_file(tmp_path, capsys):
    spec, arrays = _problem(tmp_path)
    M = arrays.pop("M")
    np.savez(tmp_path / "d.npz", **arrays)
    np.save(tmp_path / "M.npy", M)
    code, out, err = run(capsys, "train", str(spec), "--data", str(tmp_path / "d.npz"),
                         "--operator", f"M={tmp_path / 'M.npy'}", "--steps", "2", "--eval-every",
                         "2", "--batch-size", "4", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err


@pytest.mark.parametrize("change,needle", [
    (lambda a: a.pop("t"), "no array 't' for the spec's target t [c, h]"),
    (lambda a: a.pop("M"), "no array 'M' for the spec's operator M"),
    (lambda a: a.__setitem__("y", a["y"][:, :, :4]), "array 'y' has shape [60, 2, 4]"),
    (lambda a: a.__setitem__("w", a["w"][:10]), "array 'w' has 10 samples"),
    (lambda a: a["t"].__setitem__((3, 1, 2), np.nan), "array 't' has 1 NaN or Inf entry"),
    (lambda a: a["M"].__setitem__((0, 0), np.inf), "array 'M' has 1 NaN or Inf entry"),
    (lambda a: a.__setitem__("y", a["y"] + 1j), "array 'y' is complex but the spec's input y is real"),
])
def test_bad_data_files_exit_2_naming_file_and_array(tmp_path, capsys, change, needle):
    spec, arrays = _problem(tmp_path)
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    code, out, err = run(capsys, "train", str(spec), "--data", str(path), "--steps", "1",
                         "--out", str(tmp_path / "r"), "--quiet")
    assert code == 2 and "Traceback" not in err
    assert str(path) in err and needle in err, err


@pytest.mark.parametrize("content,needle", [
    (b"not a zip", "cannot read it as .npz"), (None, "no such file")])
def test_unreadable_data_file_exits_2(tmp_path, capsys, content, needle):
    spec, _ = _problem(tmp_path)
    path = tmp_path / "x.npz"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, "train", str(spec), "--data", str(path), "--steps", "1",
                       "--out", str(tmp_path / "r"), "--quiet")
    assert code == 2 and needle in err and "Traceback" not in err


def test_pickled_objects_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="cannot read"):
        read_arrays(tmp_path / "obj.npy")


def test_array_task_from_a_torch_dataset(tmp_path):
    spec, arrays = _problem(tmp_path, N=20)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return {k: torch.as_tensor(arrays[k][i]) for k in ("y", "w", "t")}
    task = ArrayTask.from_dataset(DS(), {"M": arrays["M"]}, test_fraction=0.2, seed=1)
    assert task.train_size == 16 and task.test_size == 4
    b1 = task.sample(5, torch.Generator().manual_seed(3))
    b2 = task.sample(5, torch.Generator().manual_seed(3))
    assert set(b1) == {"y", "w", "t"} and all(torch.equal(b1[k], b2[k]) for k in b1)
    model = unroll.compile(spec, dims={"c": 2}, M=arrays["M"])
    assert task.bind(model) is task


def test_sparse_task_with_a_second_operator(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((10, 20))
    W = rng.standard_normal((10, 20))
    task = SparseCodingTask(A, extra={"W": W}, n_test=8)
    model = unroll.compile("zoo:alista", K=2, A=A, W=W)
    bound = task.bind(model)
    assert set(bound.operators()) == {"A", "W"} and bound.operators()["W"] is not None
    names = {"operator_names": ("A", "W"), "input_names": ("y",), "target_names": ("x_star",)}
    with pytest.raises(TaskBindingError, match="besides A"):  # W has no default here
        SparseCodingTask(A, n_test=8).bind(names)
    # zoo:alista's W has a default (the analytic weight): the task need not give it
    assert "W" not in SparseCodingTask(A, n_test=8).bind(model).operators()
    # names= picks the dictionary among several operators
    renamed = SparseCodingTask(W, extra={"A": A}, names={"operator": "W", "measurement": "y",
                                                        "target": "x_star"}).bind(model)
    assert np.array_equal(renamed.operators()["W"], W) and np.array_equal(renamed.operators()["A"], A)


def test_cli_trains_alista_with_w_from_the_data_dir(tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "sparse").mkdir()
    A = rng.standard_normal((12, 24))
    scipy.io.savemat(tmp_path / "sparse" / "D.mat", {"D": A})
    np.save(tmp_path / "sparse" / "W.npy", A / 12)
    args = ["train", "zoo:alista", "--K", "2", "--steps", "2", "--eval-every", "2",
            "--batch-size", "4", "--out", str(tmp_path / "r"), "--quiet", "--overwrite"]
    code, out, err = run(capsys, *args, "--data", str(tmp_path))
    assert code == 0, err
    code, _, err = run(capsys, *args, "--data", str(tmp_path / "nothing"))
    assert code == 2
    (tmp_path / "sparse" / "W.npy").unlink()  # no W anywhere: the spec's analytic default
    code, _, err = run(capsys, *args, "--data", str(tmp_path))
    assert code == 0, err
    W = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["model"]["W"].double().numpy()
    P = np.linalg.solve(A @ A.T, A)
    np.testing.assert_allclose(W, P / (P * A).sum(0), rtol=1e-4, atol=1e-6)
    np.save(tmp_path / "W_file.npy", A / 12)
    code, _, err = run(capsys, *args, "--data", str(tmp_path), "--operator",
                       f"W={tmp_path / 'W_file.npy'}")
    assert code == 0, err
    code, _, err = run(capsys, *args, "--data", str(tmp_path), "--operator",
                       f"Q={tmp_path / 'W_file.npy'}")
    assert code == 2 and "no operator Q" in err


BLOCKY = """algorithm Blocky "t"
dims c, h, w
input y : [c, h, w]
target t : [c, h, w]
block D : [c, h, w] -> [c, h, w] = conv(c -> 4, 3) | relu | conv(4 -> c, 3) residual
state x : [c, h, w] = y
iterate K = 2:
    x = D(x)
output x
loss mse(x, t)
"""


GROUPED = """algorithm Grouped "a dim (G) that no array fixes"
dims h, G
input y : [h]
target t : [h]
learn a : [G] = 0.1 shared
state x : [h] = y
iterate K = 2:
    x = x - sum(a) * (x - y) + 0 * sum(reshape(x, [G, h]) ^ 2)
output x
loss mse(x, t)
"""


def test_seed_fixes_the_blocks_initial_weights(tmp_path, capsys):
    """`--seed` makes a run with random block weights repeatable (and another seed differs)."""
    rng = np.random.default_rng(0)
    t = rng.standard_normal((40, 2, 5, 5))
    np.savez(tmp_path / "d.npz", y=t + 0.1 * rng.standard_normal(t.shape), t=t)
    spec = tmp_path / "b.unroll"
    spec.write_text(BLOCKY)
    weights = []
    for seed, out in ((0, "a"), (0, "b"), (1, "c")):
        code, _, err = run(capsys, "train", str(spec), "--data", str(tmp_path / "d.npz"), "--steps",
                           "1", "--seed", str(seed), "--out", str(tmp_path / out), "--quiet")
        assert code == 0, err
        weights.append(torch.load(tmp_path / out / "last.pt", weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_train_takes_dim_for_a_size_no_array_fixes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    spec, data = tmp_path / "g.unroll", tmp_path / "g.npz"
    spec.write_text(GROUPED.replace("[G, h]", "[G, 5]"))
    np.savez(data, y=rng.standard_normal((40, 15)), t=rng.standard_normal((40, 15)))
    base = ["train", str(spec), "--data", str(data), "--steps", "4", "--eval-every", "4",
            "--batch-size", "8", "--quiet", "--out"]
    code, out, err = run(capsys, *base, str(tmp_path / "r0"))
    assert code == 2 and "dim G is not fixed by the arrays" in err and "--dim G=SIZE" in err
    code, out, err = run(capsys, *base, str(tmp_path / "r1"), "--dim", "G=3")
    assert code == 0, err
    saved = torch.load(tmp_path / "r1" / "last.pt", weights_only=True)
    assert [tuple(v.shape) for k, v in saved["model"].items() if k.endswith("a")] == [(3,)]
    code, out, err = run(capsys, *base, str(tmp_path / "r2"), "--dim", "Q=3")
    assert code == 2 and "unknown dim Q" in err
    code, out, err = run(capsys, *base, str(tmp_path / "r3"), "--dim", "G=4")  # 15 != 4 * 5
    assert code == 2 and "reshape" in err and "Traceback" not in err
    code, out, err = run(capsys, *base, str(tmp_path / "r4"), "--dim", "G=3", "--dim", "h=7")
    assert code == 2 and "h = 7 (from the given dims)" in err
    code, out, err = run(capsys, *base, str(tmp_path / "r1"), "--dim", "G=5", "--resume")
    assert code == 2 and "--dim" in err
    code, out, err = run(capsys, "train", "--help")
    assert code == 0 and "--dim NAME=SIZE" in out


def test_float64_training_with_a_complex_input(tmp_path, capsys):
    """Complex batches take the model's complex dtype (complex128 for --float64), so a conv
    block after real(ifft2(y)) sees float64 like its weights."""
    rng = np.random.default_rng(0)
    x = rng.random((20, 6, 6))
    P = (rng.random((6, 6)) < 0.5) * 1.0
    np.savez(tmp_path / "d.npz", x_star=x, y=P * np.fft.fft2(x, norm="ortho"), P=P)
    spec = tmp_path / "c.unroll"
    spec.write_text("""dims h, w
operator P : [h, w]
input y : [h, w] complex
target x_star : [h, w]
block D : [1, h, w] -> [1, h, w] = conv(1 -> 2, 3, bias) | relu | conv(2 -> 1, 3) residual
state x : [h, w] = real(ifft2(y))
iterate K = 2:
    x = reshape(D(reshape(x, [1, h, w])), [h, w])
output x
loss mse(x, x_star)
""")
    for extra in ([], ["--float64"]):
        code, _, err = run(capsys, "train", str(spec), "--data", str(tmp_path / "d.npz"), "--steps",
                           "2", "--out", str(tmp_path / f"r{len(extra)}"), "--quiet", *extra)
        assert code == 0, err
