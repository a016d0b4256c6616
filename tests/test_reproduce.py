"""The reproduction command end to end on built-in data (tiny budget), eval on its checkpoint,
and shipping/loading pretrained weights."""
import argparse
import json

import numpy as np
import pytest
import torch

import unroll
from unroll.data.blockcs import orthonormal_rows
from unroll.evaluate.command import add_parser as add_eval_parser
from unroll.reproduce import PAPER_TABLE1, ReproduceConfig, format_table, reproduce_ista_net, ship_pretrained
from unroll.zoo import weights


def test_paper_table_and_format():
    assert PAPER_TABLE1["ista_net_plus"][25] == 32.57 and PAPER_TABLE1["ista_net"][10] == 25.80
    rows = [
        {"network": "ista_net_plus", "ratio": 25, "M": 272, "psnr": 30.0, "ssim": 0.9, "paper_psnr": 32.57,
         "steps": 100, "train_seconds": 60.0, "generated_phi": False},
        {"network": "fista_net", "ratio": 50, "M": 545, "psnr": 35.0, "ssim": 0.95, "paper_psnr": None,
         "steps": 10, "train_seconds": 6.0, "generated_phi": True},
    ]
    table = format_table(rows)
    assert "ISTA-Net+" in table and "-2.57" in table and "50%*" in table and "Phi generated" in table


def test_missing_pretrained_weights_say_so(monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="no pretrained weights shipped for ista_net_plus at ratio 10%"):
        unroll.zoo.pretrained("ista_net_plus", ratio=10)


def test_ship_and_load_pretrained_round_trip(monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "PRETRAINED_DIR", tmp_path)
    phi = orthonormal_rows(43, 1089, seed=0)
    model = unroll.compile("zoo:ista_net_plus", K=1, Phi=phi, Q=phi.T)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    ship_pretrained(model, "ista_net_plus", 4, {"device": "test", "steps": 0})
    loaded = unroll.zoo.pretrained("ista_net_plus", ratio=4)
    assert loaded.pretrained_record == {"K": 1, "device": "test", "steps": 0}
    assert weights.available() == [("ista_net_plus", "4")]
    y = torch.randn(3, 43, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(loaded(y=y), model(y=y))


def test_reproduce_then_eval_on_builtin_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("UNROLL_DATA", raising=False)
    cfg = ReproduceConfig(ratios=(25,), budget_s=1.0, K=1, batch_size=4, n_blocks=300, test_blocks=8,
                          out_dir=str(tmp_path / "rep"), progress=False)
    result = reproduce_ista_net(cfg, log=lambda s: None)
    (row,) = result["rows"]
    assert row["generated_phi"] and row["M"] == 272 and row["paper_psnr"] == 32.57 and row["steps"] >= 1
    assert np.isfinite(row["psnr"]) and len(row["images"]) == 4
    saved = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert saved["rows"][0]["psnr"] == row["psnr"]

    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "zoo:ista_net_plus", "--ckpt", row["checkpoint"], "--ratio", "25",
                              "--out", str(tmp_path / "ev")])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "shepp_logan" in printed and "mean" in printed and f"{row['psnr']:8.2f}" in printed
    assert (tmp_path / "ev" / "side_by_side.png").is_file() and (tmp_path / "ev" / "shepp_logan_rec.png").is_file()
    bad = parser.parse_args(["eval", "zoo:ista_net_plus", "--ckpt", row["checkpoint"], "--ratio", "10"])
    with pytest.raises(ValueError, match="trained with M=272"):
        bad.func(bad)
