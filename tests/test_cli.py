"""The command line, called in-process through `main([...])` and once as a real subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unroll.cli.main import main
from unroll.compiler.pretty import equation_lines, to_text
import unroll

BROKEN = """algorithm Broken
dims n, m
operator A : [n, m]
input y : [n]
state x : [m] = 0
iterate K = 3:
    x = soft(A y + x, 0.1)
output x
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok_counts_parameters(capsys):
    code, out, err = run(capsys, "check", "zoo:lista", "--dim", "n=250", "--dim", "m=500")
    assert code == 0, err
    # W_e 500x250 + S 500x500 + theta 500, shared
    assert out.startswith("ok: LISTA: 3 learnables, 375,500 params, K=16")


def test_check_without_sizes_says_what_to_give(capsys):
    code, out, _ = run(capsys, "check", "lista")
    assert code == 0
    assert "--dim n=" in out and "--dim m=" in out


def test_check_per_layer_count_follows_K(capsys):
    code, out, _ = run(capsys, "check", "zoo:lista_cp", "--K", "4", "--dim", "n=5", "--dim", "m=7")
    assert code == 0
    assert f"{4 * (5 * 7 + 1):,} params" in out


def test_bad_spec_exits_2_with_located_error(tmp_path, capsys):
    spec = tmp_path / "broken.unroll"
    spec.write_text(BROKEN)
    code, out, err = run(capsys, "check", str(spec))
    assert code == 2 and out == ""
    assert f"{spec}:7:" in err and "^" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, needle", [
    (["check", "no/such/file.unroll"], "no spec file"),
    (["show", "zoo:nonesuch"], "no zoo spec"),
    (["check", "zoo:lista", "--dim", "q=3"], "unknown dim q"),
    (["check", "zoo:lista", "--K", "0"], "--K must be at least 1"),
    (["graph", "zoo:lista", "-o", "g.jpg"], "unknown format"),
    (["compile", "zoo:lista", "-o", "m.py"], "--dim n=..."),
    (["train", "zoo:lista", "--device", "cuda:7"] if not torch.cuda.is_available() else
     ["train", "zoo:lista", "--data", "/no/such/dir"], "error:"),
])
def test_user_errors_exit_2_without_traceback(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_bad_arguments_exit_2(capsys):
    code, _, err = run(capsys, "check", "zoo:lista", "--dim", "n=abc")
    assert code == 2 and "NAME=SIZE" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err


def test_help_of_every_command(capsys):
    for cmd in ("check", "show", "graph", "compile", "zoo", "train", "demo"):
        code, out, _ = run(capsys, cmd, "--help")
        assert code == 0 and f"usage: unroll {cmd}" in out
    code, out, _ = run(capsys, "demo", "--help")
    assert "--time-budget" in out and "--baseline-iters" not in out


def test_subprocess_exit_codes(tmp_path):
    spec = tmp_path / "broken.unroll"
    spec.write_text(BROKEN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ok = subprocess.run([sys.executable, "-m", "unroll.cli.main", "check", "zoo:ista"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ISTA")
    bad = subprocess.run([sys.executable, "-m", "unroll.cli.main", "check", str(spec)],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert "shape error" in bad.stderr and "Traceback" not in bad.stderr


def test_show_prints_equations_learnables_and_count(capsys):
    code, out, _ = run(capsys, "show", "zoo:lista", "--dim", "n=4", "--dim", "m=6")
    assert code == 0
    assert "Gregor & LeCun" in out
    assert "x = soft(W_e y + S x, theta)" in out
    assert "S : [m, m] = I - A' A / L   shared" in out
    assert "theta : [m] = lam / L   shared, positive" in out
    assert f"parameters: {6 * 4 + 36 + 6} for K=16" in out


def test_show_fista_locals():
    lines = equation_lines(unroll.check("zoo:fista"))
    assert lines[0] == "x_new = soft(z - A'(A z - y) / L, lam / L)"
    assert "z = x_new + (t - 1) / t_new * (x_new - x)" in lines
    assert "x = x_new" in lines


def test_pretty_brackets():
    p = unroll.check("algorithm T\ndims m\ninput y : [m]\nstate x : [m] = 0\niterate K = 1:\n"
                     "    x = (x - y) - (y - x) / (2 * x) + -(x + y) + x^2^3\noutput x\n")
    assert to_text(p.updates["x"]) == "x - y - (y - x) / (2 * x) + -(x + y) + x^2^3"


def test_zoo_lists_citations(capsys):
    code, out, _ = run(capsys, "zoo")
    assert code == 0
    for name in unroll.zoo.names():
        assert name in out
    assert "Beck & Teboulle" in out


def test_graph_uses_default_size_and_says_so(tmp_path, capsys):
    code, out, _ = run(capsys, "graph", "zoo:lista", "--K", "2", "-o", str(tmp_path / "g.dot"))
    assert code == 0 and "used 8" in out
    assert "cluster_2" in (tmp_path / "g.dot").read_text()


def test_compile_writes_a_module_that_runs_with_only_torch(tmp_path, capsys):
    out_py = tmp_path / "model.py"
    code, out, _ = run(capsys, "compile", "zoo:lista", "--K", "3", "--dim", "n=6", "--dim", "m=10",
                       "-o", str(out_py))
    assert code == 0 and "from model import LISTA" in out and "net = LISTA(A)" in out
    script = ("import sys, torch; sys.modules['unroll'] = None\n"  # unroll must not be needed
              "from model import LISTA\n"
              "torch.manual_seed(0); A = torch.randn(6, 10)\n"
              "net = LISTA(A); y = torch.randn(4, 6)\n"
              "x, layers = net(y=y, return_layers=True)\n"
              "assert x.shape == (4, 10) and len(layers) == 3\n"
              "print(sum(p.numel() for p in net.parameters()))\n")
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) == 10 * 6 + 100 + 10


def test_train_tiny_run(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "zoo:lista", "--K", "2", "--steps", "3", "--eval-every", "3",
                         "--batch-size", "8", "--out", str(out_dir), "--quiet",
                         "--data", str(tmp_path))  # an empty dir: A is generated
    assert code == 0, err
    assert "A generated" in out and "layer" in out
    from unroll.train import LAST
    assert (out_dir / "log.csv").exists() and (out_dir / LAST).exists()
    assert str(out_dir / LAST) in out


def test_train_refuses_a_spec_without_a_task(tmp_path, capsys):
    spec = tmp_path / "two.unroll"
    spec.write_text("algorithm Two\ndims m\ninput y : [m]\ninput w : [m]\ntarget t : [m]\n"
                    "state x : [m] = 0\niterate K = 2:\n    x = x + y - w\noutput x\n"
                    "loss mse(x, t)\n")
    code, _, err = run(capsys, "train", str(spec), "--steps", "1")
    assert code == 2 and "no training task fits Two" in err


def test_train_divergence_exits_1(tmp_path, capsys):
    code, _, err = run(capsys, "train", "zoo:lista", "--K", "2", "--steps", "5", "--lr", "1e30",
                       "--batch-size", "8", "--out", str(tmp_path / "r"), "--quiet",
                       "--data", str(tmp_path))
    assert code == 1 and "diverged" in err and "Traceback" not in err


def test_demo_smoke(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "--K", "2", "--steps", "2", "--baseline-iters", "20",
                         "--n-test", "50", "--batch-size", "8", "--out", str(tmp_path / "demo"), "--quiet",
                         "--data", str(tmp_path))
    assert code == 0, err
    assert "A generated" in out and "LISTA" in out and "FISTA" in out
    assert (tmp_path / "demo" / "nmse.png").stat().st_size > 0
    assert (tmp_path / "demo" / "nmse.json").exists()
    assert (tmp_path / "demo" / "objective.png").stat().st_size > 0
    numbers = json.loads((tmp_path / "demo" / "nmse.json").read_text())
    assert len(numbers["objective"]["ISTA"]) == 20 and len(numbers["objective"]["LISTA"]) == 2
    assert numbers["objective"]["ISTA"][-1] <= numbers["objective"]["ISTA"][0]
    # A second run on the same data reuses the baseline curves.
    code, out, err = run(capsys, "demo", "--K", "2", "--steps", "1", "--baseline-iters", "20",
                         "--n-test", "50", "--batch-size", "8", "--out", str(tmp_path / "demo"), "--quiet",
                         "--data", str(tmp_path))
    assert code == 0, err
    assert "reusing 20-iteration curves" in out


def test_parameter_count_matches_the_compiled_module_with_blocks():
    from unroll.cli.common import parameter_count
    p = unroll.check("zoo:ista_net_plus")
    rng = np.random.default_rng(0)
    ops = {n: 0.01 * rng.standard_normal(tuple(10 if d == "M" else d for d in t.shape))
           for n, t in p.operators.items()}
    model = unroll.compile(p, K=2, **ops)
    u = unroll.unfold(p, K=2, dims={"M": 10})
    assert parameter_count(u) == sum(q.numel() for q in model.parameters())
