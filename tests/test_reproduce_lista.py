"""`unroll reproduce lista` on small settings: the targets are the lasso optimum (KKT), LISTA-1 beats
FISTA-1, the JSON has the documented schema, the cache is reused, and bad options fail cleanly."""
import json

import numpy as np
import pytest
import torch

from unroll.cli.main import main
from unroll.data.patches import PatchCodeTask, make_patches
from unroll.reproduce.lista import ListaConfig, format_table, reproduce_lista
from unroll.reproduce.lista_codes import cached, kkt_violation, solve_codes, with_consts

TINY = dict(atoms=(32,), layers=(1, 3), patch=4, n_train=600, n_test=150, lam=1.0, target_iters=4000,
            curve_iters=60, dict_iters=4, dict_batch=256, dict_fista_iters=50, budget_s=4.0, batch_size=64)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("lista")
    cfg = ListaConfig(data_dir=None, out_dir=str(out), **TINY)
    with pytest.MonkeyPatch.context() as mp:  # the built-in images, as make_patches(None) below
        mp.delenv("UNROLL_DATA", raising=False)
        return reproduce_lista(cfg, log=lambda s: None), out


def test_patches_are_mean_free_and_globally_scaled():
    p = make_patches(None, size=4, n_train=300, n_test=50, seed=3)
    assert p.train.shape == (300, 16) and p.test.shape == (50, 16)
    assert np.allclose(p.train.mean(axis=1), 0, atol=1e-12) and np.allclose(p.test.mean(axis=1), 0, atol=1e-12)
    assert abs(p.train.std() - 1) < 1e-9 and p.scale > 0
    assert "BUILT-IN" in p.source and "per-patch mean removed" in p.preprocessing


def test_targets_are_the_lasso_optimum(tiny_report):
    report, _ = tiny_report
    t = report["atoms"]["32"]["targets"]
    for split in ("train", "test"):
        assert t[split]["kkt_violation"] < 1e-5 and t[split]["K"] == 4000
        assert 0 < t[split]["nonzero_fraction"] < 0.6  # sparse, not all zero
    # independently of the stored statistic: the cached test targets satisfy KKT for the cached dictionary
    cache = tiny_report[1] / "cache"
    D = np.load(next(cache.glob("dictionary-*.npz")))["D"]
    Z = np.load(next(cache.glob("targets-test-*.npz")))["Z"]
    X = make_patches(None, size=4, n_train=600, n_test=150, seed=0).test
    assert np.allclose(np.linalg.norm(D, axis=0), 1) and Z.shape == (150, 32)
    assert kkt_violation(D, X, Z, 1.0) < 1e-5
    assert kkt_violation(D, X, Z * 1.01, 1.0) > 1e-3  # and the check can fail
    z, stats = solve_codes(D, X[:20], 1.0, 4000)  # the same compiled FISTA reproduces them
    assert np.allclose(z, Z[:20], atol=1e-8) and stats.rel_change < 1e-5

def test_lista_beats_fista_and_schema(tiny_report):
    report, out = tiny_report
    a = report["atoms"]["32"]
    assert set(a["lista"]) == {"1", "3"} and len(a["fista"]) == 60 and a["fista"]["1"] > a["fista"]["60"]
    assert a["lista"]["1"] < a["fista"]["1"]
    n = a["fista_iters_to_match_lista1"]
    assert n is not None and a["fista"][str(n)] <= a["lista"]["1"] and (n == 1 or a["fista"][str(n - 1)] > a["lista"]["1"])
    assert a["lista_relative"]["1"] == pytest.approx(a["lista"]["1"] / a["mean_half_sq_zstar"])
    assert isinstance(report["preprocessing"], str) and report["lambda"] == 1.0
    saved = json.loads((out / "results.json").read_text())
    assert saved["atoms"]["32"]["lista"] == a["lista"] and (out / "fista_vs_lista.png").stat().st_size > 1000
    table = format_table(report)
    assert "m = 32" in table and "LISTA, 3 layers" in table and "FISTA iterations to LISTA-1" in table


def test_cli_end_to_end_writes_json_and_reuses_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("UNROLL_DATA", raising=False)
    args = ["reproduce", "lista", "--atoms", "16", "--layers", "1", "--budget", "2", "--out", str(tmp_path / "r"),
            "--json", str(tmp_path / "t1.json"), "--train-patches", "300", "--test-patches", "60",
            "--target-iters", "500", "--curve-iters", "30", "--dict-iters", "2", "--batch-size", "32", "--quiet"]
    assert main(args + ["--lam", "0.4"]) == 0
    printed = capsys.readouterr().out
    assert "paper" in printed and "m = 16" in printed and "preprocessing:" in printed
    data = json.loads((tmp_path / "t1.json").read_text())
    assert set(data) >= {"atoms", "preprocessing", "lambda"} and data["lambda"] == 0.4
    entry = data["atoms"]["16"]
    assert set(entry) >= {"lista", "fista", "fista_iters_to_match_lista1"}
    assert list(entry["lista"]) == ["1"] and list(entry["fista"])[:2] == ["1", "2"]
    assert isinstance(entry["lista"]["1"], float)
    assert main(args + ["--lam", "0.4"]) == 0  # the second run reads dictionary and targets back
    assert json.loads((tmp_path / "t1.json").read_text())["atoms"]["16"]["targets"]["test"]["cached"] is True


@pytest.mark.parametrize("extra, message", [
    (["--atoms", "0"], "--atoms"),
    (["--lam", "-1"], "--lam"),
    (["--data", "/nonexistent/unroll-data"], "does not exist"),
    (["--K", "3"], "--layers"),
])
def test_bad_options_fail_cleanly(extra, message, capsys, tmp_path):
    assert main(["reproduce", "lista", "--out", str(tmp_path), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_with_consts_and_cache_and_task(tmp_path):
    with pytest.raises(ValueError, match="no const mu"):
        with_consts("zoo:fista", mu=1.0)
    calls = []
    make = lambda: calls.append(1) or {"a": np.arange(3.0)}  # noqa: E731
    assert cached(tmp_path, "x", "k1", make)[1] is False and cached(tmp_path, "x", "k1", make)[1] is True
    assert cached(tmp_path, "x", "k2", make)[1] is False and len(calls) == 2
    task = PatchCodeTask(np.zeros((5, 4)), np.ones((5, 8)), np.zeros((2, 4)), np.ones((2, 8)))
    batch = task.sample(3, torch.Generator().manual_seed(0))
    assert batch["y"].shape == (3, 4) and batch["x_star"].shape == (3, 8) and task.test_set()["y"].shape == (2, 4)
    with pytest.raises(ValueError, match="matching N"):
        PatchCodeTask(np.zeros((5, 4)), np.ones((4, 8)), np.zeros((2, 4)), np.ones((2, 8)))
