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


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    """A decompression bomb (F13): the size in the header is checked before any pixel is read."""
    import numpy as np
    from PIL import Image

    from unroll.data import checked
    from unroll.data.images import load_grey
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 50), dtype=np.uint8)).save(path)
    monkeypatch.setattr(checked, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"big.png: 50x40 pixels is outside"):
        load_grey(path)


def test_run_files_follow_the_umask(tmp_path, capsys):
    """Checkpoints and logs are created as open() would (F19), not with mkstemp's 0600."""
    import os
    old = os.umask(0o022)
    try:
        assert main(["train", "zoo:lista", "--K", "2", "--steps", "2", "--batch-size", "8", "--quiet",
                     "--eval-every", "1", "--out", str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    for name in ("last.pt", "best.pt", "log.csv", "log.json"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o644, name
    assert not list((tmp_path / "r").glob(".*.tmp"))
