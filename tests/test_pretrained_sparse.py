"""Shipped LISTA weights (trained here with `unroll train`) load with weights_only=True and reproduce
the per-layer test NMSE their record states; `unroll demo --pretrained` shows them without training."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import unroll
from unroll.train import evaluate_layers
from unroll.zoo.sparse_weights import sparse_names

SHIPPED = sparse_names()


def test_the_lista_weights_are_shipped():
    assert "lista" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reproduce_their_record(name):
    model = unroll.zoo.pretrained(name)
    rec = model.pretrained_record
    assert rec["spec"] == f"zoo:{name}" and "unroll train" in rec["command"]
    got = evaluate_layers(model, model.pretrained_task.test_set())
    assert len(got) == rec["K"]
    assert got == pytest.approx(rec["layer_nmse_db"], abs=0.01)


def test_demo_pretrained_shows_the_shipped_curve(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "unroll.cli.main", "demo", "--pretrained",
                        "--baseline-iters", "20", "--out", str(out), "--quiet"],
                       cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "shipped weights" in r.stdout
    numbers = json.loads((out / "nmse.json").read_text())
    rec = unroll.zoo.pretrained("lista").pretrained_record
    assert numbers["nmse_db"]["LISTA"] == pytest.approx(rec["layer_nmse_db"], abs=0.01)
