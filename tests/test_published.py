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
