"""Where spec text comes from: a file, read safely (only regular files: a FIFO or a device would
block or never end; at most MAX_SPEC_BYTES; UTF-8 with an optional byte-order mark), or a shipped
zoo spec found by name (the files in ``unroll/zoo``; ``unroll.zoo`` re-exports the lookup)."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..limits import MAX_SPEC_BYTES

__all__ = ["read_spec_file", "check_spec_text", "ZOO_DIR", "zoo_names", "zoo_path"]

ZOO_DIR = Path(__file__).parent.parent / "zoo"


def zoo_names() -> list[str]:
    """Names of the zoo specs, sorted."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.unroll"))


def zoo_path(name: str) -> Path:
    """The file of zoo spec `name` (with or without a `zoo:` prefix); KeyError naming the zoo's
    specs when there is none."""
    name = name.removeprefix("zoo:")
    p = ZOO_DIR / f"{name}.unroll"
    if not re.fullmatch(r"\w+", name) or not p.is_file():  # zoo names only: no paths out of the zoo
        raise KeyError(f"no zoo spec {name!r}; the zoo has: {', '.join(zoo_names())}")
    return p


def read_spec_file(path: str | os.PathLike) -> str:
    """The text of a spec file; OSError/ValueError (naming the file) for anything but a regular
    UTF-8 file of at most MAX_SPEC_BYTES."""
    p = Path(path)
    st = os.stat(p)  # FileNotFoundError names the file; stat never blocks on a FIFO
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "is a directory, not a .unroll file", str(p))
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{p} is not a regular file (a pipe, socket or device); give a .unroll file")
    if st.st_size > MAX_SPEC_BYTES:
        raise ValueError(f"{p} is {st.st_size:,} bytes; specs are limited to {MAX_SPEC_BYTES:,} bytes")
    with open(p, "rb") as fh:
        raw = fh.read(MAX_SPEC_BYTES + 1)
    if len(raw) > MAX_SPEC_BYTES:
        raise ValueError(f"{p} is over {MAX_SPEC_BYTES:,} bytes; specs are limited to that")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p} is not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None


def check_spec_text(text: str, file: str) -> str:
    """Spec text within the size limit, without a leading byte-order mark."""
    if len(text) > MAX_SPEC_BYTES:
        raise ValueError(f"{file}: {len(text):,} characters; specs are limited to {MAX_SPEC_BYTES:,}")
    return text.removeprefix("\ufeff")
