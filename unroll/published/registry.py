"""The registry of released-checkpoint formats: one :class:`Format` per kind of file, each a small
mapping table (authors' names -> our parameter names) plus a reader and the operators it needs.

Registering a format is one call::

    register(Format(
        name="admm_net_matconvnet",                  # unique format name (shown in errors, recorded)
        specs=("admm_net",),                         # zoo specs a user may name on the command line
        target="zoo:admm_net_exact",                 # the spec the imported checkpoint belongs to
        suffixes=(".mat",),                          # file endings this format reads
        reader=read_net_stage_mat,                   # Path -> {authors' key: array or tensor}
        rules=(                                      # the mapping table, "{k}" = stage index 0..K-1
            Rule("stage{k}.X.gamma", "layers.{k}.Gamma_H", (8, 8), convert=lambda a: a.T),
            Rule("stage{k}.X.rho", "layers.{k}.rho", (1, 8)),
            Rule("final.X.gamma", "Gamma_final", (8, 8)),   # no "{k}": a one-off parameter
        ),
        operators=mri_mask_operator("P"),            # ImportOptions -> {operator: (array, where from)}
        K=lambda stages: stages,                     # optional: the spec's K from the stage count
        protocol={"clip": False, "magnitude": True, "peak": 1.0},   # how `unroll eval` scores it
        description="Deep ADMM-Net (Yang et al.), MatConvNet net-stage*.mat",
    ))

A new built-in format lives in its own module of this package, listed in ``BUILTIN_MODULES``.
A reader returns the checkpoint's tensors under the authors' names (prefixes such as DataParallel's
``module.`` already stripped); every key must be matched by exactly one rule, every rule with
``{k}`` must match for each stage 0..K-1 (``{K}`` in a target is the stage count, e.g. the
layer after the last stage), the source shape must equal ``Rule.shape`` and the
converted tensor must fit the compiled model's parameter, else :class:`FormatMismatch` names the
first key that does not fit. ``convert`` (default: reshape to the target's shape) turns the
authors' layout into ours, e.g. a transpose for MATLAB's column-major arrays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["Rule", "Format", "FormatMismatch", "ImportOptions", "register", "formats", "get",
           "formats_for_spec", "aliases_of"]


class FormatMismatch(ValueError):
    """A checkpoint that does not fit its format or the spec (unknown key, missing key, shape)."""


@dataclass(frozen=True)
class Rule:
    """One row of a mapping table: authors' key -> our state-dict key, with the authors' shape.

    ``{k}`` in ``source`` and ``target`` stands for the stage index (0-based); ``shape`` is the
    source array's shape; ``convert`` maps the source tensor to ours (default: reshape)."""

    source: str
    target: str
    shape: tuple[int, ...]
    convert: Callable[[Any], Any] | None = None

    @property
    def staged(self) -> bool:
        """True when the rule repeats once per stage (its names contain ``{k}``)."""
        return "{k}" in self.source

    def pattern(self) -> re.Pattern:
        """Regex of the source key, the stage index captured as group ``k``."""
        parts = [re.escape(p) for p in self.source.split("{k}")]
        return re.compile("(?P<k>0|[1-9][0-9]*)".join(parts) + r"\Z")

    def source_key(self, k: int | None) -> str:
        """The concrete source key of stage ``k``."""
        return self.source.replace("{k}", str(k)) if self.staged else self.source

    def target_key(self, k: int | None) -> str:
        """The concrete target key of stage ``k``."""
        return self.target.replace("{k}", str(k)) if self.staged else self.target


@dataclass(frozen=True)
class ImportOptions:
    """Where the operators come from: the ratio or mask, the data directory and explicit files."""

    checkpoint: Path
    ratio: float | None = None
    mask: float | None = None
    data: Path | None = None
    phi: Path | None = None
    qinit: Path | None = None
    mask_file: Path | None = None


@dataclass(frozen=True)
class Format:
    """A released-checkpoint format: reader, mapping table, operators and evaluation protocol."""

    name: str
    specs: tuple[str, ...]
    target: str
    reader: Callable[[Path], Mapping[str, Any]]
    rules: tuple[Rule, ...]
    operators: Callable[[ImportOptions], dict[str, tuple[np.ndarray, str]]]
    suffixes: tuple[str, ...] = ()
    K: Callable[[int], int] | None = None
    protocol: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def accepts(self, path: Path) -> bool:
        """True when the file's ending is one this format reads (any ending if none are listed)."""
        return not self.suffixes or any(path.name.lower().endswith(s) for s in self.suffixes)

    def mapping_table(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(authors' key, our key, authors' shape) of every rule, as recorded in a checkpoint."""
        return [(r.source, r.target, tuple(r.shape)) for r in self.rules]


_FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add ``fmt`` to the registry (a second format of the same name is an error)."""
    if fmt.name in _FORMATS and _FORMATS[fmt.name] is not fmt:
        raise ValueError(f"a checkpoint format called {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


# The modules that register the built-in formats (imported on first use of the registry).
BUILTIN_MODULES = ("ista", "admm_net")


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def formats() -> list[Format]:
    """Every registered format, by name."""
    _load_builtin()
    return [_FORMATS[n] for n in sorted(_FORMATS)]


def get(name: str) -> Format:
    """The format called ``name``; KeyError listing the known ones otherwise."""
    _load_builtin()
    if name not in _FORMATS:
        raise KeyError(f"no checkpoint format {name!r}; known formats: {', '.join(sorted(_FORMATS))}")
    return _FORMATS[name]


def _zoo_name(spec: str) -> str:
    return str(spec).removeprefix("zoo:")


def formats_for_spec(spec: str) -> list[Format]:
    """The formats that import into ``spec`` (a zoo name, with or without ``zoo:``)."""
    name = _zoo_name(spec)
    return [f for f in formats() if name in f.specs or name == _zoo_name(f.target)]


def aliases_of(target: str) -> set[str]:
    """Every zoo name that a user may give for checkpoints belonging to ``target``."""
    names = {_zoo_name(target)}
    for f in formats():
        if _zoo_name(f.target) == _zoo_name(target):
            names.update(f.specs)
    return names
