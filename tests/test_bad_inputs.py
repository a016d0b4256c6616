"""The bad-input corpus (tests/bad_input_cases.py) run in-process through `main(argv)`: every case
ends with its exit status and a message, never a traceback or an internal error."""
from __future__ import annotations

import pytest

from unroll.cli.main import main

from tests.bad_input_cases import ALL_CASES, Case


def _run(case: Case, tmp_path, capsys) -> tuple[int, str]:
    argv = case.make(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_cli_bad_input(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNROLL_CRASH_DIR", str(tmp_path / "crash"))
    code, text = _run(case, tmp_path, capsys)
    assert "Traceback" not in text and "internal error" not in text, text
    assert code == case.code, text
    assert case.needle in text, text
    if case.finding == "F17" and code == 0:  # the generated module imports
        import importlib.util
        spec = importlib.util.spec_from_file_location("gen", tmp_path / "gen.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
