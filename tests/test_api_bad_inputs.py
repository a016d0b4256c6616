"""The Python API under bad input (bad-input probe F4, F5, F8, F14, F16-F20): the probes of
benchmarks/probe_bad_input.py, each a clean SpecError/ValueError/TypeError or a working result."""
from __future__ import annotations

import pytest

from benchmarks.probe_bad_input import _api_probes

PROBES = _api_probes()


@pytest.mark.parametrize("probe", PROBES, ids=[f"{p[0]}-{p[1]}" for p in PROBES])
def test_api_probe(probe):
    _, _, fn, expected = probe
    if expected is None:
        fn()
    else:
        with pytest.raises(expected) as info:
            fn()
        assert str(info.value)
