"""Rebuilding a compiled model from saved weights: the operators (Φ, Q) travel in the state dict."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..api import check, compile as compile_spec
from ..data.blockcs import sampling_operator
from ..published import aliases_of
from ..train.checkpoint import CheckpointError, load_checkpoint, state_dict_of

__all__ = ["model_from_state", "load_for_eval", "sampling_matrix", "spec_of_checkpoint"]


def model_from_state(spec: str | Path, state: Mapping[str, torch.Tensor], K: int | None = None,
                     device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Compile ``spec`` with the operators stored as buffers in ``state`` and load the weights
    (in ``dtype``, default: float64 when the saved weights are, else float32)."""
    program = check(spec)
    missing = [o for o in program.operators if o not in state]
    if missing:
        raise KeyError(f"the saved weights lack operator {', '.join(missing)} (has: {', '.join(sorted(state))[:200]})")
    bad = [o for o in program.operators if not isinstance(state[o], torch.Tensor)]
    if bad:
        raise CheckpointError(f"the saved operator {bad[0]} is not a tensor")
    ops = {o: state[o].detach().cpu().double().numpy() for o in program.operators}
    if dtype is None:
        floats = [v.dtype for k, v in state.items() if k not in ops and v.is_floating_point()]
        dtype = torch.float64 if floats and all(d == torch.float64 for d in floats) else torch.float32
    model = compile_spec(spec, K=K, dtype=dtype, **ops)
    try:
        model.load_state_dict({k: v for k, v in state.items()})
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(_state_mismatch(model, state, e)) from None
    return model.to(device) if device is not None else model


def _state_mismatch(model: torch.nn.Module, state: Mapping[str, Any], e: Exception) -> str:
    """Why saved weights do not fit the compiled model: missing, unexpected or wrongly shaped."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shaped = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape]
    parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + (
        [f"unexpected {', '.join(extra[:5])}"] if extra else []) + (
        [f"wrong shape {'; '.join(shaped[:3])} (saved vs model)"] if shaped else [])
    detail = "; ".join(parts) or str(e).splitlines()[0][:200]
    return (f"the saved weights do not fit {model.spec_name} with K={model.K}: {detail}. Was the "
            "checkpoint trained with this spec and K?")


def sampling_matrix(model: torch.nn.Module) -> np.ndarray:
    """Φ of a compiled block-CS model (operator ``Phi`` or its only operator), float64."""
    names = tuple(model.operator_names)
    name = sampling_operator(names)
    if name is None:
        raise KeyError(f"the model has no sampling operator Phi (operators: {', '.join(names)})")
    return getattr(model, name).detach().cpu().double().numpy()


def load_for_eval(spec: str | Path, ckpt: str | os.PathLike, K: int | None = None,
                  device: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model with the checkpoint's weights, the checkpoint) — loaded with weights_only=True."""
    saved = load_checkpoint(ckpt)
    if K is None and "K" in saved:
        if not isinstance(saved["K"], int) or isinstance(saved["K"], bool) or saved["K"] < 1:
            raise CheckpointError(f"{ckpt}: its K entry is {saved['K']!r}, not a layer count")
        K = saved["K"]
    state = state_dict_of(saved)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{ckpt}: holds no model weights (a dict of tensors)")
    spec = spec_of_checkpoint(spec, saved)
    try:
        model = model_from_state(spec, state, K, device)
    except CheckpointError as e:
        raise CheckpointError(f"{ckpt}: {e}") from None
    if not all(bool(torch.isfinite(t).all()) for t in model.state_dict().values()
               if t.is_floating_point() or t.is_complex()):
        raise CheckpointError(f"{ckpt}: the saved weights are not finite (NaN or Inf): the run that "
                              "wrote them diverged")
    return model, dict(saved)


def spec_of_checkpoint(spec: str | Path, saved: Mapping[str, Any]) -> str | Path:
    """The spec to compile: the checkpoint's own (its ``spec`` entry) when ``spec`` names it or one
    of its aliases (zoo:admm_net for an imported zoo:admm_net_exact), else ``spec`` as given."""
    recorded = saved.get("spec")
    if not isinstance(recorded, str) or str(spec) == recorded or not str(recorded).startswith("zoo:"):
        return spec
    return recorded if str(spec).removeprefix("zoo:") in aliases_of(recorded) else spec
