"""CS-MRI evaluation: metrics against hand computations, the zero-filled PSNR on a brain image at
20 % against an independent NumPy computation, the comparison table, JSON and PNGs."""
import json
import os
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image

from unroll.data.mri import MRITask, load_brain, load_mask
from unroll.evaluate.mri import ZeroFilled, evaluate_methods, image_nmse, image_psnr, write_pngs
from test_mri_data import ZeroFilledScaled

DATA = Path(os.environ["UNROLL_DATA"])


def test_metrics_match_hand_computation():
    x = np.full((1, 4, 4), 0.5)
    x_hat = x.copy()
    x_hat[0, 0, 0] += 0.1
    assert np.isclose(image_psnr(x_hat, x)[0], 10 * np.log10(1 / (0.01 / 16)))
    assert np.isclose(image_nmse(x_hat, x)[0], 0.1 / np.sqrt(16 * 0.25))


def test_zero_filled_psnr_on_brain_image_matches_numpy():
    # Independent: read the PNG and the v7.3 mask directly, unnormalised numpy FFTs, real part.
    img = np.asarray(Image.open(DATA / "mri" / "brain_test" / "brain_test_01.png"), dtype=np.float64) / 255
    with h5py.File(DATA / "mri" / "masks" / "mask_20.mat", "r") as f:
        mask = np.fft.ifftshift(np.asarray(f["mask"]).T)
    rec = np.real(np.fft.ifft2(mask * np.fft.fft2(img)))
    expect = 10 * np.log10(1.0 / np.mean((rec - img) ** 2))

    brain = load_brain(DATA)[:1]
    result = evaluate_methods({}, brain, load_mask(DATA, 20)[0], label="brain")
    zf = result.method("zero-filled")
    assert abs(zf.psnr[0] - expect) < 1e-9
    assert 20.0 < expect < 40.0
    np.testing.assert_allclose(zf.reconstructions[0], rec, atol=1e-12)


def test_table_json_and_pngs(tmp_path):
    task = MRITask.from_data_dir(DATA, mask=30, size=32)
    images = task.test_images[:3]
    methods = {"half": ZeroFilledScaled(0.5), "zero-filled copy": ZeroFilledScaled(1.0)}
    result = evaluate_methods(methods, images, task.mask, label="chest-val")
    assert [m.method for m in result.methods] == ["zero-filled", "half", "zero-filled copy"]
    # the float32 stand-in with s = 1 is the zero-filled baseline up to float32 rounding
    np.testing.assert_allclose(result.methods[2].psnr, result.methods[0].psnr, atol=1e-3)
    assert result.method("half").mean_psnr < result.method("zero-filled").mean_psnr
    table = result.table()
    assert "im-05" in table and table.splitlines()[-1].startswith("mean") and "half" in table
    data = json.loads(json.dumps(result.to_dict()))
    assert data["methods"]["zero-filled"]["mean_psnr"] == result.methods[0].mean_psnr
    paths = write_pngs(result, tmp_path / "png", figure_images=2)
    names = {p.name for p in paths}
    assert {"im-05_truth.png", "im-05_half.png", "im-05_half_error.png", "comparison.png"} <= names
    with Image.open(tmp_path / "png" / "im-05_zero-filled.png") as im:
        assert im.size == (32, 32) and im.mode == "L"
    with Image.open(tmp_path / "png" / "im-05_half_error.png") as im:
        assert im.mode == "RGB"


def test_zero_filled_module_has_the_model_interface():
    y = torch.fft.fft2(torch.rand(2, 8, 8, dtype=torch.float64), norm="ortho")
    out, layers = ZeroFilled()(y, return_layers=True)
    assert out.shape == (2, 8, 8) and len(layers) == ZeroFilled.K == 1


def test_reproduction_runs_end_to_end_on_a_tiny_problem(tmp_path):
    from unroll.reproduce.admm_net import ReproductionConfig, format_table, reproduce
    from unroll.train.budget import parse_duration

    assert parse_duration("10m") == 600.0 and parse_duration("90") == 90.0 and parse_duration(None) is None
    cfg = ReproductionConfig(masks=(20,), K=2, budget=None, steps=3, eval_every=3, size=16,
                             data_dir=str(DATA), out_dir=str(tmp_path / "rep"), progress=False)
    report = reproduce(cfg, log=lambda _: None)
    sets = report["runs"][0]["sets"]
    assert set(sets) == {"chest-val", "brain"} and len(sets["brain"]["images"]) == 50
    assert sets["brain"]["paper_admm_net_psnr"] == 37.17 and sets["chest-val"]["paper_admm_net_psnr"] == 37.84
    assert json.loads((tmp_path / "rep" / "results.json").read_text())["runs"][0]["train"]["steps"] == 3
    table = format_table(report)
    assert "37.17" in table and "TV-ADMM" in table and "not comparable" in table


def test_eval_command_scores_a_compiled_admm_net(tmp_path, capsys):
    import argparse

    import unroll
    from unroll.evaluate.mri import run_eval_command

    mask, _ = load_mask(DATA, 20, size=16)
    model = unroll.compile("zoo:admm_net", K=1, P=mask)
    args = argparse.Namespace(spec="zoo:admm_net", ckpt="-", data=str(DATA), mask=20, mri_set="chest-val",
                              no_tv=False, out=str(tmp_path / "eval"))
    assert run_eval_command(args, model) == 0
    text = capsys.readouterr().out
    assert "zero-filled" in text and "TV-ADMM" in text and "im-100" in text
    scores = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert len(scores["images"]) == 20 and len(scores["methods"]) == 3
