"""``unroll train --init CK``: start training from saved weights (an imported paper checkpoint, a
training checkpoint or a bare state dict), with the checkpoint's own non-measuring operators."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .checkpoint import load_checkpoint, state_dict_of

__all__ = ["InitWeights", "read_init", "operators_with_init", "load_init"]


@dataclass
class InitWeights:
    """The weights to start from: state dict (operators included), K and spec when recorded."""

    path: Path
    state: dict[str, torch.Tensor]
    K: int | None
    spec: str | None
    saved: dict[str, Any]


def read_init(path: str | os.PathLike) -> InitWeights:
    """Load ``path`` with ``weights_only=True``; a trainer checkpoint's ``model`` or a state dict."""
    path = Path(path)
    saved = load_checkpoint(path)  # weights_only, checksum verified; CheckpointError otherwise
    state = state_dict_of(saved)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--init {path}: the state dict holds non-tensor entries")
    K = int(saved["K"]) if "K" in saved else None
    spec = saved.get("spec") if isinstance(saved.get("spec"), str) else None
    return InitWeights(path, state, K, spec, dict(saved))


def operators_with_init(task_ops: Mapping[str, np.ndarray], init: InitWeights,
                        measuring: set[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The task's operators with the checkpoint's in place of the non-measuring ones (Q); an
    operator the task measures with (Phi, the mask) must equal the checkpoint's."""
    ops = dict(task_ops)
    notes = []
    for name, arr in task_ops.items():
        if name not in init.state:
            continue
        mine = init.state[name].detach().cpu().double().numpy()
        arr = np.asarray(arr, dtype=np.float64)
        same = mine.shape == arr.shape and np.allclose(mine, arr, rtol=1e-5, atol=1e-6)
        if same:
            continue
        if name in measuring:
            raise ValueError(f"--init {init.path.name}: its operator {name} {'x'.join(map(str, mine.shape))} "
                             f"differs from the training task's {'x'.join(map(str, arr.shape))}; "
                             "train with the same ratio/mask (and data) the checkpoint was made for")
        ops[name] = mine
        notes.append(f"operator {name} from {init.path.name} (not the task's own)")
    return ops, notes


def load_init(model: torch.nn.Module, init: InitWeights) -> None:
    """Copy the checkpoint's tensors into ``model``; the first missing, unexpected or wrongly
    shaped entry is a ValueError naming it."""
    own = model.state_dict()
    for key, t in init.state.items():
        if key not in own:
            raise ValueError(f"--init {init.path.name}: entry {key!r} is not in the model "
                             f"(model entries: {', '.join(list(own)[:6])}, ...)")
        if tuple(t.shape) != tuple(own[key].shape):
            raise ValueError(f"--init {init.path.name}: {key!r} has shape {list(t.shape)}, the model's is "
                             f"{list(own[key].shape)}")
    missing = [k for k in own if k not in init.state]
    if missing:
        raise ValueError(f"--init {init.path.name}: no entry for the model's {missing[0]!r} "
                         f"({len(missing)} missing; was it saved with a different K or spec?)")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in init.state.items()})
