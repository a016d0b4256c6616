"""Block compressive sensing (ISTA-Net's setting): y = Φ x for each 33×33 block x of an image.

Training blocks are cut at random from the luminance of the T91 images, Φ is read from
``cs_phi/phi_0_{ratio}_1089.mat`` (or generated with orthonormal rows and said so), and the
initialisation matrix Q = X Yᵀ(Y Yᵀ)⁻¹ is the least-squares map from the training blocks'
measurements back to the blocks. Blocks are vectorised row-major (NumPy ``reshape(-1)``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .binding import TaskBindingError, spec_names
from .checked import checked, read_mat
from .images import load_folder, synthetic_images

__all__ = [
    "BLOCK",
    "PAPER_RATIOS",
    "PAPER_BLOCKS",
    "measurements_for_ratio",
    "orthonormal_rows",
    "load_phi",
    "sampling_operator",
    "phi_file",
    "pad_to_blocks",
    "image_to_blocks",
    "blocks_to_image",
    "cut_blocks",
    "block_gram",
    "init_matrix",
    "load_block_images",
    "load_test_images",
    "BlockCSTask",
]

BLOCK = 33
PAPER_RATIOS = (1, 4, 10, 25, 30, 40)
PAPER_BLOCKS = 88912  # ISTA-Net's Training_Data: 88,912 blocks of 33×33 from T91
# Rows of ISTA-Net's sampling matrices (its n_output table; 50 % has no file and is generated).
_ROWS = {1: 10, 4: 43, 10: 109, 25: 272, 30: 327, 40: 436, 50: 545}
_DEFAULT_NAMES = {"sampling": "Phi", "init": "Q", "measurement": "y", "target": "x_star"}


def measurements_for_ratio(ratio: float, n: int = BLOCK * BLOCK) -> int:
    """M for a CS ratio in percent: ISTA-Net's table for 33×33 blocks, else round-half-up of ratio·n."""
    if not 0 < ratio <= 100:
        raise ValueError(f"CS ratio must be a percentage in (0, 100], got {ratio}")
    if n == BLOCK * BLOCK and float(ratio).is_integer() and int(ratio) in _ROWS:
        return _ROWS[int(ratio)]
    return max(1, math.floor(ratio / 100.0 * n + 0.5))


def orthonormal_rows(m: int, n: int, seed: int = 0) -> np.ndarray:
    """An [m, n] Gaussian matrix with orthonormal rows (Φ Φᵀ = I), deterministic in ``seed``."""
    if not 0 < m <= n:
        raise ValueError(f"need 0 < m <= n for orthonormal rows, got m={m}, n={n}")
    g = np.random.default_rng(seed).standard_normal((n, m))
    q, r = np.linalg.qr(g)
    return (q * np.sign(np.diag(r))).T.copy()  # sign fix: the Haar-distributed orthonormal frame


def sampling_operator(operator_names: Sequence[str], only: bool = True) -> str | None:
    """Block CS's sampling operator among a spec's operators: the one named Phi (ISTA-Net's Φ),
    else (with ``only``) the only operator; None if neither. The one place that recognises block CS
    by an operator's name (training task, evaluation, binding)."""
    names = tuple(operator_names)
    return "Phi" if "Phi" in names else (names[0] if only and len(names) == 1 else None)


def _ratio_label(ratio: float) -> str:
    return f"{int(ratio)}" if float(ratio).is_integer() else f"{ratio:g}"


def _phi_path(data_dir: str | os.PathLike | None, ratio: float) -> Path | None:
    n = BLOCK * BLOCK
    return Path(data_dir) / "cs_phi" / f"phi_0_{_ratio_label(ratio)}_{n}.mat" if data_dir is not None else None


def phi_file(data_dir: str | os.PathLike | None, ratio: float) -> Path | None:
    """The data directory's Φ for a CS ratio (``cs_phi/phi_0_{ratio}_1089.mat``), None when there is
    none (then :func:`load_phi` generates one)."""
    path = _phi_path(data_dir, ratio)
    return path if path is not None and path.is_file() else None


def load_phi(data_dir: str | os.PathLike | None, ratio: float, seed: int = 0) -> tuple[np.ndarray, str]:
    """(Φ [M, 1089] float64, sentence saying where it came from) for a CS ratio in percent.

    Reads :func:`phi_file` (key ``phi``) when it exists; otherwise generates an orthonormal-rows
    Gaussian matrix with :func:`orthonormal_rows` and the sentence says so.
    """
    label = _ratio_label(ratio)
    n = BLOCK * BLOCK
    path = _phi_path(data_dir, ratio)
    if phi_file(data_dir, ratio) is not None:

        phi = checked(read_mat(path, "phi"), path, "variable 'phi'", nonzero=True)
        if phi.ndim != 2 or phi.shape[1] != n:
            raise ValueError(f"{path}: 'phi' has shape {phi.shape}, expected [M, {n}]")
        return phi, f"Phi from {path} ({phi.shape[0]}x{n})"
    m = measurements_for_ratio(ratio, n)
    where = f"{path} not found" if path is not None else "no data directory"
    return orthonormal_rows(m, n, seed), (
        f"Phi GENERATED for ratio {label}%: {m}x{n} Gaussian with orthonormal rows, seed {seed} ({where}); "
        "not the paper's matrix"
    )


def pad_to_blocks(img: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Zero-pad an [h, w] image at the right and bottom to multiples of ``block`` (as ISTA-Net)."""
    h, w = img.shape
    return np.pad(img, ((0, -h % block), (0, -w % block)))


def image_to_blocks(img: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, tuple[int, int]]:
    """([nb, block²] row-major blocks in row-major block order, padded shape) of an [h, w] image."""
    p = pad_to_blocks(np.asarray(img), block)
    H, W = p.shape
    blocks = p.reshape(H // block, block, W // block, block).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, block * block).copy(), (H, W)


def blocks_to_image(
    blocks: np.ndarray, padded_shape: tuple[int, int], shape: tuple[int, int], block: int = BLOCK
) -> np.ndarray:
    """Inverse of :func:`image_to_blocks`: reassemble and crop to the original ``shape``."""
    H, W = padded_shape
    nb = (H // block) * (W // block)
    blocks = np.asarray(blocks)
    if blocks.shape != (nb, block * block):
        raise ValueError(f"expected {nb} blocks of {block * block} for a {H}x{W} image, got {blocks.shape}")
    img = blocks.reshape(H // block, W // block, block, block).transpose(0, 2, 1, 3).reshape(H, W)
    return img[: shape[0], : shape[1]].copy()


def cut_blocks(
    images: Sequence[np.ndarray], count: int, seed: int = 0, block: int = BLOCK
) -> np.ndarray:
    """[count, block²] float32 blocks cut at uniformly random positions over all images (∝ area)."""
    images = [np.asarray(im) for im in images if min(np.shape(im)) >= block]
    if not images:
        raise ValueError(f"no image is at least {block}x{block}")
    positions = np.array([(im.shape[0] - block + 1) * (im.shape[1] - block + 1) for im in images])
    rng = np.random.default_rng(seed)
    which = rng.choice(len(images), size=count, p=positions / positions.sum())
    out = np.empty((count, block * block), dtype=np.float32)
    for i, im in enumerate(images):
        rows = np.flatnonzero(which == i)
        if rows.size == 0:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(im, (block, block))
        r = rng.integers(0, im.shape[0] - block + 1, rows.size)
        c = rng.integers(0, im.shape[1] - block + 1, rows.size)
        out[rows] = windows[r, c].reshape(rows.size, -1)
    return out


def block_gram(blocks: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """C = Xᵀ X in float64 for blocks X [P, N] (rows), accumulated in chunks to bound memory."""
    n = blocks.shape[1]
    c = np.zeros((n, n))
    for i in range(0, blocks.shape[0], chunk):
        x = np.asarray(blocks[i : i + chunk], dtype=np.float64)
        c += x.T @ x
    return c


def init_matrix(phi: np.ndarray, blocks: np.ndarray | None = None, gram: np.ndarray | None = None) -> np.ndarray:
    """ISTA-Net's Q = X Yᵀ(Y Yᵀ)⁻¹ with Y = Φ X, i.e. C Φᵀ(Φ C Φᵀ)⁻¹ for C = X Xᵀ; [N, M] float64.

    Blocks are rows here ([P, N]); Q is the least-squares map from y to x over the training blocks.
    """
    if gram is None:
        if blocks is None:
            raise ValueError("init_matrix needs the training blocks or their Gram matrix")
        gram = block_gram(blocks)
    phi = np.asarray(phi, dtype=np.float64)
    pc = phi @ gram  # [M, N] = (X Yᵀ)ᵀ
    return np.linalg.lstsq(pc @ phi.T, pc, rcond=None)[0].T  # min-norm if fewer blocks than M


def load_block_images(
    data_dir: str | os.PathLike | None, seed: int = 0, studio: bool = False
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]], str]:
    """(training images, test images, sentence): T91 luminance and Set11 from ``data_dir``, else built-in.

    The built-in default (no data directory, or its folders missing) is synthetic: Shepp–Logan and
    1/f random fields with edges (scikit-image's sample images are not a dependency).
    """
    root = Path(data_dir) if data_dir is not None else None
    t91 = root / "images" / "t91" if root is not None else None
    parts = []
    if t91 is not None and t91.is_dir():
        train = load_folder(t91, studio=studio)
        scale = "MATLAB rgb2ycbcr Y (16-235)" if studio else "BT.601 full-range Y"
        parts.append(f"training blocks from {len(train)} images in {t91} ({scale})")
    else:
        train = synthetic_images(12, 128, seed=seed)
        parts.append(f"training blocks from 12 BUILT-IN synthetic images ({f'{t91} not found' if t91 else 'no data directory'})")
    test, test_source = load_test_images(data_dir, seed)
    return train, test, "; ".join(parts + [test_source])


def load_test_images(data_dir: str | os.PathLike | None, seed: int = 0) -> tuple[list[tuple[str, np.ndarray]], str]:
    """(Set11 images from ``data_dir``/images/set11, or 4 built-in synthetic 100×100 images; sentence)."""
    set11 = Path(data_dir) / "images" / "set11" if data_dir is not None else None
    if set11 is not None and set11.is_dir():
        test = load_folder(set11)
        return test, f"test: {len(test)} images in {set11}"
    test = synthetic_images(4, 100, seed=seed + 1)
    return test, f"test: 4 BUILT-IN synthetic 100x100 images ({f'{set11} not found' if set11 else 'no data directory'})"


class BlockCSTask:
    """Training stream and fixed test set for block CS, trainable with ``unroll.train.train``.

    Batches are ``{y: [B, M], x_star: [B, 1089]}`` keyed by the bound spec's names; the training
    batch at a step is a draw (with replacement) from a fixed pool of blocks, determined by the
    trainer's generator, so resumed runs are bit-identical. Example:
    ``task = BlockCSTask.from_data_dir("../shared/data", ratio=25)``;
    ``model = unroll.compile("zoo:ista_net_plus", K=9, **task.operators())``.
    """

    def __init__(
        self,
        phi: np.ndarray,
        blocks: np.ndarray,
        test_images: Sequence[tuple[str, np.ndarray]] = (),
        ratio: float | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        names: Mapping[str, str | None] | None = None,
        source: str = "",
        gram: np.ndarray | None = None,
        test_blocks: int | None = None,
        generated_phi: bool = False,
    ) -> None:
        phi = np.asarray(phi, dtype=np.float64)
        if phi.ndim != 2 or phi.shape[1] != blocks.shape[1]:
            raise ValueError(f"Phi {phi.shape} does not match blocks of length {blocks.shape[1]}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.phi = phi
        self.blocks = torch.as_tensor(np.asarray(blocks), dtype=dtype)
        self.test_images = [(str(n), np.asarray(im, dtype=np.float64)) for n, im in test_images]
        self.ratio = ratio if ratio is not None else 100.0 * phi.shape[0] / phi.shape[1]
        self.seed = int(seed)
        self.dtype = dtype
        self.names = dict(_DEFAULT_NAMES if names is None else names)
        self.source = source
        self.generated_phi = generated_phi  # Φ is not one of the data directory's matrices
        self._phi_t = torch.as_tensor(phi, dtype=dtype)
        self._gram = gram  # Xᵀ X of the pool, when the caller already has it (shared across ratios)
        self.test_blocks = test_blocks  # evaluate on an evenly spaced subset of this many test blocks
        self._q: np.ndarray | None = None
        self._test: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_data_dir(
        cls,
        data_dir: str | os.PathLike | None,
        ratio: float = 25,
        n_blocks: int = PAPER_BLOCKS,
        seed: int = 0,
        studio: bool = False,
        **kwargs: Any,
    ) -> "BlockCSTask":
        """T91 blocks, Set11 test images and the ratio's Φ from ``data_dir`` (or built-in/generated)."""
        phi, phi_source = load_phi(data_dir, ratio, seed=seed)
        train, test, image_source = load_block_images(data_dir, seed=seed, studio=studio)
        blocks = cut_blocks([im for _, im in train], n_blocks, seed=seed)
        return cls(phi, blocks, test, ratio=ratio, seed=seed, source=f"{phi_source}; {image_source}",
                   generated_phi=phi_file(data_dir, ratio) is None, **kwargs)

    @property
    def train_size(self) -> int:
        """Blocks in the training pool (one epoch = this many samples)."""
        return int(self.blocks.shape[0])

    @property
    def m(self) -> int:
        """Measurements per block (rows of Φ)."""
        return self.phi.shape[0]

    @property
    def n(self) -> int:
        """Pixels per block (columns of Φ)."""
        return self.phi.shape[1]

    def describe(self) -> str:
        """One line for logs: ratio, sizes, pool and where Φ and the images came from."""
        return (
            f"block CS {BLOCK}x{BLOCK}, ratio {_ratio_label(self.ratio)}% (M={self.m}, N={self.n}), "
            f"{self.train_size} training blocks; {self.source}"
        )

    def q(self) -> np.ndarray:
        """ISTA-Net's initialisation matrix Q [N, M] from the training pool (cached)."""
        if self._q is None:
            self._q = init_matrix(self.phi, self.blocks.numpy(), gram=self._gram)
        return self._q

    def bind(self, model_or_names: Any) -> "BlockCSTask":
        """A copy using the spec's names: operator ``Phi`` (or the only one), optional ``Q``,
        one input and one target; TaskBindingError otherwise."""
        names = spec_names(model_or_names)
        ops = names["operator_names"]
        sampling = sampling_operator(ops)
        init = "Q" if "Q" in ops else None
        problems = []
        if sampling is None:
            problems.append(f"the block-CS task needs a sampling operator named Phi; the spec declares "
                            f"{', '.join(ops) if ops else 'none'}")
        extra = [o for o in ops if o not in (sampling, init)]
        if extra:
            problems.append(f"the block-CS task provides Phi and Q only; the spec also declares {', '.join(extra)}")
        for kind, word in (("input_names", "input (the measurements)"), ("target_names", "target (the block)")):
            if len(names[kind]) != 1:
                problems.append(f"the block-CS task needs exactly one {word}; the spec declares "
                                f"{', '.join(names[kind]) or 'none'}")
        if problems:
            raise TaskBindingError("; ".join(problems))
        bound = {"sampling": sampling, "init": init, "measurement": names["input_names"][0],
                 "target": names["target_names"][0]}
        other = BlockCSTask.__new__(BlockCSTask)
        other.__dict__.update(self.__dict__)
        other.names = bound
        other._test = None if self._test is None else {
            bound[r]: self._test[self.names[r]] for r in ("measurement", "target")
        }
        return other

    def operators(self) -> dict[str, np.ndarray]:
        """The fixed operators keyed by spec name (Φ, and Q when bound), for ``unroll.compile``."""
        ops = {self.names["sampling"]: self.phi}
        if self.names.get("init"):
            ops[self.names["init"]] = self.q()
        return ops

    def measure(self, x: torch.Tensor) -> torch.Tensor:
        """y = x Φᵀ for row blocks x [B, N]."""
        return x.to(self.dtype) @ self._phi_t.T

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A training batch {measurement: [B, M], target: [B, N]} drawn from the pool by ``generator``."""
        idx = torch.randint(0, self.train_size, (batch,), generator=generator)
        x = self.blocks[idx]
        return {self.names["measurement"]: self.measure(x), self.names["target"]: x}

    def test_set(self) -> dict[str, torch.Tensor]:
        """The (zero-padded) blocks of the test images (all, or ``test_blocks`` evenly spaced), y in float64; cached."""
        if self._test is None:
            if not self.test_images:
                raise ValueError("this block-CS task has no test images")
            x = np.concatenate([image_to_blocks(im)[0] for _, im in self.test_images])
            if self.test_blocks is not None and self.test_blocks < x.shape[0]:
                x = x[np.linspace(0, x.shape[0] - 1, self.test_blocks).round().astype(int)]
            y = x @ self.phi.T
            self._test = {
                self.names["measurement"]: torch.as_tensor(y, dtype=self.dtype),
                self.names["target"]: torch.as_tensor(x, dtype=self.dtype),
            }
        return dict(self._test)
