"""Shipped pretrained weights: ``unroll.zoo.pretrained("ista_net_plus", ratio=25)``.

Each entry of ``pretrained/`` is ``{name}_r{ratio}.pt`` (a state dict, Φ and Q included, loaded
with weights_only=True) next to ``{name}_r{ratio}.json`` (how it was trained and its Set11 scores).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["PRETRAINED_DIR", "available", "pretrained", "pretrained_record"]

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def _stem(name: str, ratio: float) -> str:
    label = f"{int(ratio)}" if float(ratio).is_integer() else f"{ratio:g}"
    return f"{name.removeprefix('zoo:')}_r{label}"


def available() -> list[tuple[str, str]]:
    """(zoo name, ratio label) of every shipped weight file."""
    out = []
    for p in sorted(PRETRAINED_DIR.glob("*_r*.pt")):
        name, _, ratio = p.stem.rpartition("_r")
        out.append((name, ratio))
    return out


def pretrained_record(name: str, ratio: float = 25) -> dict[str, Any]:
    """The JSON record of how the shipped weights for (name, ratio) were trained."""
    path = PRETRAINED_DIR / f"{_stem(name, ratio)}.json"
    if not path.is_file():
        raise FileNotFoundError(_missing(name, ratio))
    return json.loads(path.read_text(encoding="utf-8"))


def _missing(name: str, ratio: float) -> str:
    shipped = ", ".join(f"{n} at {r}%" for n, r in available()) or "none"
    bare = name.removeprefix("zoo:")
    return (f"no pretrained weights shipped for {bare} at ratio {_stem(name, ratio).rpartition('_r')[2]}% "
            f"(shipped: {shipped}); train them with: unroll train zoo:{bare} --ratio {ratio:g} --data DIR")


def pretrained(name: str, ratio: float = 25, device: str | None = None, data=None):
    """The compiled zoo network ``name`` with its shipped weights for CS ratio ``ratio`` (percent; for
    CS-MRI networks the mask's sampling percent, e.g. ``pretrained("admm_net_exact", 20)``).

    The returned module has ``pretrained_record`` (the training record). FileNotFoundError when
    nothing is shipped for that (name, ratio). Sparse-coding networks (``lista``, ``lista_untied``)
    take no ratio; they read the dictionary from ``data`` (default $UNROLL_DATA), see sparse_weights.
    """
    import torch

    from ..evaluate.loading import model_from_state
    from .sparse_weights import load_sparse, sparse_names

    if name.removeprefix("zoo:") in sparse_names():  # LISTA on D.mat: no ratio; A read from `data`
        return load_sparse(name.removeprefix("zoo:"), data, device)
    path = PRETRAINED_DIR / f"{_stem(name, ratio)}.pt"
    if not path.is_file():
        raise FileNotFoundError(_missing(name, ratio))
    record = pretrained_record(name, ratio)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = model_from_state(f"zoo:{name.removeprefix('zoo:')}", state, int(record["K"]), device)
    model.pretrained_record = record
    return model
