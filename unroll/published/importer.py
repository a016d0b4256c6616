"""Turning a released checkpoint into one of ours: read it, map the authors' names through the
format's table (checking keys, stage count and shapes), compile the spec with the operators and
save ``{"model": state dict (operators included), "K", "spec", "imported": record}``, the same
layout as a training checkpoint, so ``unroll eval --ckpt`` and ``unroll train --init`` read it."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .._version import __version__
from ..api import compile as compile_spec
from ..train.checkpoint import save_checkpoint
from .registry import Format, FormatMismatch, ImportOptions, Rule, formats, formats_for_spec, get

__all__ = ["choose_format", "map_weights", "import_checkpoint", "load_published", "sha256_of"]


def sha256_of(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def choose_format(spec: str, checkpoint: Path, fmt: str | None = None) -> Format:
    """The format named ``fmt``, else the one registered for ``spec`` that reads this file."""
    if fmt is not None:
        return get(fmt)
    candidates = formats_for_spec(spec)
    if not candidates:
        known = ", ".join(sorted({f"zoo:{s}" for f in formats() for s in f.specs}))
        raise ValueError(f"no released-checkpoint format imports into {spec}; formats exist for: {known} "
                         "(or name one with --format)")
    fitting = [f for f in candidates if f.accepts(checkpoint)]
    if not fitting:
        raise ValueError(f"{checkpoint.name}: {spec} imports {', '.join(sorted({s for f in candidates for s in f.suffixes}))} "
                         "files, not this one")
    return fitting[0]


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.as_tensor(np.asarray(value))


def _match(rules: tuple[Rule, ...], key: str) -> tuple[Rule, int | None] | None:
    for rule in rules:
        m = rule.pattern().match(key)
        if m:
            return rule, (int(m.group("k")) if rule.staged else None)
    return None


def _other_format(weights: Mapping[str, Any], fmt: Format) -> str:
    """' (it looks like format X: import it into zoo:Y)' when another format matches every key."""
    for other in formats():
        if other is fmt:
            continue
        if weights and all(_match(other.rules, k) for k in weights):
            return f" (it looks like format {other.name!r}: import it into zoo:{other.specs[0]})"
    return ""


def map_weights(fmt: Format, weights: Mapping[str, Any], where: str) -> tuple[int, dict[str, torch.Tensor], list[list[str]]]:
    """(stage count, {our key: tensor}, [[authors' key, our key], ...]) for the authors' ``weights``;
    :class:`FormatMismatch` naming the first key that is unknown, missing or the wrong shape."""
    found: dict[tuple[Rule, int | None], str] = {}
    for key in weights:
        hit = _match(fmt.rules, key)
        if hit is None:
            expected = ", ".join(r.source for r in fmt.rules[:4])
            raise FormatMismatch(f"{where}: unknown key {key!r} for format {fmt.name!r} (expected keys like "
                                 f"{expected}, ...){_other_format(weights, fmt)}")
        found[hit] = key
    staged = [k for (r, k) in found if r.staged]
    stages = (max(staged) + 1) if staged else 0
    out: dict[str, torch.Tensor] = {}
    mapping: list[list[str]] = []
    for rule in fmt.rules:
        for k in (range(stages) if rule.staged else [None]):
            src = rule.source_key(k)
            if (rule, k) not in found:
                at = f" (stage {k + 1} of {stages})" if k is not None else ""
                raise FormatMismatch(f"{where}: missing key {src!r}{at} for format {fmt.name!r}"
                                     f"{_other_format(weights, fmt)}")
            t = _as_tensor(weights[src])
            if tuple(t.shape) != tuple(rule.shape):
                raise FormatMismatch(f"{where}: {src!r} has shape {list(t.shape)}, format {fmt.name!r} "
                                     f"expects {list(rule.shape)}")
            target = rule.target_key(k).replace("{K}", str(stages))  # {K}: the stage count
            out[target] = _as_tensor(rule.convert(t)) if rule.convert else t
            mapping.append([src, target])
    if staged and stages == 0:
        raise FormatMismatch(f"{where}: no stages found")
    return stages, out, mapping


def _fill(model: torch.nn.Module, mapped: Mapping[str, torch.Tensor], fmt: Format, where: str, spec: str) -> None:
    """Copy ``mapped`` into the model's parameters; every parameter must be covered, shapes equal."""
    state = model.state_dict()
    params = {n for n, _ in model.named_parameters()}
    for key, t in mapped.items():
        if key not in state:
            raise FormatMismatch(f"{where}: format {fmt.name!r} maps onto {key!r}, which {spec} does not have "
                                 f"(its parameters: {', '.join(sorted(params)[:6])}, ...)")
        want = tuple(state[key].shape)
        if t.numel() != state[key].numel():
            raise FormatMismatch(f"{where}: {key!r} of {spec} has shape {list(want)}, the checkpoint gives "
                                 f"{list(t.shape)}")
        state[key] = t.reshape(want).to(state[key].dtype)
    uncovered = sorted(params - set(mapped))
    if uncovered:
        raise FormatMismatch(f"{where}: {spec} parameter {uncovered[0]!r} has no entry in format "
                             f"{fmt.name!r}'s table ({len(uncovered)} uncovered)")
    model.load_state_dict(state)


def _dtype_of(mapped: Mapping[str, torch.Tensor]) -> torch.dtype:
    """float64 when the released weights are double precision, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in mapped.values()) else torch.float32


def import_checkpoint(spec: str, checkpoint: str | os.PathLike, options: ImportOptions | None = None,
                      fmt: str | None = None, K: int | None = None, out: str | os.PathLike | None = None,
                      dtype: torch.dtype | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(compiled module with the released weights, our checkpoint dict); with ``out``, the checkpoint
    is also saved there (atomically, loadable with ``weights_only=True``)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    opts = options or ImportOptions(checkpoint=path)
    if opts.checkpoint != path:
        opts = ImportOptions(**{**opts.__dict__, "checkpoint": path})
    form = choose_format(spec, path, fmt)
    weights = form.reader(path)
    stages, mapped, mapping = map_weights(form, weights, path.name)
    layers = form.K(stages) if form.K else stages
    if K is not None and K != layers:
        raise FormatMismatch(f"{path.name}: the checkpoint has {stages} stages (K={layers}), not K={K}")
    target = str(spec) if Path(str(spec)).is_file() else form.target  # a user's own spec file, else the format's
    ops = form.operators(opts)
    model = compile_spec(target, K=layers or None, dtype=dtype or _dtype_of(mapped),
                           **{n: a for n, (a, _) in ops.items()})
    _fill(model, mapped, form, path.name, target)
    record = {
        "format": form.name, "description": form.description, "source_file": path.name,
        "source_path": str(path), "sha256": sha256_of(path), "stages": stages,
        "mapping": mapping, "table": [[s, t, list(sh)] for s, t, sh in form.mapping_table()],
        "operators": {n: where for n, (_, where) in ops.items()}, "protocol": dict(form.protocol),
        "unroll": __version__,
    }
    saved = {"model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
             "K": int(model.K), "spec": str(target), "imported": record}
    if out is not None:
        save_checkpoint(out, saved)
    model.imported = record
    return model, saved


def load_published(spec: str, checkpoint: str | os.PathLike, ratio: float | None = None,
                   mask: float | None = None, data: str | os.PathLike | None = None,
                   phi: str | os.PathLike | None = None, qinit: str | os.PathLike | None = None,
                   mask_file: str | os.PathLike | None = None, fmt: str | None = None,
                   dtype: torch.dtype | None = None, device: str | None = None) -> torch.nn.Module:
    """A ready compiled module running the authors' released weights ``checkpoint`` as ``spec``.

    Example: ``load_published("zoo:ista_net_plus", "ista_net_plus_r25.pkl", ratio=25, data="../shared/data")``.
    The module's ``imported`` attribute records the source file, its SHA-256 and the mapping."""
    opts = ImportOptions(checkpoint=Path(checkpoint), ratio=ratio, mask=mask,
                         data=Path(data) if data is not None else None,
                         phi=Path(phi) if phi is not None else None,
                         qinit=Path(qinit) if qinit is not None else None,
                         mask_file=Path(mask_file) if mask_file is not None else None)
    model, _ = import_checkpoint(spec, checkpoint, opts, fmt=fmt, dtype=dtype)
    return model.to(device) if device is not None else model
