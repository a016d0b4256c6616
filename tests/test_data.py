"""Data location, the synthetic sparse-coding task and its binding to spec names."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from unroll.data import (
    SparseCodingTask,
    TaskBindingError,
    gaussian_dictionary,
    load_standard_problem,
    resolve_data_dir,
)
from lista_standin import TinyLISTA

SHARED = Path(os.environ.get("UNROLL_DATA", ""))
HAVE_SPARSE = (SHARED / "sparse" / "D.mat").is_file()


def test_resolve_prefers_argument_then_env(tmp_path):
    other = tmp_path / "env"
    other.mkdir()
    path, why = resolve_data_dir(str(tmp_path), environ={"UNROLL_DATA": str(other)})
    assert path == tmp_path.resolve() and "--data" in why
    path, why = resolve_data_dir(None, environ={"UNROLL_DATA": str(other)})
    assert path == other.resolve() and "UNROLL_DATA" in why
    path, why = resolve_data_dir(None, environ={})
    assert path is None and "built-in defaults" in why


def test_resolve_missing_dirs(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data"):
        resolve_data_dir(str(tmp_path / "nope"), environ={})
    path, why = resolve_data_dir(None, environ={"UNROLL_DATA": str(tmp_path / "nope")})
    assert path is None and "not a directory" in why and "built-in defaults" in why


def test_gaussian_dictionary():
    A = gaussian_dictionary(25, 50, seed=3)
    assert A.shape == (25, 50) and A.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0)
    np.testing.assert_array_equal(A, gaussian_dictionary(25, 50, seed=3))
    assert not np.array_equal(A, gaussian_dictionary(25, 50, seed=4))


def test_standard_problem_generated_without_files(tmp_path):
    A, x_test, why = load_standard_problem(tmp_path, n=30, m=60)
    assert A.shape == (30, 60) and x_test is None
    assert "generated" in why and "not found" in why
    A2, _, why2 = load_standard_problem(None, n=30, m=60)
    np.testing.assert_array_equal(A, A2)
    assert "no data directory" in why2


@pytest.mark.skipif(not HAVE_SPARSE, reason="shared data (sparse/D.mat) not available")
def test_standard_problem_from_shared_data():
    A, x_test, why = load_standard_problem(SHARED)
    assert A.shape == (250, 500) and A.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0, rtol=1e-6)
    assert "D.mat" in why
    assert x_test is not None and x_test.shape == (1000, 500)
    assert abs((x_test != 0).mean() - 0.1) < 0.01
    task = SparseCodingTask.from_data_dir(SHARED)
    test = task.test_set()
    assert test["y"].shape == (1000, 250) and test["x_star"].shape == (1000, 500)
    expected = x_test.astype(np.float64) @ A.T
    np.testing.assert_allclose(test["y"].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert "D.mat" in task.describe()


def _task(**kw):
    return SparseCodingTask(gaussian_dictionary(20, 40, seed=0), **kw)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_shapes_dtype_determinism(dtype):
    task = _task(dtype=dtype)
    b1 = task.sample(8, torch.Generator().manual_seed(5))
    b2 = task.sample(8, torch.Generator().manual_seed(5))
    assert set(b1) == {"y", "x_star"}
    assert b1["y"].shape == (8, 20) and b1["x_star"].shape == (8, 40)
    assert b1["y"].dtype == dtype and b1["x_star"].dtype == dtype
    for k in b1:
        assert torch.equal(b1[k], b2[k])
    A = torch.as_tensor(task.A, dtype=dtype)
    torch.testing.assert_close(b1["y"], b1["x_star"] @ A.T)


def test_code_statistics():
    task = _task(p=0.1)
    x = task.sample(4000, torch.Generator().manual_seed(0))["x_star"]
    support = x != 0
    assert abs(support.float().mean().item() - 0.1) < 0.005
    amplitudes = x[support].double()
    assert abs(amplitudes.mean().item()) < 0.03
    assert abs(amplitudes.std().item() - 1.0) < 0.03


def test_noise_at_requested_snr():
    task = _task(snr_db=20.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    b = task.sample(2000, g)
    clean = b["x_star"] @ torch.as_tensor(task.A).T
    noise = b["y"] - clean
    snr = 10 * torch.log10(clean.pow(2).sum() / noise.pow(2).sum()).item()
    assert abs(snr - 20.0) < 0.3


def test_test_set_fixed_and_from_codes():
    task = _task(n_test=50)
    t1, t2 = task.test_set(), _task(n_test=50).test_set()
    assert t1["y"].shape == (50, 20)
    for k in t1:
        assert torch.equal(t1[k], t2[k])
    codes = np.random.default_rng(0).standard_normal((7, 40)).astype(np.float32)
    t = _task(x_test=codes).test_set()
    np.testing.assert_array_equal(t["x_star"].numpy(), codes)
    assert t["y"].shape == (7, 20)


def test_bind_maps_roles_to_spec_names():
    task = _task()
    model = TinyLISTA(task.A, K=2, names=("D", "b", "z"))
    bound = task.bind(model)
    assert set(bound.sample(3, torch.Generator().manual_seed(0))) == {"b", "z"}
    assert set(bound.test_set()) == {"b", "z"}
    assert list(bound.operators()) == ["D"] and bound.operators()["D"] is bound.A
    assert set(task.sample(1)) == {"y", "x_star"}  # the original is unchanged
    named = task.bind({"operator_names": ("Phi",), "input_names": ("u",), "target_names": ("v",)})
    assert list(named.operators()) == ["Phi"]


def test_bind_rejects_specs_without_exactly_one_of_each():
    task = _task()
    bad = {"operator_names": ("A", "B"), "input_names": ("y",), "target_names": ()}
    with pytest.raises(ValueError, match="exactly one target.*none"):
        task.bind(bad)
    # several operators: A is the dictionary, the others must be given to the task
    with pytest.raises(ValueError, match="operator B besides A"):
        task.bind({**bad, "target_names": ("x",)})
    with pytest.raises(ValueError, match="exactly one operator.*none"):
        task.bind({**bad, "operator_names": (), "target_names": ("x",)})
    with pytest.raises(TaskBindingError, match="input_names"):
        task.bind(object())
