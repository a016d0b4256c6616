"""Atomic training checkpoints that load with ``torch.load(weights_only=True)``.

Everything saved is a tensor or a plain Python container, so loading never unpickles code. A
SHA-256 of every tensor's bytes travels in the file and is verified on load, so a flipped byte is
an error rather than silently different weights (files written before the checksum still load).
"""
from __future__ import annotations

import hashlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

__all__ = [
    "LAST",
    "BEST",
    "CheckpointError",
    "tensor_digest",
    "save_checkpoint",
    "load_checkpoint",
    "state_dict_of",
    "capture_rng_state",
    "restore_rng_state",
]

LAST = "last.pt"
BEST = "best.pt"
DIGEST_KEY = "tensor_sha256"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, truncated, foreign, tampered or of the
    wrong shape; the message names the file and the problem."""


def _tensors(obj: Any, prefix: str = ""):
    """(path, tensor) for every tensor inside nested dicts, lists and tuples, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if k != DIGEST_KEY:
                yield from _tensors(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def tensor_digest(payload: Any) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every tensor in `payload`."""
    h = hashlib.sha256()
    for name, t in _tensors(payload):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically: temp file in the same directory, fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(payload, dict):
        payload = {**payload, DIGEST_KEY: tensor_digest(payload)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-save
        try:
            stale.unlink()
        except OSError:
            pass
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows opening directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def state_dict_of(saved: Mapping[str, Any]) -> dict[str, Any]:
    """The model weights of a trainer checkpoint (its ``model`` entry) or of a bare state dict."""
    inner = saved.get("model")
    return dict(inner) if isinstance(inner, Mapping) else dict(saved)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary unpickling) and verify its
    checksum; anything unusable is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file" if not path.exists()
                              else f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every torch/pickle/zip failure means the same here
        raise CheckpointError(f"{path}: not a readable unroll/PyTorch checkpoint "
                              f"({_reason(e)})") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: expected a checkpoint (a dict of tensors), found "
                              f"{type(saved).__name__}")
    digest = saved.pop(DIGEST_KEY, None)
    if digest is not None and digest != tensor_digest(saved):
        raise CheckpointError(f"{path}: checksum mismatch: the tensors were changed after the file "
                              "was written (corrupted or edited); refusing to load them")
    return saved


def _reason(e: Exception) -> str:
    """A one-line reason for a failed torch.load."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, EOFError) or "central directory" in text or "truncated" in text.lower():
        return "the file is truncated or not a zip archive"
    if "Weights only load failed" in text or "weights_only" in text:
        return "it holds objects other than tensors and plain values, refused for safety"
    if isinstance(e, UnicodeDecodeError) or "invalid load key" in text:
        return "the file is not in PyTorch's format or is corrupted"
    return text[:200]


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states (torch, CUDA, numpy, python) as uint8/int64 tensors and plain values."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64).copy()),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
        "python_version": int(py_version),
        "python_internal": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": py_gauss,
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`; CUDA states are skipped when CUDA is absent."""
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    keys = state["numpy_keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        ("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"])
    )
    internal = tuple(int(v) for v in state["python_internal"].tolist())
    random.setstate((state["python_version"], internal, state["python_gauss"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.to(torch.uint8).cpu() for s in cuda])
