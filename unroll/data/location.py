"""Where data comes from: ``--data DIR``, else ``$UNROLL_DATA``, else the built-in defaults."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

__all__ = ["ENV_VAR", "resolve_data_dir"]

ENV_VAR = "UNROLL_DATA"


def resolve_data_dir(
    arg: str | os.PathLike | None, environ: Mapping[str, str] | None = None
) -> tuple[Path | None, str]:
    """Pick the data directory and return it with a sentence saying which source was used.

    An explicit ``arg`` that does not exist is an error (the user asked for it); a stale
    ``UNROLL_DATA`` falls back to the built-in defaults and the sentence says so.
    """
    env = os.environ if environ is None else environ
    if arg is not None and str(arg) != "":
        path = Path(arg).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data directory given with --data does not exist: {path}")
        return path.resolve(), f"using data directory {path.resolve()} (from --data)"
    value = env.get(ENV_VAR, "")
    if value:
        path = Path(value).expanduser()
        if path.is_dir():
            return path.resolve(), f"using data directory {path.resolve()} (from ${ENV_VAR})"
        return None, (
            f"${ENV_VAR}={value} is not a directory; using built-in defaults "
            "(generated problems, bundled images)"
        )
    return None, (
        f"no --data and no ${ENV_VAR}; using built-in defaults (generated problems, bundled images)"
    )
