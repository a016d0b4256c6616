"""Reading data files as the user gave them, with every problem reported against the file:
unreadable or foreign formats, missing variables, wrong rank, empty, complex, NaN/Inf, all zero,
and images too large to decode (a decompression bomb) are ValueErrors naming the file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["MAX_DATA_BYTES", "MAX_IMAGE_PIXELS", "read_mat", "read_mat_v73", "read_npy", "checked",
           "open_image"]

MAX_DATA_BYTES = 2 * 1024**3  # a data file larger than this is refused before reading
MAX_IMAGE_PIXELS = 64 * 1024**2  # images above 64 megapixels are refused before decoding


def _size_ok(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > MAX_DATA_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is over the {MAX_DATA_BYTES:,}-byte limit for data files")


def read_mat_v73(path: str | os.PathLike, key: str) -> np.ndarray:
    """One array of a MATLAB v7.3 (HDF5) file as float64, transposed back to MATLAB's layout."""
    import h5py

    with h5py.File(path, "r") as f:
        if key not in f:
            raise KeyError(f"{path}: no variable {key!r} (has {', '.join(f.keys())})")
        return np.asarray(f[key], dtype=np.float64).T.copy()


def read_mat(path: str | os.PathLike, key: str) -> np.ndarray:
    """Variable `key` of a MATLAB .mat file (v5 via scipy, v7.3 via h5py), as an array."""
    path = Path(path)
    _size_ok(path)
    import scipy.io
    try:
        data = scipy.io.loadmat(str(path))
    except NotImplementedError:  # v7.3: an HDF5 file
        try:
            return read_mat_v73(path, key)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        except OSError as e:
            raise ValueError(f"{path}: not a readable MATLAB v7.3 file ({e})") from None
    except Exception as e:  # noqa: BLE001 - scipy raises many types for a foreign file
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({str(e).splitlines()[0][:160]})") from None
    if key not in data:
        have = ", ".join(k for k in data if not k.startswith("__")) or "nothing"
        raise ValueError(f"{path}: no variable {key!r} (the file holds {have})")
    return np.asarray(data[key])


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """A .npy array (never pickled objects)."""
    path = Path(path)
    _size_ok(path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - a text file, truncated header, object array...
        raise ValueError(f"{path}: not a readable .npy array ({str(e).splitlines()[0][:160]})") from None


def checked(a: np.ndarray, path: str | os.PathLike, what: str, ndim: int | None = 2,
            nonzero: bool = False) -> np.ndarray:
    """`a` as float64 after checking it is numeric, real, of rank `ndim`, non-empty and finite
    (and not all zero when `nonzero`); anything else is a ValueError naming the file."""
    where = f"{path}: {what}"
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{where} is not numeric (dtype {a.dtype})")
    if np.iscomplexobj(a):
        raise ValueError(f"{where} is complex; a real array is needed")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{where} has shape {a.shape}; a {ndim}-D array is needed")
    if a.size == 0:
        raise ValueError(f"{where} is empty (shape {a.shape})")
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{where} holds {int((~np.isfinite(a)).sum())} NaN/Inf values")
    if nonzero and not np.any(a):
        raise ValueError(f"{where} is all zeros")
    return a


def open_image(path: str | os.PathLike):
    """PIL's Image.open with the pixel count checked before decoding (no decompression bombs)."""
    from PIL import Image
    path = Path(path)
    _size_ok(path)
    try:
        im = Image.open(path)
    except Exception as e:  # noqa: BLE001 - PIL's UnidentifiedImageError, bomb errors, OSError
        raise ValueError(f"{path}: not a readable image ({str(e).splitlines()[0][:160]})") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS or w == 0 or h == 0:
        im.close()
        raise ValueError(f"{path}: {w}x{h} pixels is outside the supported 1 .. {MAX_IMAGE_PIXELS:,} pixels")
    return im
