"""Property-based fuzzing of bad input (bad-input probe, item 7): mutated zoo specs with hostile
edits and random command lines end in exit status 0, 1 or 2 with a message, never a traceback or
an internal error. Each property is bounded to a few seconds (max_examples, derandomized)."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import unroll
from unroll.cli.main import main
from unroll.errors import SpecError
from unroll.limits import MAX_DEPTH

ZOO = {name: unroll.zoo.path(name).read_text() for name in unroll.zoo.names()}
_TOKEN = re.compile(r"\w+|\|\||\S|\n")
HOSTILE = ["1e999", "1e308", "0", "-0", "99999999999999999999", "(", ")", "[", "]", "||", "'", "^",
           "/ 0", "_states", "_full", "upto", "aux", "__class__", "self", "K", "\ufeff", "\t", "\x00",
           "é", "shared", "positive positive", "per_layer", "=", ":", "#", '"', "\\", "I", "k",
           "grad(f, x)", "prox(g, x, 1)", "argmin(x: ||x||_1)", "f(x)", "+ 0" * (MAX_DEPTH + 5),
           "(" * 60, "-" * (MAX_DEPTH + 3), "abs(" * 3, "\n    ", "\n"]
# Each property stops drawing new examples past this many seconds; UNROLL_FUZZ_SCALE=20 runs a
# longer, randomized search (for a hunt by hand, not in the default suite).
_SCALE = int(os.environ.get("UNROLL_FUZZ_SCALE", "1"))
_BUDGET_S = 8.0 * _SCALE
_SETTINGS = dict(deadline=None, derandomize=_SCALE == 1,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _hostile_edit(data, text: str) -> str:
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        spans = [m.span() for m in _TOKEN.finditer(text)]
        if not spans:
            break
        a, b = data.draw(st.sampled_from(spans), label="at")
        kind = data.draw(st.sampled_from(["replace", "insert", "delete_line", "duplicate_line"]))
        if kind == "replace":
            text = text[:a] + data.draw(st.sampled_from(HOSTILE)) + text[b:]
        elif kind == "insert":
            text = text[:b] + " " + data.draw(st.sampled_from(HOSTILE)) + " " + text[b:]
        else:
            lines = text.split("\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = [] if kind == "delete_line" else [lines[i], lines[i]]
            text = "\n".join(lines)
    return text


class _Clock:
    """Skips the remaining examples of a property once its time budget is spent."""

    def __init__(self):
        self.start = None

    def spent(self) -> bool:
        self.start = self.start or time.monotonic()
        return time.monotonic() - self.start > _BUDGET_S


_SPEC_CLOCK, _CLI_CLOCK, _API_CLOCK = _Clock(), _Clock(), _Clock()


@settings(max_examples=60 * _SCALE, **_SETTINGS)
@given(data=st.data(), name=st.sampled_from(sorted(ZOO)))
def test_hostile_spec_edits_through_the_cli(data, name, tmp_path_factory, capsys):
    # Every example draws all its data before the time check: one that stopped drawing early
    # would contradict an earlier example with the same start (hypothesis: FlakyStrategyDefinition).
    text = _hostile_edit(data, ZOO[name])
    cmd = data.draw(st.sampled_from(["check", "show", "compile"]))
    if _SPEC_CLOCK.spent():
        return
    path = tmp_path_factory.mktemp("spec") / "fuzz.unroll"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    argv = [cmd, str(path)] + (["--K", "2", "-o", str(path.with_suffix(".py"))] if cmd == "compile" else [])
    code = main(argv + ["--dim", "n=3"] if "dims n" in text and cmd != "show" else argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err)
    assert "Traceback" not in out + err and "internal error" not in err, err
    if code == 2:
        assert err.strip(), "an error exit prints why"


@settings(max_examples=60 * _SCALE, **_SETTINGS)
@given(data=st.data(), name=st.sampled_from(sorted(ZOO)))
def test_hostile_spec_edits_through_the_api(data, name):
    """`check` raises only SpecError; one that passes unfolds with small sizes or says why not."""
    text = _hostile_edit(data, ZOO[name]) + "\n"
    if _API_CLOCK.spent():  # after the draws, as above
        return
    try:
        program = unroll.check(text)
        dims = {d: v or 3 for d, v in program.dims.items()}
        unroll.unfold(program, K=2, dims=dims)
    except SpecError as e:
        assert e.message and str(e)


_VALUES = ["0", "-1", "1", "2", "1e9", "1000000000000", "nan", "inf", "-inf", "1e39", "", "abc", "\u0665",
           "cuda", "cuda:99", "mps", "bogus", "cpu", "CPU", "meta", "n=0", "n=3", "N=100", "m=\u0665",
           "zoo:lista", "zoo:../x", "/dev/null", "/nonexistent", "-", "--", "10m", "0s", "\n"]
_OPTIONS = ["--K", "--dim", "--steps", "--lr", "--batch-size", "--eval-every", "--device", "--p", "--snr",
            "--ratio", "--mask", "--size", "--blocks", "--time-budget", "--ckpt", "--data", "--out", "-o",
            "--checkpoint-every", "--seed", "--images", "--resume", "--overwrite", "--quiet", "--float64"]
_COMMANDS = ["check", "show", "graph", "compile", "zoo", "train", "eval", "demo", "reproduce", "import",
             "bogus", "--version"]


@settings(max_examples=80 * _SCALE, **_SETTINGS)
@given(cmd=st.sampled_from(_COMMANDS), spec=st.sampled_from(["zoo:lista", "lista", "zoo:ista_net", "",
                                                                 "zoo:nope", "/dev/zero"]),
       rest=st.lists(st.tuples(st.sampled_from(_OPTIONS), st.sampled_from(_VALUES)), max_size=4))
def test_random_command_lines(cmd, spec, rest, tmp_path_factory, capsys, monkeypatch):
    """Training itself is replaced by a stub: an argument vector that reaches it was accepted."""
    if _CLI_CLOCK.spent():
        return
    import unroll.train as train_pkg

    def accepted(*a, **k):
        raise _Accepted
    monkeypatch.setattr(train_pkg, "train", accepted)
    monkeypatch.setattr("unroll.demo.run_demo", accepted, raising=False)
    d = tmp_path_factory.mktemp("cli")
    monkeypatch.chdir(d)
    monkeypatch.setenv("UNROLL_CRASH_DIR", str(d / "crash"))
    argv = [cmd, spec] + [x for opt, val in rest for x in ((opt,) if opt in (
        "--resume", "--overwrite", "--quiet", "--float64") else (opt, val))]
    if cmd in ("graph", "compile") and "-o" not in argv:
        argv += ["-o", str(d / ("g.dot" if cmd == "graph" else "g.py"))]
    try:
        code = main(argv)
    except _Accepted:
        code = 0
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in out + err and "internal error" not in err, (argv, err)
    assert not (d / "crash").exists()


class _Accepted(BaseException):  # passes through the CLI's catch-all
    pass


def test_internal_errors_exit_3_with_the_traceback_saved(tmp_path, capsys, monkeypatch):
    """A bug (an unexpected exception) is not reported as a bad argument."""
    monkeypatch.setenv("UNROLL_CRASH_DIR", str(tmp_path))

    def boom(*a, **k):
        raise RuntimeError("deliberate bug")
    monkeypatch.setattr("unroll.api.check", boom)
    code = main(["check", "zoo:lista"])
    err = capsys.readouterr().err
    assert code == 3
    assert "internal error" in err and "bug" in err and "Traceback" not in err
    saved = list(tmp_path.glob("unroll-crash-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in err
    assert "RuntimeError: deliberate bug" in saved[0].read_text()
