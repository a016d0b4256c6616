"""Compressive-sensing MRI (ADMM-Net's setting): y = P · F x with the orthonormal 2-D FFT F.

Images are real [h, w] float64 in [0, 1]: the chest training set (``mri/chest_train/im-*.mat``,
MATLAB v7.3 ``im_ori``) and the brain test set (``mri/brain_test/*.png``). Masks are {0, 1}
arrays read from ``mri/masks/mask_{percent}.mat`` with DC at the centre and returned UNSHIFTED
(DC at [0, 0], ``numpy.fft.ifftshift``), the layout ``torch.fft.fft2`` uses. Without a data
directory the modified Shepp–Logan phantom (randomly perturbed copies for training) and a
generated pseudo-radial mask are the built-in default.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .binding import bind_single_roles
from .checked import checked, open_image, read_mat, read_mat_v73
from .images import shepp_logan

__all__ = [
    "MRI_SIZE",
    "PAPER_MASKS",
    "radial_mask",
    "resize_mask",
    "load_mask",
    "shepp_logan_phantom",
    "downsample",
    "load_chest",
    "load_brain",
    "split_chest",
    "undersample",
    "zero_filled",
    "MRITask",
    "fits_mri",
]

MRI_SIZE = 256
PAPER_MASKS = (10, 20, 30, 40, 50)
_DEFAULT_NAMES = {"operator": "P", "measurement": "y", "target": "x_star"}
_ROLE_KINDS = {"operator": "operator_names", "measurement": "input_names", "target": "target_names"}
_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_GOLDEN_ANGLE = math.pi * (math.sqrt(5.0) - 1.0) / 2.0  # radial lines spread evenly for any count


def radial_mask(size: int, fraction: float) -> np.ndarray:
    """A centred pseudo-radial {0, 1} mask [size, size]: golden-angle lines through the centre,
    added until at least ``fraction`` of k-space is sampled."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sampled fraction must be in (0, 1], got {fraction}")
    mask = np.zeros((size, size), dtype=np.float64)
    c = size // 2
    t = np.arange(-size, size + 1) * 0.5
    target = math.ceil(fraction * size * size)
    j = 0
    while mask.sum() < target:
        a = j * _GOLDEN_ANGLE
        r = np.rint(c + t * math.sin(a)).astype(int)
        q = np.rint(c + t * math.cos(a)).astype(int)
        ok = (r >= 0) & (r < size) & (q >= 0) & (q < size)
        mask[r[ok], q[ok]] = 1.0
        j += 1
    return mask


def _block_mean(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[-2:]
    if h % size or w % size:
        raise ValueError(f"cannot block-average a {h}x{w} array to {size}x{size}: sides must divide")
    fh, fw = h // size, w // size
    return a.reshape(*a.shape[:-2], size, fh, size, fw).mean(axis=(-3, -1))


def resize_mask(centred: np.ndarray, size: int) -> np.ndarray:
    """A centred mask at ``size``: the coarse cells whose block covers the most samples, as many
    as keep the sampled fraction (ties go to lower frequencies), so radial masks stay radial."""
    if centred.shape == (size, size):
        return centred.copy()
    cover = _block_mean(centred, size)
    k = max(1, round(float(centred.mean()) * size * size))
    r, q = np.indices((size, size)) - size // 2
    order = np.lexsort(((r * r + q * q).ravel(), -cover.ravel()))
    out = np.zeros(size * size)
    out[order[:k]] = 1.0
    return out.reshape(size, size)


def load_mask(
    data_dir: str | os.PathLike | None, percent: int, size: int | None = None
) -> tuple[np.ndarray, str]:
    """(UNSHIFTED mask [s, s] float64 with DC at [0, 0], sentence saying where it came from).

    Reads ``mri/masks/mask_{percent}.mat`` (key ``mask``, DC at the centre) when present, else
    generates :func:`radial_mask`; ``size`` resamples it with :func:`resize_mask`.
    """
    path = Path(data_dir) / "mri" / "masks" / f"mask_{percent}.mat" if data_dir is not None else None
    if path is not None and path.is_file():
        centred = checked(read_mat(path, "mask"), path, "variable 'mask'", nonzero=True)
        src = f"mask {path}"
    else:
        where = f"{path} not found" if path is not None else "no data directory"
        centred = radial_mask(size or MRI_SIZE, percent / 100.0)
        src = f"generated golden-angle radial mask ({where})"
    if size is not None and centred.shape != (size, size):
        centred = resize_mask(centred, size)
        src += f" resampled to {size}x{size}"
    mask = np.fft.ifftshift(centred)
    return mask, f"{src}; sampled fraction {mask.mean():.3f}"


def shepp_logan_phantom(size: int = MRI_SIZE, rng: np.random.Generator | None = None) -> np.ndarray:
    """The modified Shepp–Logan phantom [size, size] in [0, 1] (randomly perturbed with ``rng``)."""
    return shepp_logan(size, rng)


def downsample(image: np.ndarray, size: int | None) -> np.ndarray:
    """Block-average [..., h, w] images to [..., size, size] (sides must divide); None keeps them."""
    return np.asarray(image, dtype=np.float64) if size is None else _block_mean(np.asarray(image), size)


def _number(path: Path) -> tuple[int, str]:
    m = re.search(r"(\d+)$", path.stem)
    return (int(m.group(1)) if m else -1, path.stem)


def load_chest(data_dir: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """The chest training images ``mri/chest_train/im-*.mat`` as (name, [256, 256]) in numeric order."""
    folder = Path(data_dir) / "mri" / "chest_train"
    files = sorted(folder.glob("im-*.mat"), key=_number)
    if not files:
        raise FileNotFoundError(f"no chest images im-*.mat in {folder}")
    return [(p.stem, checked(read_mat(p, "im_ori"), p, "variable 'im_ori'")) for p in files]


def load_brain(data_dir: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """The brain test images ``mri/brain_test/*.png`` as (name, uint8 / 255) in numeric order."""
    from PIL import Image

    folder = Path(data_dir) / "mri" / "brain_test"
    files = sorted(folder.glob("*.png"), key=_number)
    if not files:
        raise FileNotFoundError(f"no brain test PNGs in {folder}")
    out = []
    for p in files:
        with open_image(p) as im:
            out.append((p.stem, np.asarray(im.convert("L"), dtype=np.float64) / 255.0))
    return out


def split_chest(
    images: Sequence[tuple[str, np.ndarray]], val_every: int = 5
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(train, validation): every ``val_every``-th image (the 5th, 10th, ...) is held out.

    With the 100 chest images and the default this is 80 training / 20 validation images
    (the paper trained on 100 and tested on 50 other chest images that are not public).
    """
    if val_every < 2:
        raise ValueError(f"val_every must be at least 2, got {val_every}")
    train = [im for i, im in enumerate(images) if (i + 1) % val_every]
    val = [im for i, im in enumerate(images) if (i + 1) % val_every == 0]
    return train, val


def undersample(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """k-space data y = P · fft2(x) (orthonormal) of real images [..., h, w]; complex result."""
    return mask * torch.fft.fft2(x, norm="ortho")


def zero_filled(y: torch.Tensor) -> torch.Tensor:
    """The zero-filled reconstruction real(ifft2(y)) (orthonormal)."""
    return torch.fft.ifft2(y, norm="ortho").real


def fits_mri(program: Any) -> bool:
    """True for a checked spec with one real operator [h, w] (the mask), one complex input [h, w]
    (the k-space data) and one target [h, w]: what :class:`MRITask` trains."""
    ops, ins, tgs = (list(getattr(program, k).values()) for k in ("operators", "inputs", "targets"))
    return (len(ops) == 1 and len(ins) == 1 and len(tgs) == 1 and len(ops[0].shape) == 2
            and ops[0].dtype == "real" and ins[0].dtype == "complex" and len(ins[0].shape) == 2
            and len(tgs[0].shape) == 2)


def _model_dtype(model: Any) -> torch.dtype | None:
    params = getattr(model, "parameters", None)
    if not callable(params):
        return None
    return next((p.dtype for p in params() if p.dtype in _COMPLEX), None)


class MRITask:
    """Training stream and fixed validation set for CS-MRI with a fixed sampling mask.

    Batches are {measurement: [B, h, w] complex, target: [B, h, w] real}, keyed by the bound
    spec's names (default ``y``, ``x_star``); a batch depends only on the generator (the trainer
    seeds it from (seed, step)). Example::

        task = MRITask.from_data_dir("../shared/data", mask=20, size=64)
        model = unroll.compile("zoo:admm_net", K=15, **task.operators())
    """

    def __init__(
        self,
        train_images: Sequence[tuple[str, np.ndarray]],
        test_images: Sequence[tuple[str, np.ndarray]],
        mask: np.ndarray,
        dtype: torch.dtype = torch.float32,
        augment: bool = True,
        names: Mapping[str, str] | None = None,
        source: str = "",
        test_label: str = "validation",
    ) -> None:
        if dtype not in _COMPLEX:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        mask = np.asarray(mask, dtype=np.float64)
        shapes = {np.shape(im) for _, im in (*train_images, *test_images)}
        if not train_images or not test_images:
            raise ValueError("MRITask needs at least one training and one test image")
        if shapes != {mask.shape}:
            raise ValueError(f"image shapes {sorted(shapes)} must all equal the mask's {mask.shape}")
        self.train_images = list(train_images)
        self.test_images = list(test_images)
        self.mask = mask
        self.dtype = dtype
        self.augment = bool(augment)
        self.names = dict(_DEFAULT_NAMES if names is None else names)
        self.source = source
        self.test_label = test_label
        self._x = torch.as_tensor(np.stack([im for _, im in self.train_images]), dtype=dtype)
        self._mask_t = torch.as_tensor(mask, dtype=dtype)
        self._test: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_data_dir(
        cls,
        data_dir: str | os.PathLike | None,
        mask: int = 20,
        size: int | None = None,
        test: str = "chest-val",
        val_every: int = 5,
        seed: int = 0,
        **kwargs: Any,
    ) -> "MRITask":
        """Chest training split, ``test`` = 'chest-val' or 'brain', mask ``mask_{mask}`` and
        optional ``size`` downsampling; perturbed Shepp–Logan phantoms without data."""
        if test not in ("chest-val", "brain"):
            raise ValueError(f"test set must be 'chest-val' or 'brain', got {test!r}")
        P, mask_src = load_mask(data_dir, mask, size)
        chest = Path(data_dir) / "mri" / "chest_train" if data_dir is not None else None
        if chest is not None and chest.is_dir():
            train, val = split_chest(load_chest(data_dir), val_every)
            test_images = val if test == "chest-val" else load_brain(data_dir)
            src = f"chest {len(train)} train (every {val_every}th of {len(train) + len(val)} held out)"
            src += f"; test: {test} ({len(test_images)} images)"
        else:
            n = size or MRI_SIZE
            rng = np.random.default_rng(seed)
            train = [(f"phantom_{i:02d}", shepp_logan_phantom(n, rng)) for i in range(64)]
            test_images = [("shepp_logan", shepp_logan_phantom(n))]
            test_images += [(f"phantom_test_{i}", shepp_logan_phantom(n, rng)) for i in range(7)]
            where = f"{chest} not found" if chest is not None else "no data directory"
            src, test = f"64 perturbed Shepp–Logan phantoms for training, 8 for testing ({where})", "phantom"
        train = [(name, downsample(im, size)) for name, im in train]
        test_images = [(name, downsample(im, size)) for name, im in test_images]
        return cls(train, test_images, P, source=f"{src}; {mask_src}", test_label=test, **kwargs)

    @property
    def shape(self) -> tuple[int, int]:
        """Image side lengths (h, w)."""
        return self.mask.shape  # type: ignore[return-value]

    @property
    def train_size(self) -> int:
        """Number of training images (one epoch)."""
        return len(self.train_images)

    def describe(self) -> str:
        """One line for logs: size, sampled fraction, augmentation and data source."""
        h, w = self.shape
        aug = "flips" if self.augment else "no augmentation"
        return f"CS-MRI {h}x{w}, {100 * self.mask.mean():.1f}% sampled, {aug}; {self.source}"

    def bind(self, model_or_names: Any) -> "MRITask":
        """A copy keyed by the spec's names, in the model's precision; ValueError if roles don't fit."""
        names = bind_single_roles(model_or_names, "the CS-MRI task", _ROLE_KINDS)
        dtype = _model_dtype(model_or_names) or self.dtype
        return MRITask(self.train_images, self.test_images, self.mask, dtype, self.augment, names,
                       self.source, self.test_label)

    def operators(self) -> dict[str, np.ndarray]:
        """The unshifted mask keyed by the spec's operator name, for ``unroll.compile``."""
        return {self.names["operator"]: self.mask}

    def measure(self, x: torch.Tensor) -> torch.Tensor:
        """Undersampled k-space y = P · fft2(x) of images [B, h, w]."""
        return undersample(x, self._mask_t.to(device=x.device, dtype=x.real.dtype))

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A training batch of images drawn with replacement (randomly flipped when ``augment``)."""
        idx = torch.randint(len(self.train_images), (batch,), generator=generator)
        x = self._x[idx]
        if self.augment:
            flip = torch.rand((batch, 2, 1, 1), generator=generator) < 0.5
            x = torch.where(flip[:, 0], x.flip(-1), x)
            x = torch.where(flip[:, 1], x.flip(-2), x)
        return {self.names["measurement"]: self.measure(x), self.names["target"]: x}

    def test_set(self) -> dict[str, torch.Tensor]:
        """The fixed test images and their k-space (computed in float64, then cast); cached."""
        if self._test is None:
            x = torch.as_tensor(np.stack([im for _, im in self.test_images]), dtype=torch.float64)
            y = undersample(x, torch.as_tensor(self.mask))
            self._test = {
                self.names["measurement"]: y.to(_COMPLEX[self.dtype]),
                self.names["target"]: x.to(self.dtype),
            }
        return dict(self._test)

    def test_names(self) -> list[str]:
        """Names of the test images, in test-set order."""
        return [name for name, _ in self.test_images]
