"""Natural image patches for sparse coding (LISTA's Table 1 setting): small square patches cut from
the luminance of T91 (training) and Set11 (test), or from built-in synthetic images, with the
per-patch mean removed and one global scale, and a task that pairs them with fixed target codes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .binding import bind_single_roles
from .blockcs import cut_blocks
from .images import load_folder, synthetic_images

__all__ = ["PatchSet", "load_patch_images", "make_patches", "PatchCodeTask"]

_ROLE_KINDS = {"measurement": "input_names", "target": "target_names"}


def load_patch_images(data_dir: str | os.PathLike | None, seed: int = 0
                      ) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """(training images, test images, sentence): T91 and Set11 luminance from ``data_dir``/images,
    else built-in synthetic images (12 of 128x128 to train, 4 of 100x100 to test), said so."""
    root = Path(data_dir) / "images" if data_dir is not None else None
    parts = []
    for name, count, size, offset in (("t91", 12, 128, 0), ("set11", 4, 100, 1)):
        folder = root / name if root is not None else None
        if folder is not None and folder.is_dir():
            images = [im for _, im in load_folder(folder)]
            parts.append(f"{name}: {len(images)} images in {folder} (BT.601 luminance)")
        else:
            why = f"{folder} not found" if folder is not None else "no data directory"
            images = [im for _, im in synthetic_images(count, size, seed=seed + offset)]
            parts.append(f"{name}: {count} BUILT-IN synthetic {size}x{size} images ({why})")
        if name == "t91":
            train = images
        else:
            test = images
    return train, test, "; ".join(parts)


@dataclass(frozen=True)
class PatchSet:
    """Training and test patches as rows [N, size²] (float64), preprocessed, and how."""

    train: np.ndarray
    test: np.ndarray
    size: int
    scale: float  # the global divisor applied after mean removal
    source: str

    @property
    def preprocessing(self) -> str:
        """One sentence for the output and the docs."""
        return (f"{self.size}x{self.size} patches of luminance in [0, 1] at uniformly random positions; "
                f"per-patch mean removed; every patch divided by one global scale {self.scale:.6g} "
                "(the pixel standard deviation of the mean-removed training patches), so training "
                "pixels have unit variance; no whitening, no contrast normalisation")


def make_patches(data_dir: str | os.PathLike | None, size: int = 10, n_train: int = 20000,
                 n_test: int = 2000, seed: int = 0) -> PatchSet:
    """Cut ``n_train`` patches from the training images and ``n_test`` from the test images, remove
    each patch's mean and divide all by the training pixels' standard deviation."""
    if size < 2 or n_train < 1 or n_test < 1:
        raise ValueError(f"need patch size >= 2 and at least one training and test patch, got size {size}, "
                         f"{n_train} training, {n_test} test")
    train_imgs, test_imgs, source = load_patch_images(data_dir, seed)
    train = cut_blocks(train_imgs, n_train, seed=seed, block=size).astype(np.float64)
    test = cut_blocks(test_imgs, n_test, seed=seed + 1, block=size).astype(np.float64)
    train -= train.mean(axis=1, keepdims=True)
    test -= test.mean(axis=1, keepdims=True)
    scale = float(train.std())
    if not scale > 0:
        raise ValueError("the training patches are all flat (zero variance after mean removal)")
    return PatchSet(train / scale, test / scale, size, scale, source)


class PatchCodeTask:
    """Fixed (patch, target code) pairs for ``unroll.train``: batches drawn with replacement from the
    training pairs, the test pairs as the fixed test set; ``bind`` maps onto the spec's names."""

    def __init__(self, train_y: Any, train_z: Any, test_y: Any, test_z: Any,
                 dtype: torch.dtype = torch.float32, names: Mapping[str, str] | None = None,
                 source: str = "") -> None:
        self._data = [torch.as_tensor(np.asarray(a), dtype=dtype) for a in (train_y, train_z, test_y, test_z)]
        ty, tz, vy, vz = self._data
        if ty.ndim != 2 or tz.ndim != 2 or ty.shape[0] != tz.shape[0] or vy.shape[0] != vz.shape[0] \
                or vy.shape[1:] != ty.shape[1:] or vz.shape[1:] != tz.shape[1:]:
            raise ValueError(f"patches and codes must be [N, n] and [N, m] with matching N and sizes, got "
                             f"train {tuple(ty.shape)} / {tuple(tz.shape)}, test {tuple(vy.shape)} / {tuple(vz.shape)}")
        self.names = dict(names or {"measurement": "y", "target": "x_star"})
        self.source = source
        self.train_size = int(ty.shape[0])

    def describe(self) -> str:
        """One line for logs."""
        ty, tz, vy, _ = self._data
        return (f"patch codes: {ty.shape[0]} training / {vy.shape[0]} test patches of length {ty.shape[1]}, "
                f"codes of length {tz.shape[1]}" + (f"; {self.source}" if self.source else ""))

    def bind(self, model_or_names: Any) -> "PatchCodeTask":
        """A copy whose batches use the spec's input and target names."""
        other = object.__new__(PatchCodeTask)
        other.__dict__.update(self.__dict__)
        other.names = bind_single_roles(model_or_names, "the patch-code task", _ROLE_KINDS)
        return other

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``batch`` training pairs drawn uniformly with replacement (determined by ``generator``)."""
        idx = torch.randint(0, self.train_size, (batch,), generator=generator)
        return {self.names["measurement"]: self._data[0][idx], self.names["target"]: self._data[1][idx]}

    def test_set(self) -> dict[str, torch.Tensor]:
        """All test pairs."""
        return {self.names["measurement"]: self._data[2], self.names["target"]: self._data[3]}
