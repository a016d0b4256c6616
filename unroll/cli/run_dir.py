"""The run folder of `unroll train`: a new run never replaces another one's checkpoints unless
asked (--overwrite), and --resume continues only the same task (spec, data and task options)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from .common import CLIError

__all__ = ["RUN_FILES", "SETTINGS", "claim_out_dir", "task_settings", "check_settings"]

RUN_FILES = ("last.pt", "best.pt", "log.csv", "log.json")
SETTINGS = "run.json"  # the task settings of the run in the folder


def _holds_run(out: Path) -> list[str]:
    return [f for f in (*RUN_FILES, SETTINGS) if (out / f).exists()]


def claim_out_dir(out: Path, resume: bool, overwrite: bool) -> str | None:
    """Refuse a folder holding another run unless resuming or overwriting; with --overwrite the old
    run's files are deleted. Returns a note to print, if any."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    found = _holds_run(out) if out.is_dir() else []
    if resume and overwrite:
        raise CLIError("--resume and --overwrite contradict each other: give one")
    if resume:
        return None if (out / "last.pt").exists() else f"no run in {out} to resume: starting a new one"
    if not found:
        return None
    if not overwrite:
        raise CLIError(f"--out {out} already holds a training run ({', '.join(found)}); pass --resume "
                       "to continue it, --overwrite to replace it, or choose another --out")
    for f in found:
        (out / f).unlink()
    return f"--overwrite: removed the previous run in {out} ({', '.join(found)})"


def task_settings(program, args, data_dir: Any, task_text: str) -> dict[str, Any]:
    """What defines the training task of this invocation (compared on --resume)."""
    return {
        "spec": program.name,
        "spec_sha256": hashlib.sha256(program.source.encode()).hexdigest(),
        "data": str(Path(data_dir).resolve()) if data_dir is not None else None,
        "task": task_text,
        **{k: getattr(args, k, None) for k in ("p", "snr", "mask", "size", "ratio", "blocks",
                                                "float64", "amp", "operator", "test_fraction")},
        "dim": dict(getattr(args, "dim", None) or []) or None,
    }


def check_settings(out: Path, now: Mapping[str, Any], resume: bool) -> None:
    """On --resume, refuse a run whose saved task settings differ (naming each difference); then
    record the settings for the next --resume."""
    path = out / SETTINGS
    if resume and path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CLIError(f"{path}: cannot read the saved run settings ({e})") from None
        changed = [k for k in now if k in saved and saved.get(k) != now.get(k)]
        if len(changed) > 1 and "task" in changed:  # the options say it more briefly
            changed.remove("task")
        diffs = [f"{_flag(k)}: the run used {saved.get(k)!r}, now {now.get(k)!r}" for k in changed]
        if diffs:
            raise CLIError(f"cannot resume the run in {out}: the task changed ({'; '.join(diffs)}). "
                           "Use the run's settings, another --out, or --overwrite to start over.")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(now), indent=1))


def _flag(key: str) -> str:
    return {"spec": "spec", "spec_sha256": "spec text", "task": "task", "data": "--data",
            "float64": "--float64"}.get(key, f"--{key}")
