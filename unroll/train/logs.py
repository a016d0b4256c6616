"""The run's logs: ``log.csv`` and ``log.json`` rewritten atomically from the rows, and the JSON
form of a report (NaN and Inf become null, which JSON can hold)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .checkpoint import current_umask

__all__ = ["json_safe", "write_text_atomic", "write_logs"]


def json_safe(v: Any) -> Any:
    """``v`` with every non-finite float (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~current_umask())  # as open() would create it, not mkstemp's 0600
    with os.fdopen(fd, "w", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_logs(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """Rewrite ``log.csv`` and ``log.json`` from the rows (so a resumed run's logs stay consistent)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c, v in row.items() if c not in columns and not isinstance(v, (list, tuple)))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    write_text_atomic(out / "log.csv", buf.getvalue())
    write_text_atomic(out / "log.json", json.dumps(json_safe({**meta, "rows": rows}), indent=1))
