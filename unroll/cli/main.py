"""Entry point of the `unroll` command: builds the parser and turns every expected failure into
a message and an exit status (2: bad spec, file or argument; 1: training diverged; 3: a bug in
unroll, traceback saved to a file), never a traceback."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Sequence

from .._version import __version__
from ..errors import SpecError
from . import build_cmds, demo_cmd, inspect_cmds, train_cmd
from .common import CLIError
from .guard import check_args, report_internal_error
from ..evaluate import command as eval_cmd
from ..reproduce import command as reproduce_cmd
from ..published import command as import_cmd

__all__ = ["main", "build_parser"]

_REGISTER = (inspect_cmds.add_parsers, build_cmds.add_parsers, train_cmd.add_parser,
             eval_cmd.add_parser, reproduce_cmd.add_parser, import_cmd.add_parser,
             demo_cmd.add_parser)


def build_parser() -> argparse.ArgumentParser:
    """The `unroll` parser with one subcommand per command module."""
    parser = argparse.ArgumentParser(
        prog="unroll", description="Compile iterative algorithms written as mathematics (.unroll "
        "specs) into trainable PyTorch networks.",
        epilog="SPEC is a .unroll file or a zoo spec (zoo:lista); `unroll zoo` lists them. "
        "`unroll COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"unroll {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _REGISTER:
        register(sub)
    return parser


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def _is_message(e: KeyError) -> bool:
    """A KeyError raised with a sentence (ours) rather than a bare dictionary key."""
    return bool(e.args) and isinstance(e.args[0], str) and " " in e.args[0]


def _message(e: Exception) -> str:
    """The text of an OSError or ValueError, with the file name when the OS error has one."""
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in str(e):
        return f"{e.filename}: {e.strerror or e}"
    return str(e) or type(e).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default sys.argv[1:]); returns the exit status."""
    import torch

    from ..train import TrainingDiverged

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors (argparse printed them)
        return int(e.code or 0) if isinstance(e.code, int) else 2
    threads = torch.get_num_threads()  # train/demo may lower it on a busy CPU; callers get it back
    try:
        check_args(args)
        with warnings.catch_warnings():  # the CLI prints warnings as one line, not Python's format
            warnings.showwarning = _show_warning
            return args.func(args)
    except SpecError as e:
        return _fail(str(e), 2)
    except CLIError as e:
        return _fail(f"error: {e}", e.code)
    except TrainingDiverged as e:
        return _fail(f"error: {e}", 1)
    except (OSError, ValueError) as e:
        return _fail(f"error: {_message(e)}", 2)
    except KeyError as e:
        if not _is_message(e):  # a bare lookup (KeyError: 'D') is a missing check: a bug
            return report_internal_error(e, argv)
        return _fail(f"error: {e.args[0]}", 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as e:  # noqa: BLE001 - anything else is a bug, reported as one (exit 3)
        return report_internal_error(e, argv)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
