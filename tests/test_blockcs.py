"""Block-CS data: luminance, Φ loading/generation, block splitting, Q, the task with the trainer."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image

from blockcs_standin import TinyBlockCS
from unroll.data import TaskBindingError
from unroll.data.blockcs import (
    BlockCSTask,
    blocks_to_image,
    cut_blocks,
    image_to_blocks,
    init_matrix,
    load_block_images,
    load_phi,
    measurements_for_ratio,
    orthonormal_rows,
    pad_to_blocks,
)
from unroll.data.images import load_grey, luminance, shepp_logan, synthetic_images
from unroll.train import TrainConfig, train

DATA = Path(os.environ["UNROLL_DATA"])


def test_luminance_bt601_full_and_studio_range():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], dtype=np.uint8)
    assert np.allclose(luminance(rgb)[0], [0.299 * 255, 0.587 * 255, 0.114 * 255, 255, 0])
    studio = luminance(rgb, studio=True)[0]
    assert studio[3] == pytest.approx(235.0, abs=1e-3) and studio[4] == pytest.approx(16.0)
    assert studio[0] == pytest.approx(16 + 65.481, abs=1e-9)


def test_load_grey_rgb_palette_and_grey(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.png")
    expected = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
    assert np.allclose(load_grey(tmp_path / "c.png"), expected)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.tif")
    Image.fromarray(grey, "L").convert("P").save(tmp_path / "p.tif")  # grey palette, like Parrots/foreman
    assert np.array_equal(load_grey(tmp_path / "g.tif"), grey / 255.0)
    assert np.array_equal(load_grey(tmp_path / "p.tif"), grey / 255.0)


def test_set11_palette_images_are_grey_values():
    img = load_grey(DATA / "images" / "set11" / "Parrots.tif")
    with Image.open(DATA / "images" / "set11" / "Parrots.tif") as im:
        assert im.mode == "P"
        ref = np.asarray(im.convert("L"), dtype=np.float64) / 255
    assert img.shape == (256, 256) and np.array_equal(img, ref)


def test_phi_from_file_has_orthonormal_rows():
    phi, source = load_phi(DATA, 25)
    assert phi.shape == (272, 1089) and "phi_0_25_1089.mat" in source and "GENERATED" not in source
    assert np.allclose(phi @ phi.T, np.eye(272), atol=1e-8)


@pytest.mark.parametrize("ratio, rows", [(1, 10), (4, 43), (10, 109), (25, 272), (30, 327), (40, 436), (50, 545), (20, 218)])
def test_measurements_for_ratio(ratio, rows):
    assert measurements_for_ratio(ratio) == rows


def test_generated_phi_is_row_orthonormal_seeded_and_announced(tmp_path):
    phi, source = load_phi(DATA, 50, seed=3)
    assert phi.shape == (545, 1089) and "GENERATED" in source and "50%" in source
    assert np.allclose(phi @ phi.T, np.eye(545), atol=1e-10)
    assert np.array_equal(phi, load_phi(tmp_path, 50, seed=3)[0])
    assert not np.array_equal(phi, load_phi(None, 50, seed=4)[0])
    small = orthonormal_rows(5, 12, seed=1)
    assert np.allclose(small @ small.T, np.eye(5))


def test_block_split_known_layout():
    img = np.arange(40 * 70, dtype=np.float64).reshape(40, 70)
    blocks, padded = image_to_blocks(img)
    assert padded == (66, 99) and blocks.shape == (2 * 3, 1089)
    assert np.array_equal(blocks[0], img[:33, :33].reshape(-1))  # row-major within a block
    assert np.array_equal(blocks[1], img[:33, 33:66].reshape(-1))  # row-major block order
    assert np.array_equal(blocks[3].reshape(33, 33)[:7, :33], img[33:40, :33])
    assert not blocks[3].reshape(33, 33)[7:].any()  # zero padding at the bottom
    assert pad_to_blocks(np.ones((33, 66))).shape == (33, 66)  # exact multiples: no padding


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 120), w=st.integers(1, 120), seed=st.integers(0, 2**16))
def test_block_split_and_reassembly_is_lossless(h, w, seed):
    img = np.random.default_rng(seed).random((h, w))
    blocks, padded = image_to_blocks(img)
    assert padded[0] % 33 == 0 and padded[1] % 33 == 0 and padded[0] - h < 33 and padded[1] - w < 33
    assert np.array_equal(blocks_to_image(blocks, padded, img.shape), img)


def test_cut_blocks_deterministic_and_real_windows():
    img = np.arange(50 * 60, dtype=np.float64).reshape(50, 60)
    a = cut_blocks([img, np.ones((10, 10))], 40, seed=5)  # the too-small image is skipped
    assert np.array_equal(a, cut_blocks([img], 40, seed=5)) and a.dtype == np.float32
    for b in a:
        r, c = divmod(int(b[0]), 60)
        assert np.array_equal(b, img[r : r + 33, c : c + 33].reshape(-1))


def test_q_matches_direct_least_squares():
    rng = np.random.default_rng(0)
    x = rng.random((400, 1089))
    phi = orthonormal_rows(30, 1089, seed=2)
    q = init_matrix(phi, x)
    y = x @ phi.T
    direct = np.linalg.lstsq(y, x, rcond=None)[0].T  # min ||Q Y - X|| over the training blocks
    assert q.shape == (1089, 30) and np.allclose(q, direct, atol=1e-8)
    xc, yc = x.T, y.T  # the paper's column form Q = X Yᵀ (Y Yᵀ)⁻¹
    assert np.allclose(q, xc @ yc.T @ np.linalg.inv(yc @ yc.T), atol=1e-8)


def test_builtin_images_when_no_data_dir():
    train_imgs, test_imgs, source = load_block_images(None)
    assert "BUILT-IN" in source and len(train_imgs) == 12 and len(test_imgs) == 4
    assert all(im.min() >= 0 and im.max() <= 1 for _, im in train_imgs + test_imgs)
    assert shepp_logan(64).shape == (64, 64)
    assert np.array_equal(synthetic_images(3, 40, 7)[2][1], synthetic_images(3, 40, 7)[2][1])


def _small_task(**kw):
    return BlockCSTask.from_data_dir(None, ratio=25, n_blocks=512, **kw)


def test_task_batches_operators_and_describe():
    task = _small_task(test_blocks=10)
    g = lambda s: torch.Generator().manual_seed(s)
    b1, b2 = task.sample(8, g(1)), task.sample(8, g(1))
    assert b1["y"].shape == (8, 272) and b1["x_star"].shape == (8, 1089)
    assert torch.equal(b1["x_star"], b2["x_star"]) and not torch.equal(b1["x_star"], task.sample(8, g(2))["x_star"])
    assert torch.allclose(b1["y"], b1["x_star"] @ torch.as_tensor(task.phi, dtype=torch.float32).T)
    ops = task.operators()
    assert set(ops) == {"Phi", "Q"} and ops["Q"].shape == (1089, 272)
    assert task.test_set()["y"].shape == (10, 272) and task.train_size == 512
    assert "ratio 25%" in task.describe() and "GENERATED" in task.describe() and task.generated_phi


def test_task_bind_names_and_errors():
    task = _small_task()
    names = {"operator_names": ("A",), "input_names": ("b",), "target_names": ("u",)}
    bound = task.bind(names)
    assert set(bound.operators()) == {"A"} and set(bound.sample(2, torch.Generator())) == {"b", "u"}
    with pytest.raises(TaskBindingError, match="also declares W"):
        task.bind({"operator_names": ("Phi", "Q", "W"), "input_names": ("y",), "target_names": ("x",)})
    with pytest.raises(TaskBindingError, match="exactly one input"):
        task.bind({"operator_names": ("Phi",), "input_names": (), "target_names": ("x",)})


def test_task_trains_with_the_generic_trainer(tmp_path):
    task = _small_task(test_blocks=64)
    ops = task.operators()
    model = TinyBlockCS(ops["Phi"], ops["Q"], K=2, conv_init=0.1)
    test = task.bind(model).test_set()
    with torch.no_grad():
        before = float(model.loss(test))
    cfg = TrainConfig(lr=0.01, steps=12, batch_size=16, eval_every=6, out_dir=str(tmp_path), schedule="const")
    result = train(model, task, cfg, progress=False)
    with torch.no_grad():
        after = float(model.loss(test))
    assert result.steps == 12 and after < before
    assert len(result.layer_nmse_db) == 2
