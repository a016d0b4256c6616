"""CS-MRI data: mask files and their shift, k-space round trip, the chest split, downsampling,
the phantom default, and training a stand-in model on the task with the generic trainer."""
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from unroll.data.mri import (
    MRITask,
    downsample,
    load_brain,
    load_chest,
    load_mask,
    radial_mask,
    resize_mask,
    shepp_logan_phantom,
    split_chest,
    undersample,
    zero_filled,
)
from unroll.train import TrainConfig, train

DATA = Path(os.environ["UNROLL_DATA"])


class ZeroFilledScaled(nn.Module):
    """Stand-in with the compiled-model contract: x = s · real(ifft2(y)), one learnable scalar s."""

    def __init__(self, scale: float = 0.5, names=("P", "y", "x_star"), dtype=torch.float32):
        super().__init__()
        self.K = 1
        self.operator_names, self.input_names, self.target_names = (names[0],), (names[1],), (names[2],)
        self.output_names = ("x",)
        self.s = nn.Parameter(torch.tensor(scale, dtype=dtype))

    def forward(self, return_layers=False, upto=None, **inputs):
        x = self.s * torch.fft.ifft2(inputs[self.input_names[0]], norm="ortho").real
        return (x, [x]) if return_layers else x

    def loss(self, batch, upto=None):
        x, t = self(**{n: batch[n] for n in self.input_names}), batch[self.target_names[0]]
        return ((x - t) ** 2).sum(dim=(-2, -1)).div(t.pow(2).sum(dim=(-2, -1))).mean()

    def layer_parameters(self, k):
        return [self.s]

    def shared_parameters(self):
        return []


def test_mask_file_is_unshifted_with_dc_at_origin():
    with h5py.File(DATA / "mri" / "masks" / "mask_20.mat", "r") as f:
        centred = np.asarray(f["mask"]).T
    mask, source = load_mask(DATA, 20)
    assert "mask_20.mat" in source
    assert mask.shape == (256, 256) and set(np.unique(mask)) == {0.0, 1.0}
    assert centred[128, 128] == 1.0 and mask[0, 0] == 1.0
    np.testing.assert_array_equal(mask, np.fft.ifftshift(centred))
    assert abs(mask.mean() - 0.20) < 0.005
    for p in (10, 30, 40, 50):
        assert abs(load_mask(DATA, p)[0].mean() - p / 100) < 0.005


def test_generated_and_resampled_masks_keep_the_fraction():
    for frac in (0.1, 0.2, 0.5):
        m = radial_mask(64, frac)
        assert m[32, 32] == 1.0 and frac <= m.mean() < frac + 0.03
    centred = np.fft.fftshift(load_mask(DATA, 20)[0])
    small = resize_mask(centred, 32)
    assert small.shape == (32, 32) and small[16, 16] == 1.0
    assert abs(small.mean() - centred.mean()) < 1.0 / 32**2
    mask, source = load_mask(None, 30, size=32)
    assert mask[0, 0] == 1.0 and "generated" in source and abs(mask.mean() - 0.3) < 0.03


def test_kspace_round_trip_and_zero_filled():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((2, 16, 16)))
    full = undersample(x, torch.ones(16, 16, dtype=torch.float64))
    torch.testing.assert_close(zero_filled(full), x)
    torch.testing.assert_close(full.abs().pow(2).sum(), x.pow(2).sum())  # orthonormal FFT
    mask = load_mask(None, 20, size=16)[0]
    y = undersample(x, torch.as_tensor(mask))
    assert y.dtype == torch.complex128 and torch.all(y[:, mask == 0] == 0)
    expect = np.real(np.fft.ifft2(mask * np.fft.fft2(x.numpy())))
    np.testing.assert_allclose(zero_filled(y).numpy(), expect, atol=1e-12)


def test_chest_split_is_deterministic_and_disjoint():
    chest = load_chest(DATA)
    assert len(chest) == 100 and chest[0][0] == "im-01" and chest[-1][0] == "im-100"
    assert all(im.shape == (256, 256) and 0.0 <= im.min() and im.max() <= 1.0 for _, im in chest)
    train_a, val_a = split_chest(chest)
    train_b, val_b = split_chest(load_chest(DATA))
    names_t, names_v = [n for n, _ in train_a], [n for n, _ in val_a]
    assert names_t == [n for n, _ in train_b] and names_v == [n for n, _ in val_b]
    assert len(names_t) == 80 and len(names_v) == 20 and not set(names_t) & set(names_v)
    assert set(names_t) | set(names_v) == {n for n, _ in chest}


def test_brain_images_are_scaled_to_unit_range():
    brain = load_brain(DATA)
    assert len(brain) == 50 and brain[0][0] == "brain_test_01"
    from PIL import Image

    raw = np.asarray(Image.open(DATA / "mri" / "brain_test" / "brain_test_01.png"), dtype=np.float64)
    np.testing.assert_array_equal(brain[0][1], raw / 255.0)


def test_downsample_is_block_average():
    img = np.arange(64.0).reshape(8, 8)
    small = downsample(img, 4)
    assert small[0, 0] == (0 + 1 + 8 + 9) / 4 and small.mean() == img.mean()
    np.testing.assert_array_equal(downsample(img, None), img)
    with pytest.raises(ValueError, match="divide"):
        downsample(img, 3)


def test_phantom_default():
    ph = shepp_logan_phantom(64)
    assert ph.shape == (64, 64) and ph.min() == 0.0 and ph.max() == 1.0
    jittered = shepp_logan_phantom(64, np.random.default_rng(1))
    assert not np.array_equal(ph, jittered) and 0.0 <= jittered.min() and jittered.max() <= 1.0
    task = MRITask.from_data_dir(None, mask=20, size=32)
    assert task.train_size == 64 and "phantom" in task.describe()
    np.testing.assert_array_equal(task.test_images[0][1], shepp_logan_phantom(32))


def test_task_batches_are_deterministic_and_consistent():
    task = MRITask.from_data_dir(DATA, mask=20, size=32)
    assert task.train_size == 80 and task.shape == (32, 32)
    a = task.sample(6, torch.Generator().manual_seed(7))
    b = task.sample(6, torch.Generator().manual_seed(7))
    c = task.sample(6, torch.Generator().manual_seed(8))
    torch.testing.assert_close(a["y"], b["y"])
    assert not torch.equal(a["x_star"], c["x_star"])
    assert a["y"].dtype == torch.complex64 and a["x_star"].shape == (6, 32, 32)
    P = torch.as_tensor(task.operators()["P"], dtype=torch.float32)
    torch.testing.assert_close(a["y"], P * torch.fft.fft2(a["x_star"], norm="ortho"))
    test = task.test_set()
    assert test["y"].shape == (20, 32, 32) and task.test_names()[0] == "im-05"


def test_bind_renames_roles_and_follows_model_precision():
    task = MRITask.from_data_dir(DATA, mask=20, size=32)
    model = ZeroFilledScaled(names=("M", "kspace", "truth"), dtype=torch.float64)
    bound = task.bind(model)
    assert set(bound.operators()) == {"M"}
    batch = bound.sample(2, torch.Generator().manual_seed(0))
    assert set(batch) == {"kspace", "truth"} and batch["kspace"].dtype == torch.complex128
    assert bound.test_set()["truth"].dtype == torch.float64


def test_trainer_runs_on_the_task(tmp_path):
    task = MRITask.from_data_dir(DATA, mask=20, size=32)
    model = ZeroFilledScaled(0.5)
    config = TrainConfig(lr=0.05, batch_size=8, steps=30, eval_every=10, checkpoint_every=30,
                         schedule="const", out_dir=str(tmp_path / "run"))
    result = train(model, task, config, progress=False)
    first, last = result.log[0]["test_nmse_db"], result.layer_nmse_db[-1]
    assert result.steps == 30 and last < first
    assert abs(model.s.item() - 1.0) < 0.2  # the zero-filled image is the best scaled estimate near s = 1


def test_a_short_admm_net_training_run_on_8x8_data_lowers_the_loss(tmp_path):
    import unroll

    task = MRITask.from_data_dir(DATA, mask=20, size=8)
    torch.manual_seed(0)
    model = unroll.compile("zoo:admm_net", K=3, **task.operators())
    config = TrainConfig(lr=5e-3, batch_size=8, steps=40, eval_every=40, checkpoint_every=40,
                         schedule="const", out_dir=str(tmp_path / "admm"))
    bound = task.bind(model)
    batch = bound.sample(16, torch.Generator().manual_seed(123))
    before = model.loss(batch).item()
    train(model, task, config, progress=False)
    assert model.loss(batch).item() < before
