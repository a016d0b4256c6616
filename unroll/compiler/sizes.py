"""Sizes that are integer expressions of dims (`2*c`, `c + 1`, `m - 4`): shape entries beside plain
ints and dim names. A `Size` is a polynomial in canonical form, so `c + c` and `2*c` are equal,
and folds back to an int or a dim name whenever it is one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

__all__ = ["Size", "SizeLike", "size_add", "size_sub", "size_mul", "size_value", "is_size", "may_equal",
           "shapes_may_match"]

# One monomial: the sorted tuple of the dim names it multiplies (() is the constant term).
_Terms = tuple[tuple[tuple[str, ...], int], ...]


@dataclass(frozen=True)
class Size:
    """A polynomial in dim names with integer coefficients, in canonical (sorted) form."""

    terms: _Terms

    def __str__(self) -> str:
        parts = []
        for mono, c in self.terms:
            body = "*".join(mono)
            text = str(c) if not mono else body if c == 1 else f"-{body}" if c == -1 else f"{c}*{body}"
            parts.append(text)
        out = parts[0] if parts else "0"
        for p in parts[1:]:
            out += f" - {p[1:]}" if p.startswith("-") else f" + {p}"
        return out

    __repr__ = __str__


SizeLike = Union[int, str, Size]


def _poly(a: SizeLike) -> dict[tuple[str, ...], int]:
    if isinstance(a, Size):
        return dict(a.terms)
    if isinstance(a, str):
        return {(a,): 1}
    return {(): int(a)} if a else {}


def _fold(p: dict[tuple[str, ...], int]) -> SizeLike:
    p = {m: c for m, c in p.items() if c}
    if not p:
        return 0
    if list(p) == [()]:
        return p[()]
    if len(p) == 1:
        (mono, c), = p.items()
        if len(mono) == 1 and c == 1:
            return mono[0]
    return Size(tuple(sorted(p.items(), key=lambda t: (-len(t[0]), t[0]))))


def size_add(a: SizeLike, b: SizeLike) -> SizeLike:
    p = _poly(a)
    for m, c in _poly(b).items():
        p[m] = p.get(m, 0) + c
    return _fold(p)


def size_sub(a: SizeLike, b: SizeLike) -> SizeLike:
    return size_add(a, size_mul(-1, b))


def size_mul(a: SizeLike, b: SizeLike) -> SizeLike:
    out: dict[tuple[str, ...], int] = {}
    for ma, ca in _poly(a).items():
        for mb, cb in _poly(b).items():
            m = tuple(sorted(ma + mb))
            out[m] = out.get(m, 0) + ca * cb
    return _fold(out)


def is_size(d: object) -> bool:
    return isinstance(d, (int, str, Size))


def size_value(d: SizeLike, dims: Mapping[str, int]) -> int:
    """The integer a size takes with the dims bound (KeyError for an unbound dim)."""
    if isinstance(d, int):
        return d
    if isinstance(d, str):
        return int(dims[d])
    total = 0
    for mono, c in d.terms:
        v = c
        for name in mono:
            v *= int(dims[name])
        total += v
    return total


def may_equal(a: SizeLike, b: SizeLike) -> bool:
    """Whether two sizes can be equal once the dims are bound: equal polynomials are; two numbers
    that differ, two different dim names (`m`, `n`: the spec says they are two sizes) and sizes a
    constant apart (`m + 1`, `m`) are not; anything else (`m` and `64`, `m` and `4*G`) may be, and
    unfold checks it with the sizes known."""
    if a == b:
        return True
    if (isinstance(a, int) and isinstance(b, int)) or (isinstance(a, str) and isinstance(b, str)):
        return False
    return not isinstance(size_sub(a, b), int)


def shapes_may_match(s1: tuple, s2: tuple) -> bool:
    """Whether two shapes of sizes can be equal once the dims are bound (see `may_equal`)."""
    return len(s1) == len(s2) and all(may_equal(a, b) for a, b in zip(s1, s2))
