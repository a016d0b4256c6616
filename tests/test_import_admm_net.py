"""The released Deep ADMM-Net (net-stage*.mat, MATLAB v7.3) imported into zoo:admm_net_exact is the
authors' network: float64 reconstructions equal their reference to 1e-8, every X layer included, and
the 8-bit rendering equals their rec_image.png; wrong files fail with a located message."""
import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from unroll.cli.main import main
from unroll.evaluate.loading import load_for_eval
from unroll.published import FormatMismatch, ImportOptions, import_checkpoint, load_published
from unroll.published.admm_net import read_net_stage_mat
from unroll.reproduce.admm_net_published import _reconstruct, score

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PUB = DATA / "published" / "admm_net"


def _image(name: str) -> np.ndarray:
    with h5py.File(PUB / f"{name}.mat", "r") as f:
        return np.asarray(f["im_ori"]).T


def test_net_stage15_is_the_authors_network_to_1e_8_and_to_the_pixel():
    from PIL import Image

    model = load_published("zoo:admm_net", PUB / "net-stage15.mat", mask=20, data=DATA,
                           dtype=torch.float64)
    assert model.spec_name == "ADMM_Net_exact" and model.K == 17
    assert sum(p.numel() for p in model.parameters()) == 16256
    x = _image("Brain_data1")
    P = model.P.numpy()
    y = torch.as_tensor(P * np.fft.fft2(x, norm="ortho"))[None]
    with torch.no_grad():
        out, layers = model(y, return_layers=True)
    ref = np.load(PUB / "reference_reconstructions.npz")
    x_all = ref["Brain_data1_stage15_x_all"]
    assert len(layers) == len(x_all) == 18  # every X layer, the final one included
    for k, (got, want) in enumerate(zip(layers, x_all)):
        assert np.abs(got[0].numpy() - want).max() <= 1e-8, f"X layer {k + 1}"
    x_hat = out[0].numpy()
    assert np.abs(x_hat - ref["Brain_data1_stage15_rec"]).max() <= 1e-8
    png = np.asarray(Image.open(PUB / "rec_image.png").convert("L"), dtype=np.int64)
    rendered = np.round(np.clip(np.abs(x_hat), 0, 1) * 255).astype(np.int64)
    assert rendered.shape == png.shape and np.array_equal(rendered, png)
    psnr, rel = score(x_hat, x)
    assert round(psnr, 2) == 35.85 and round(rel, 4) == 0.0561


def test_import_cli_writes_a_checkpoint_that_eval_reads_as_the_exact_spec(tmp_path, capsys):
    out = tmp_path / "out.pt"
    code = main(["import", "zoo:admm_net", str(PUB / "net-stage7.mat"), "--mask", "20", "--data",
                 str(DATA), "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "admm_net_matconvnet" in text and "9 stages" in text
    saved = torch.load(out, map_location="cpu", weights_only=True)
    rec = saved["imported"]
    assert saved["spec"] == "zoo:admm_net_exact" and saved["K"] == 9
    assert rec["sha256"] == hashlib.sha256((PUB / "net-stage7.mat").read_bytes()).hexdigest()
    assert ["final.X.gamma", "layers.9.GH"] in rec["mapping"]
    assert ["stage0.Z.q", "layers.0.q"] in rec["mapping"]
    model, _ = load_for_eval("zoo:admm_net", out)  # the user's name; the checkpoint's spec is used
    assert model.spec_name == "ADMM_Net_exact" and model.K == 9
    weights = read_net_stage_mat(PUB / "net-stage7.mat")
    np.testing.assert_array_equal(model.layers[9].GH.detach().double().numpy(), weights["final.X.gamma"])
    np.testing.assert_array_equal(model.layers[3].q.detach().double().numpy(), weights["stage3.Z.q"].T)


def test_float32_import_stays_close_to_the_reference():
    model = load_published("zoo:admm_net_exact", PUB / "net-stage7.mat", mask_file=PUB / "mask_20.mat")
    assert next(model.parameters()).dtype == torch.float64  # the released weights are double
    model = load_published("zoo:admm_net_exact", PUB / "net-stage7.mat", mask_file=PUB / "mask_20.mat",
                           dtype=torch.float32)
    x_hat = _reconstruct(model, _image("Brain_data2"), torch.float32)
    ref = np.load(PUB / "reference_reconstructions.npz")["Brain_data2_stage7_rec"]
    assert np.abs(x_hat - ref).max() <= 1e-3


# ---- wrong files: a synthetic MATLAB v7.3 network written the way MATLAB stores a cell of structs ----
_SHAPES = {"X_org": [(8, 8), (1, 8)], "X_mid": [(8, 8), (1, 8)], "Convo": [(8, 8)],
           "Non_linorg": [(101, 8)], "Non_linmid": [(101, 8)], "Multi_org": [(1, 8)],
           "Multi_mid": [(1, 8)], "Multi_final": [(1, 8)], "loss": []}


def _write_net(path: Path, types: list[str], shapes: dict[int, list] | None = None) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        cells = []
        for i, kind in enumerate(types):
            g = refs.create_group(f"layer{i}")
            g["type"] = np.array([ord(c) for c in kind], dtype=np.uint16)[:, None]
            ws = []
            for j, shape in enumerate((shapes or {}).get(i, _SHAPES.get(kind, []))):
                d = refs.create_dataset(f"w{i}_{j}", data=rng.standard_normal(shape).T)  # stored transposed
                ws.append(d.ref)
            if ws:
                g.create_dataset("weights", data=np.array(ws, dtype=h5py.ref_dtype)[:, None])
            cells.append(g.ref)
        net = f.create_group("net")
        net.create_dataset("layers", data=np.array(cells, dtype=h5py.ref_dtype)[:, None])
    return path


_GOOD = ["X_org", "Convo", "Non_linorg", "Multi_org", "X_mid", "Convo", "Non_linmid", "Multi_final",
         "X_mid", "loss"]


def test_a_synthetic_two_stage_network_imports(tmp_path):
    path = _write_net(tmp_path / "net-stage0.mat", _GOOD)
    model, saved = import_checkpoint("zoo:admm_net", path,
                                     ImportOptions(checkpoint=path, mask_file=PUB / "mask_20.mat"))
    assert saved["K"] == 2 and model.unfolded.K == 3
    w = read_net_stage_mat(path)
    np.testing.assert_array_equal(model.layers[1].eta.detach().numpy().ravel(), w["stage1.M.eta"].ravel())
    np.testing.assert_array_equal(model.layers[2].rho.detach().numpy().ravel(), w["final.X.rho"].ravel())


@pytest.mark.parametrize("types, shapes, words", [
    (["X_org", "Non_linorg", "Convo", "Multi_org", "X_mid", "loss"], None,
     "net.layers{2} is 'Non_linorg' where the stage order puts 'Convo'"),
    (_GOOD, {0: [(8, 7), (1, 8)]}, "net.layers{1} (X_org) gamma has shape 8x7, expected 8x8"),
    (_GOOD, {6: [(100, 8)]}, "net.layers{7} (Non_linmid) q has shape 100x8, expected 101x8"),
    (_GOOD[:-2] + ["loss"], None, "has 9 layers; a Deep ADMM-Net with K stages has 4K + 2"),
    (_GOOD[:3] + ["relu"] + _GOOD[4:], None, "net.layers{4} has type 'relu'"),
])
def test_a_wrong_network_fails_naming_the_first_mismatch(tmp_path, types, shapes, words):
    path = _write_net(tmp_path / "net-stage9.mat", types, shapes)
    with pytest.raises(FormatMismatch) as e:
        load_published("zoo:admm_net", path, mask_file=PUB / "mask_20.mat")
    assert words in str(e.value) and "net-stage9.mat" in str(e.value)


def test_a_wrong_file_is_a_cli_error_not_a_traceback(tmp_path, capsys):
    code = main(["import", "zoo:admm_net", str(PUB / "Brain_data1.mat"), "--mask-file",
                 str(PUB / "mask_20.mat"), "-o", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "Brain_data1.mat: no variable net.layers (variables: im_ori)" in err
    assert "Traceback" not in err
    v5 = tmp_path / "net-stage1.mat"
    v5.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    code = main(["import", "zoo:admm_net", str(v5), "--mask-file", str(PUB / "mask_20.mat"), "-o",
                 str(tmp_path / "y.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "not a MATLAB v7.3 (HDF5) file" in err


def test_reproduce_published_prints_the_authors_table(tmp_path, capsys):
    d = tmp_path / "release" / "admm_net"
    d.mkdir(parents=True)
    for f in ("net-stage7.mat", "Brain_data1.mat", "Brain_data2.mat", "mask_20.mat",
              "reference_reconstructions.npz"):
        (d / f).symlink_to(PUB / f)  # only stage 7 here, to keep the test short
    code = main(["reproduce", "admm-net", "--published", str(tmp_path / "release"), "--out",
                 str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and "net-stage15.mat not found" in out
    rows = [line for line in out.splitlines() if line.startswith("Brain_data")]
    assert len(rows) == 2 and all("net-stage7" in r for r in rows)
    assert rows[0].count("35.60 / 0.0578") == 2 and rows[1].count("30.40 / 0.0957") == 2  # paper, ours
    import json
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert all(r["max_dx_float64"] <= 1e-8 and r["max_dx_float32"] <= 1e-3 for r in saved["rows"])
    assert "trained" not in saved  # no --budget, no training
