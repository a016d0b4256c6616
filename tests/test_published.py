"""Importing the papers' released weights (../shared/data/published): every format imports, a
wrong checkpoint is a located error, and imported ISTA-Net+ computes what the authors' phase does."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unroll.cli.main import main
from unroll.published import FormatMismatch, import_checkpoint, load_published

DATA = Path(os.environ["UNROLL_DATA"])
PUB = DATA / "published" / "ista_net"
pytestmark = pytest.mark.skipif(not PUB.is_dir(), reason="needs ../shared/data/published")


def _read_y(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float64)


def _reference_ista_net_plus(sd: dict, phi: np.ndarray, q: np.ndarray, img255: np.ndarray,
                             dtype: torch.dtype) -> np.ndarray:
    """The authors' test, written out with plain torch (README conventions): zero-pad to 33,
    raster blocks, x0 = y Qᵀ, 9 phases, reassemble, crop, clip."""
    sd = {k: v.to(dtype) for k, v in sd.items()}
    h, w = img255.shape
    pad = np.pad(img255, ((0, -h % 33), (0, -w % 33)))
    H, W = pad.shape
    cols = [pad[i:i + 33, j:j + 33].reshape(-1) for i in range(0, H, 33) for j in range(0, W, 33)]
    x_true = torch.tensor(np.stack(cols) / 255.0, dtype=dtype)
    Phi = torch.tensor(phi, dtype=dtype)
    Qinit = torch.tensor(q, dtype=dtype)
    y = x_true @ Phi.T
    PtP, PtB = Phi.T @ Phi, y @ Phi
    x = y @ Qinit.T
    for k in range(9):
        p = {n.split(".")[-1]: v for n, v in sd.items() if n.startswith(f"module.fcs.{k}.")}
        x = x - p["lambda_step"] * (x @ PtP) + p["lambda_step"] * PtB
        r = x.view(-1, 1, 33, 33)
        d = F.conv2d(r, p["conv_D"], padding=1)
        f = F.conv2d(F.relu(F.conv2d(d, p["conv1_forward"], padding=1)), p["conv2_forward"], padding=1)
        f = torch.sign(f) * F.relu(torch.abs(f) - p["soft_thr"])
        b = F.conv2d(F.relu(F.conv2d(f, p["conv1_backward"], padding=1)), p["conv2_backward"], padding=1)
        x = (r + F.conv2d(b, p["conv_G"], padding=1)).view(-1, 1089)
    out = np.zeros((H, W))
    n = 0
    for i in range(0, H, 33):
        for j in range(0, W, 33):
            out[i:i + 33, j:j + 33] = x[n].double().numpy().reshape(33, 33)
            n += 1
    return np.clip(out[:h, :w], 0.0, 1.0)


def test_ista_net_plus_25_on_one_set11_image_equals_the_authors_phase():
    from unroll.evaluate.blockcs import reconstruct_image
    from unroll.published.operators import read_mat

    img255 = _read_y(DATA / "images" / "set11" / "house.tif")
    sd = torch.load(PUB / "ista_net_plus_r25.pkl", map_location="cpu", weights_only=True)
    phi, q = read_mat(DATA / "cs_phi" / "phi_0_25_1089.mat"), read_mat(PUB / "Qinit_r25.mat")

    def psnr(rec):
        return 10 * np.log10(255.0**2 / np.mean((rec * 255 - img255) ** 2))

    for dtype, tol, db in ((torch.float64, 1e-10, 1e-8), (torch.float32, 1e-4, 1e-3)):
        model = load_published("zoo:ista_net_plus", PUB / "ista_net_plus_r25.pkl", ratio=25, data=DATA,
                               dtype=dtype)
        ref = _reference_ista_net_plus(sd, phi, q, img255, dtype)
        ours = reconstruct_image(model, phi, img255 / 255.0)
        assert np.max(np.abs(ours - ref)) < tol
        assert abs(psnr(ours) - psnr(ref)) < db
    assert 34.0 < psnr(ref) < 38.0  # house.tif at 25 %: a paper-level reconstruction, not a broken one


@pytest.mark.parametrize("spec,name,opts", [
    ("zoo:ista_net", "ista_net_r10.pkl", {"ratio": 10}),
    ("zoo:ista_net_plus", "ista_net_plus_r4.pkl", {}),  # ratio read from the file name
    ("zoo:ista_net_plus_mri", "mri_ista_net_plus_r30.pkl", {"mask": 30}),
])
def test_each_ista_format_imports_into_a_checkpoint_that_eval_loads(tmp_path, spec, name, opts):
    from unroll.evaluate.loading import load_for_eval
    from unroll.published import ImportOptions

    out = tmp_path / "ck.pt"
    model, saved = import_checkpoint(spec, PUB / name, ImportOptions(PUB / name, data=DATA, **opts), out=out)
    rec = saved["imported"]
    assert rec["source_file"] == name and len(rec["sha256"]) == 64 and rec["stages"] == 9
    assert saved["K"] == 9 and saved["spec"] == spec
    sd = torch.load(PUB / name, map_location="cpu", weights_only=True)
    first = rec["mapping"][0]
    assert torch.equal(saved["model"][first[1]].reshape(-1), sd["module." + first[0]].reshape(-1))
    loaded = torch.load(out, map_location="cpu", weights_only=True)
    again, _ = load_for_eval(spec, out)
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    assert set(loaded["model"]) == set(model.state_dict())


def _save(tmp_path: Path, sd: dict, name: str = "bad_r25.pkl") -> Path:
    path = tmp_path / name
    torch.save(sd, path)
    return path


def test_wrong_checkpoints_name_the_first_mismatch(tmp_path):
    sd = torch.load(PUB / "ista_net_plus_r25.pkl", map_location="cpu", weights_only=True)
    kw = {"ratio": 25, "data": DATA, "qinit": PUB / "Qinit_r25.mat"}
    # ISTA-Net weights given as ISTA-Net+: the missing key is named, the right format suggested
    with pytest.raises(FormatMismatch, match=r"missing key 'fcs.0.conv_D' \(stage 1 of 9\).*'ista_net'"):
        load_published("zoo:ista_net_plus", PUB / "ista_net_r25.pkl", **kw)
    bad = dict(sd)
    bad["module.fcs.3.conv_G"] = torch.zeros(1, 32, 5, 5)
    with pytest.raises(FormatMismatch, match=r"'fcs.3.conv_G' has shape \[1, 32, 5, 5\].*\[1, 32, 3, 3\]"):
        load_published("zoo:ista_net_plus", _save(tmp_path, bad), **kw)
    bad = dict(sd, **{"module.fcs.0.extra_bias": torch.zeros(32)})
    with pytest.raises(FormatMismatch, match=r"unknown key 'fcs.0.extra_bias'"):
        load_published("zoo:ista_net_plus", _save(tmp_path, bad), **kw)
    bad = {k: v for k, v in sd.items() if not k.startswith("module.fcs.4.")}  # a stage gap
    with pytest.raises(FormatMismatch, match=r"missing key 'fcs.4.lambda_step' \(stage 5 of 9\)"):
        load_published("zoo:ista_net_plus", _save(tmp_path, bad), **kw)
    with pytest.raises(FormatMismatch, match="9 stages"):
        import_checkpoint("zoo:ista_net_plus", PUB / "ista_net_plus_r25.pkl", None, K=7)
    with pytest.raises(ValueError, match="no released-checkpoint format imports into zoo:lista"):
        load_published("zoo:lista", PUB / "ista_net_plus_r25.pkl", **kw)


def test_import_cli_writes_the_checkpoint_and_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "out.pt"
    assert main(["import", "zoo:ista_net", str(PUB / "ista_net_r1.pkl"), "--ratio", "1", "--data", str(DATA),
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "format ista_net, 9 stages" in text and "Qinit_r1.mat" in text and out.is_file()
    (tmp_path / "junk_r1.pkl").write_bytes(b"not a pickle at all")
    assert main(["import", "zoo:ista_net", str(tmp_path / "junk_r1.pkl"), "--data", str(DATA),
                 "--qinit", str(PUB / "Qinit_r1.mat"), "-o", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "junk_r1.pkl: not a PyTorch state dict" in err and "Traceback" not in err
    # weights for 1 % with the operators of 25 %: refused, not silently mixed
    assert main(["import", "zoo:ista_net", str(PUB / "ista_net_r1.pkl"), "--ratio", "25", "--data", str(DATA),
                 "-o", str(tmp_path / "y.pt")]) == 2
    err = capsys.readouterr().err
    assert "ratio 1" in err and "--ratio 25" in err and "Traceback" not in err
    assert not (tmp_path / "y.pt").exists()


def test_ista_net_plus_mri_spec_equals_the_authors_mri_phase():
    """zoo:ista_net_plus_mri with released weights on a small random problem (the convs do not
    depend on the size) against the README's phase in plain torch: unnormalised fft2/ifft2 pair,
    x0 = PhiTb, x = x - rho A x + rho PhiTb, float64."""
    import unroll

    sd = {k.removeprefix("module."): v.double()
          for k, v in torch.load(PUB / "mri_ista_net_plus_r30.pkl", map_location="cpu", weights_only=True).items()}
    rng = np.random.default_rng(0)
    mask = (rng.random((24, 24)) < 0.4).astype(np.float64)
    mask[0, 0] = 1.0
    x_true = torch.tensor(rng.random((2, 24, 24)))
    M = torch.tensor(mask)
    A = lambda v: torch.fft.ifft2(M * torch.fft.fft2(v)).real  # noqa: E731
    ptb = A(x_true)
    x = ptb.clone()
    for k in range(9):
        p = {n.split(".")[-1]: v for n, v in sd.items() if n.startswith(f"fcs.{k}.")}
        x = x - p["lambda_step"] * A(x) + p["lambda_step"] * ptb
        r = x.unsqueeze(1)
        d = F.conv2d(r, p["conv_D"], padding=1)
        f = F.conv2d(F.relu(F.conv2d(d, p["conv1_forward"], padding=1)), p["conv2_forward"], padding=1)
        f = torch.sign(f) * F.relu(torch.abs(f) - p["soft_thr"])
        b = F.conv2d(F.relu(F.conv2d(f, p["conv1_backward"], padding=1)), p["conv2_backward"], padding=1)
        x = (r + F.conv2d(b, p["conv_G"], padding=1)).squeeze(1)
    from unroll.published.ista import ISTA_NET_PLUS_MRI
    from unroll.published.importer import map_weights

    _, mapped, _ = map_weights(ISTA_NET_PLUS_MRI, sd, "mri")
    model = unroll.compile("zoo:ista_net_plus_mri", dtype=torch.float64, P=mask)
    model.load_state_dict({**model.state_dict(), **{k: v.reshape(model.state_dict()[k].shape) for k, v in mapped.items()}})
    y = M * torch.fft.fft2(x_true, norm="ortho")  # the MRI task's measurement
    ours = model(y=y)
    assert torch.max(torch.abs(ours - x)) < 1e-10


def _model(tmp_path):
    from unroll.published import ImportOptions

    ck = PUB / "ista_net_plus_r25.pkl"
    model, saved = import_checkpoint("zoo:ista_net_plus", ck, ImportOptions(ck, data=DATA), out=tmp_path / "ck.pt")
    return model, tmp_path / "ck.pt"


def test_eval_images_reads_odd_images_and_writes_the_json(tmp_path, capsys):
    from PIL import Image
    import scipy.io

    from unroll.evaluate.folder import read_image

    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    Image.fromarray(grey).save(d / "grey.png")
    rgb = rng.integers(0, 256, (35, 34, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / "colour.bmp")
    Image.fromarray(np.dstack([rgb, np.full((35, 34), 7, np.uint8)])).save(d / "alpha.png")
    Image.fromarray((grey.astype(np.uint16) * 257)).save(d / "deep16.png")
    scipy.io.savemat(d / "im.mat", {"im_ori": grey[:33, :33] / 255.0, "note": np.zeros(3)})
    # readers: 16-bit scaled by 65535, colour -> 8-bit-rounded BT.601 Y, alpha dropped, .mat im_ori
    assert np.array_equal(read_image(d / "deep16.png"), grey / 255.0)
    y = read_image(d / "colour.bmp") * 255
    assert np.array_equal(y, np.rint(y)) and np.max(np.abs(y - rgb @ np.array([0.299, 0.587, 0.114]))) < 0.51  # fixed-point weights
    assert np.array_equal(read_image(d / "alpha.png"), read_image(d / "colour.bmp"))
    assert np.allclose(read_image(d / "im.mat"), grey[:33, :33] / 255.0)
    _, ck = _model(tmp_path)
    out = tmp_path / "s.json"
    assert main(["eval", "zoo:ista_net_plus", "--ckpt", str(ck), "--images", str(d), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SSIM: skimage" in text and "grey.png" in text and "40x50" in text
    j = json.loads(out.read_text())
    assert set(j) == {"mean_psnr", "mean_ssim", "images"}
    assert [set(i) for i in j["images"]] == [{"name", "psnr", "ssim"}] * 5
    assert [i["name"] for i in j["images"]] == sorted(p.name for p in d.iterdir())
    assert abs(j["mean_psnr"] - np.mean([i["psnr"] for i in j["images"]])) < 1e-12
    # a too-small image is a clear error (exit 2, no traceback), naming the file
    Image.fromarray(grey[:5, :5]).save(d / "tiny.png")
    assert main(["eval", "zoo:ista_net_plus", "--ckpt", str(ck), "--images", str(d)]) == 2
    err = capsys.readouterr().err
    assert "tiny.png" in err and "at least 7" in err and "Traceback" not in err
    (d / "tiny.png").unlink()
    scipy.io.savemat(d / "two.mat", {"a": np.zeros((9, 9)), "b": np.ones((9, 9))})
    assert main(["eval", "zoo:ista_net_plus", "--ckpt", str(ck), "--images", str(d)]) == 2
    assert "two.mat" in capsys.readouterr().err


def test_uniform_ssim_equals_scikit_image_default():
    skm = pytest.importorskip("skimage.metrics")
    from unroll.evaluate.folder import ssim_uniform

    rng = np.random.default_rng(1)
    a = rng.random((37, 45)) * 255
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert abs(ssim_uniform(a, b, 255.0) - skm.structural_similarity(a, b, data_range=255)) < 1e-12


def test_train_init_takes_the_checkpoint_weights_and_its_qinit(tmp_path):
    import unroll
    from unroll.train.warm_start import load_init, operators_with_init, read_init

    model, ck = _model(tmp_path)
    init = read_init(ck)
    assert init.K == 9 and init.spec == "zoo:ista_net_plus"
    phi = model.Phi.double().numpy()
    ops, notes = operators_with_init({"Phi": phi, "Q": np.zeros((1089, 272))}, init, {"Phi"})
    assert np.allclose(ops["Q"], model.Q.double().numpy()) and "operator Q" in notes[0]
    with pytest.raises(ValueError, match="operator Phi .* differs"):
        operators_with_init({"Phi": phi[:200], "Q": ops["Q"]}, init, {"Phi"})
    fresh = unroll.compile("zoo:ista_net_plus", **ops)
    load_init(fresh, init)
    assert torch.equal(fresh.state_dict()["layers.8.G.0.weight"], model.state_dict()["layers.8.G.0.weight"])
    with pytest.raises(ValueError, match="no entry for the model's 'layers.9.rho'"):
        load_init(unroll.compile("zoo:ista_net_plus", K=10, **ops), init)


def test_ista_net_spec_equals_the_authors_phase_on_random_blocks():
    """zoo:ista_net with the released 10 % weights against ISTA-Net's phase in plain torch (float64):
    r = x - rho x PhiᵀPhi + rho Phiᵀy; x = F~(soft(F(r), theta)), F = conv|relu|conv, 33x33 row-major."""
    from unroll.published.operators import read_mat

    import unroll

    model = unroll.zoo.load_published("zoo:ista_net", PUB / "ista_net_r10.pkl", data=DATA, dtype=torch.float64)
    sd = {k.removeprefix("module."): v.double()
          for k, v in torch.load(PUB / "ista_net_r10.pkl", map_location="cpu", weights_only=True).items()}
    Phi = torch.tensor(read_mat(DATA / "cs_phi" / "phi_0_10_1089.mat"))
    Q = torch.tensor(read_mat(PUB / "Qinit_r10.mat"))
    blocks = torch.tensor(np.random.default_rng(2).random((5, 1089)))
    y = blocks @ Phi.T
    x = y @ Q.T
    for k in range(9):
        p = {n.split(".")[-1]: v for n, v in sd.items() if n.startswith(f"fcs.{k}.")}
        x = x - p["lambda_step"] * (x @ (Phi.T @ Phi)) + p["lambda_step"] * (y @ Phi)
        f = F.conv2d(F.relu(F.conv2d(x.view(-1, 1, 33, 33), p["conv1_forward"], padding=1)), p["conv2_forward"], padding=1)
        f = torch.sign(f) * F.relu(torch.abs(f) - p["soft_thr"])
        x = F.conv2d(F.relu(F.conv2d(f, p["conv1_backward"], padding=1)), p["conv2_backward"], padding=1).view(-1, 1089)
    assert torch.max(torch.abs(model(y=y) - x)) < 1e-10


def test_reproduce_ista_net_published_prints_the_paper_row(tmp_path, capsys):
    """The command on a one-image test folder: the row holds the paper's and the authors' numbers and
    our PSNR, which equals `unroll eval --images` on the same folder."""
    from PIL import Image

    data = tmp_path / "data"
    (data / "images" / "set11").mkdir(parents=True)
    (data / "cs_phi").symlink_to(DATA / "cs_phi")
    Image.fromarray(_read_y(DATA / "images" / "set11" / "house.tif")[100:140, 60:110].astype(np.uint8)).save(
        data / "images" / "set11" / "crop.png")
    pub = tmp_path / "published" / "ista_net"
    pub.mkdir(parents=True)
    for name in ("ista_net_plus_r25.pkl", "Qinit_r25.mat"):
        (pub / name).symlink_to(PUB / name)
    out = tmp_path / "out"
    assert main(["reproduce", "ista-net", "--published", str(pub.parent), "--data", str(data), "--ratios", "25",
                 "--networks", "ista_net_plus", "--mri-ratios", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("ISTA-Net+ "))
    assert "25%" in row and "32.57" in row and "32.44" in row
    rec = json.loads((out / "published.json").read_text())
    assert [r["ratio"] for r in rec["rows"]] == [25] and rec["rows"][0]["images"][0]["name"] == "crop.png"
    ck = tmp_path / "ck.pt"
    from unroll.published import ImportOptions

    import_checkpoint("zoo:ista_net_plus", pub / "ista_net_plus_r25.pkl",
                      ImportOptions(pub / "ista_net_plus_r25.pkl", data=data), out=ck)
    assert main(["eval", "zoo:ista_net_plus", "--ckpt", str(ck), "--images", str(data / "images" / "set11"),
                 "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["mean_psnr"] == rec["rows"][0]["psnr"]
