"""Reading spec text safely: only regular files (a FIFO or a device would block or never end), at
most MAX_SPEC_BYTES, UTF-8 with an optional byte-order mark."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..limits import MAX_SPEC_BYTES

__all__ = ["read_spec_file", "check_spec_text"]


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
