"""Rebuilding a compiled model from saved weights: the operators (Φ, Q) travel in the state dict."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

__all__ = ["state_dict_of", "model_from_state", "load_for_eval", "sampling_matrix"]


def state_dict_of(saved: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights of a trainer checkpoint (its ``model`` entry) or of a bare state dict."""
    inner = saved.get("model")
    return dict(inner) if isinstance(inner, Mapping) else dict(saved)


def model_from_state(spec: str | Path, state: Mapping[str, torch.Tensor], K: int | None = None,
                     device: str | torch.device | None = None) -> torch.nn.Module:
    """Compile ``spec`` with the operators stored as buffers in ``state`` and load the weights."""
    import unroll

    program = unroll.check(spec)
    missing = [o for o in program.operators if o not in state]
    if missing:
        raise KeyError(f"the saved weights lack operator {', '.join(missing)} (has: {', '.join(sorted(state))[:200]})")
    ops = {o: state[o].detach().cpu().double().numpy() for o in program.operators}
    model = unroll.compile(spec, K=K, **ops)
    model.load_state_dict({k: v for k, v in state.items()})
    return model.to(device) if device is not None else model


def sampling_matrix(model: torch.nn.Module) -> np.ndarray:
    """Φ of a compiled block-CS model (operator ``Phi`` or its only operator), float64."""
    names = tuple(model.operator_names)
    name = "Phi" if "Phi" in names else (names[0] if len(names) == 1 else None)
    if name is None:
        raise KeyError(f"the model has no sampling operator Phi (operators: {', '.join(names)})")
    return getattr(model, name).detach().cpu().double().numpy()


def load_for_eval(spec: str | Path, ckpt: str | os.PathLike, K: int | None = None,
                  device: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model with the checkpoint's weights, the checkpoint) — loaded with weights_only=True."""
    saved = torch.load(Path(ckpt), map_location="cpu", weights_only=True)
    if not isinstance(saved, Mapping):
        raise ValueError(f"{ckpt}: expected a checkpoint or state dict, found {type(saved).__name__}")
    K = K if K is not None else (int(saved["K"]) if "K" in saved else None)
    return model_from_state(spec, state_dict_of(saved), K, device), dict(saved)
