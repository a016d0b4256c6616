"""Property: mutated zoo specs (characters or tokens deleted, duplicated, swapped or inserted from
the spec's own vocabulary, numbers and dims changed) make `check`, `unfold` and `compile` either
succeed or raise `SpecError`, never another exception."""
import re

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st

import unroll
from unroll.errors import SpecError

ZOO = {name: unroll.zoo.path(name).read_text() for name in unroll.zoo.names()}
_TOKEN = re.compile(r"\w+|\|\||\S|\n")
VOCAB = sorted({t for text in ZOO.values() for t in _TOKEN.findall(text) if t != "\n"})


def _mutate(data, text: str) -> str:
    """Apply one to three random edits to `text`."""
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        kind = data.draw(st.sampled_from(["del_char", "dup_char", "swap_char", "del_tok", "dup_tok",
                                          "swap_tok", "insert_tok", "number"]), label="kind")
        if kind.endswith("char"):
            if len(text) < 2:
                continue
            i = data.draw(st.integers(0, len(text) - 2), label="at")
            text = {"del_char": text[:i] + text[i + 1:],
                    "dup_char": text[:i] + text[i] + text[i:],
                    "swap_char": text[:i] + text[i + 1] + text[i] + text[i + 2:]}[kind]
            continue
        spans = [m.span() for m in _TOKEN.finditer(text)]
        if kind == "number":
            nums = [m.span() for m in re.finditer(r"\d+(\.\d+)?", text)]
            if nums:
                a, b = data.draw(st.sampled_from(nums), label="num")
                new = data.draw(st.sampled_from(["0", "1", "2", "3", "-1", "0.5", "1e9", "100000"]))
                text = text[:a] + new + text[b:]
            continue
        if len(spans) < 2:
            continue
        i = data.draw(st.integers(0, len(spans) - 2), label="tok")
        (a, b), (c, d) = spans[i], spans[i + 1]
        if kind == "del_tok":
            text = text[:a] + text[b:]
        elif kind == "dup_tok":
            text = text[:b] + " " + text[a:b] + text[b:]
        elif kind == "swap_tok":
            text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
        else:
            tok = data.draw(st.sampled_from(VOCAB), label="insert")
            text = text[:b] + " " + tok + " " + text[b:]
    return text


def _operators(data, program) -> tuple[dict, dict]:
    """Random small dims for the free dims and random operator arrays of the declared shapes."""
    dims = {d: (v if v is not None else data.draw(st.integers(1, 6), label=f"dim {d}"))
            for d, v in program.dims.items()}
    rng = np.random.default_rng(0)
    ops = {}
    for name, t in program.operators.items():
        shape = tuple(d if isinstance(d, int) else dims.get(d, 3) for d in t.shape)
        if np.prod(shape, dtype=float) > 2e6:
            return dims, None
        a = rng.standard_normal(shape)
        ops[name] = a + 1j * rng.standard_normal(shape) if t.dtype == "complex" else a
    return dims, ops


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), name=st.sampled_from(sorted(ZOO)))
def test_mutated_specs_raise_only_spec_errors(data, name):
    text = _mutate(data, ZOO[name]) + "\n"
    try:
        program = unroll.check(text)
        dims, ops = _operators(data, program)
        if ops is None:
            return
        u = unroll.unfold(program, K=2, dims=dims, **ops)
        assert u.K == 2 + bool(program.final)  # a `finally` line adds one layer after the loop
        model = unroll.compile(program, K=2, dims=dims, dtype=torch.float64, **ops)
        assert isinstance(model, torch.nn.Module)
        event("compiled")
    except SpecError as e:
        event(type(e).__name__)
        str(e)  # rendering an error must not fail either
        assert e.message


@settings(max_examples=30, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(ZOO)), sizes=st.lists(st.integers(1, 5), min_size=4, max_size=4))
def test_operators_of_any_shape_raise_only_spec_errors(name, sizes):
    """Operators whose shapes disagree with the spec (or each other) give a SpecError."""
    program = unroll.check(f"zoo:{name}")
    rng = np.random.default_rng(1)
    it = iter(sizes * 4)
    ops = {o: rng.standard_normal(tuple(next(it) for _ in range(len(t.shape) - (sizes[0] == 1))))
           for o, t in program.operators.items()}
    try:
        unroll.compile(f"zoo:{name}", K=2, **ops)
    except SpecError as e:
        assert e.message
