"""The shipped specs: `list()` gives (name, citation) pairs, `path(name)` the `.unroll` file;
`pretrained(...)` and `load_published(...)` give compiled networks with shipped or released weights."""
from __future__ import annotations

import re

from ..dsl.source import zoo_names as names, zoo_path as path
from .weights import pretrained

__all__ = ["names", "list", "path", "citation", "pretrained", "load_published"]


def load_published(spec: str, checkpoint, **options):
    """The authors' released weights ``checkpoint`` run as ``spec`` (see :func:`unroll.published.load_published`)."""
    from ..published import load_published as _load  # torch: not loaded by `import unroll`

    return _load(spec, checkpoint, **options)


_HEADER = re.compile(r'^\s*algorithm\s+\w+\s*(?:"([^"]*)")?', re.M)


def citation(name: str) -> str:
    """The description string of the spec's `algorithm` line."""
    m = _HEADER.search(path(name).read_text(encoding="utf-8"))
    return (m.group(1) or "") if m else ""


def list() -> list[tuple[str, str]]:  # noqa: A001 - the registry's documented name
    """(name, citation) of every zoo spec."""
    return [(n, citation(n)) for n in names()]
