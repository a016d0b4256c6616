"""The operators an imported network needs, from the places the import options name: Φ
(``--phi`` or ``DATA/cs_phi``), the authors' Qinit (``--qinit`` or beside the checkpoint) and
CS-MRI masks (``--mask-file`` or ``DATA/mri/masks``), read from MATLAB v5 or v7.3 files."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from .registry import FormatMismatch, ImportOptions

__all__ = ["read_mat", "ratio_of", "block_cs_operators", "mri_mask_operator", "data_dir_of"]


def read_mat(path: str | os.PathLike, name: str | None = None, what: str = "matrix") -> np.ndarray:
    """Variable ``name`` (else the only numeric array) of a MATLAB .mat file, v5 (scipy) or v7.3
    (h5py, transposed back to MATLAB's layout), as float64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        import scipy.io

        data = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 is HDF5
        import h5py

        with h5py.File(path, "r") as f:
            data = {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({e})") from None
    arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biuf"}
    if name is not None:
        if name not in arrays:
            raise ValueError(f"{path}: no variable {name!r} (has: {', '.join(sorted(data)) or 'nothing'})")
        return np.asarray(arrays[name], dtype=np.float64)
    if len(arrays) != 1:
        raise ValueError(f"{path}: expected one numeric variable, found {', '.join(sorted(arrays)) or 'none'}")
    return np.asarray(next(iter(arrays.values())), dtype=np.float64)


_RATIO = re.compile(r"_r(\d+(?:\.\d+)?)(?=[._])")


def ratio_of(opts: ImportOptions, given: float | None, flag: str) -> float:
    """The ratio from the option, else from ``_r{R}`` in the checkpoint's file name."""
    m = _RATIO.search(opts.checkpoint.name)
    if given is not None:
        if m and float(m.group(1)) != float(given):
            raise FormatMismatch(f"{opts.checkpoint.name}: the file name says ratio {m.group(1)} but {flag} "
                                 f"{given:g} was given; the weights belong to their ratio's operators")
        return float(given)
    if not m:
        raise ValueError(f"{flag} is needed: the file name {opts.checkpoint.name!r} does not say "
                         "the ratio (no _r<R> in it)")
    return float(m.group(1))


def _label(r: float) -> str:
    return f"{int(r)}" if float(r).is_integer() else f"{r:g}"


def data_dir_of(opts: ImportOptions, flag: str) -> Path:
    """The data directory of ``--data``, else $UNROLL_DATA; an error naming ``flag`` otherwise."""
    d = opts.data or (Path(os.environ["UNROLL_DATA"]) if os.environ.get("UNROLL_DATA") else None)
    if d is None:
        raise ValueError(f"give --data DIR (or $UNROLL_DATA) or {flag} FILE to say where the operator comes from")
    return Path(d)


def block_cs_operators(opts: ImportOptions) -> dict[str, tuple[np.ndarray, str]]:
    """Φ [M, 1089] and the authors' Qinit [1089, M] for block CS at ``--ratio`` percent."""
    ratio = ratio_of(opts, opts.ratio, "--ratio")
    if opts.phi is not None:
        phi_path = Path(opts.phi)
    else:
        phi_path = data_dir_of(opts, "--phi") / "cs_phi" / f"phi_0_{_label(ratio)}_1089.mat"
    phi = read_mat(phi_path, what="Phi")
    q_path = Path(opts.qinit) if opts.qinit is not None else opts.checkpoint.parent / f"Qinit_r{_label(ratio)}.mat"
    if not q_path.is_file():
        raise FileNotFoundError(f"Qinit file not found: {q_path} (the authors' initialisation matrix; "
                                "give it with --qinit FILE)")
    q = read_mat(q_path, what="Qinit")
    if phi.ndim != 2 or phi.shape[1] != 1089:
        raise FormatMismatch(f"{phi_path}: Phi must be M x 1089, found {'x'.join(map(str, phi.shape))}")
    if q.shape == phi.shape:  # stored as M x N: the transpose of ours
        q = q.T
    if q.shape != (phi.shape[1], phi.shape[0]):
        raise FormatMismatch(f"{q_path}: Qinit must be 1089 x {phi.shape[0]} to match Phi "
                             f"({phi.shape[0]}x{phi.shape[1]}), found {'x'.join(map(str, q.shape))}")
    expected = int(np.ceil(ratio / 100 * 1089))
    if opts.ratio is not None and opts.phi is not None and abs(phi.shape[0] - expected) > 1:
        raise FormatMismatch(f"{phi_path}: Phi has M={phi.shape[0]} rows but --ratio {ratio:g} means about M={expected}")
    return {"Phi": (phi, f"{phi_path} ({phi.shape[0]}x{phi.shape[1]})"),
            "Q": (q, f"{q_path} ({q.shape[0]}x{q.shape[1]})")}


def mri_mask_operator(name: str) -> Callable[[ImportOptions], dict[str, tuple[np.ndarray, str]]]:
    """An operators function giving operator ``name`` = ifftshift of the centred mask
    ``--mask-file`` or ``DATA/mri/masks/mask_{R}.mat`` (DC moved to [0, 0], as the authors use it)."""

    def operators(opts: ImportOptions) -> dict[str, tuple[np.ndarray, str]]:
        if opts.mask_file is not None:
            path = Path(opts.mask_file)
        else:
            ratio = ratio_of(opts, opts.mask, "--mask")
            path = data_dir_of(opts, "--mask-file") / "mri" / "masks" / f"mask_{_label(ratio)}.mat"
        mask = read_mat(path, what="mask")
        if mask.ndim != 2:
            raise FormatMismatch(f"{path}: a sampling mask must be 2-D, found shape {mask.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise FormatMismatch(f"{path}: a sampling mask must hold only 0 and 1")
        shifted = np.fft.ifftshift(mask)
        return {name: (shifted, f"ifftshift of {path} ({100 * mask.mean():.1f}% sampled)")}

    return operators
