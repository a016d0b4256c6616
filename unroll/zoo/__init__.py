"""The shipped specs: `list()` gives (name, citation) pairs, `path(name)` the `.unroll` file."""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["names", "list", "path", "citation", "pretrained", "load_published"]

from .weights import pretrained


def load_published(spec: str, checkpoint, **options):
    """The authors' released weights ``checkpoint`` run as ``spec`` (see :func:`unroll.published.load_published`)."""
    from ..published import load_published as _load

    return _load(spec, checkpoint, **options)

_DIR = Path(__file__).parent
_HEADER = re.compile(r'^\s*algorithm\s+\w+\s*(?:"([^"]*)")?', re.M)


def names() -> list[str]:
    """Names of the zoo specs, sorted."""
    return sorted(p.stem for p in _DIR.glob("*.unroll"))


def path(name: str) -> Path:
    """The file of zoo spec `name` (with or without a `zoo:` prefix)."""
    name = name.removeprefix("zoo:")
    p = _DIR / f"{name}.unroll"
    if not re.fullmatch(r"\w+", name) or not p.is_file():  # zoo names only: no paths out of the zoo
        raise KeyError(f"no zoo spec {name!r}; the zoo has: {', '.join(names())}")
    return p


def citation(name: str) -> str:
    """The description string of the spec's `algorithm` line."""
    m = _HEADER.search(path(name).read_text(encoding="utf-8"))
    return (m.group(1) or "") if m else ""


def list() -> list[tuple[str, str]]:  # noqa: A001 - the registry's documented name
    """(name, citation) of every zoo spec."""
    return [(n, citation(n)) for n in names()]
