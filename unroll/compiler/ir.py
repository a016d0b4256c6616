"""The checked IR: typed expression DAGs (`Value`) and the `Program` of one iteration.

A `Value` is an operation on other values with its shape known. Shapes are per sample: the batch
dimension is implicit and `batched` says whether a value has one. Dims are names (`'m'`) until
`bind` replaces them with integers.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import Span

__all__ = ["Value", "Tensor", "Learnable", "StateVar", "CostTerm", "BlockDef", "Program",
           "LEAF_OPS", "IDENT", "fmt_shape"]

# Leaves: what a value can refer to without computing anything.
LEAF_OPS = frozenset({"input", "target", "operator", "const", "param", "state", "number", "index",
                      "identity", "zeros", "dim", "linop", "linop_norm"})


@dataclass(frozen=True, eq=False)
class Value:
    """One typed operation: `op` applied to `args`, with op-specific `attrs` (hashable)."""

    op: str
    args: tuple["Value", ...] = ()
    attrs: tuple = ()
    shape: tuple = ()
    batched: bool = False
    dtype: str = "real"
    span: Span | None = field(default=None, repr=False)
    name: str | None = None

    @property
    def is_number(self) -> bool:
        return self.op == "number"

    def named(self, name: str) -> "Value":
        return replace(self, name=name)


@dataclass(frozen=True)
class Tensor:
    """A declared operator, input or target: its symbolic shape and dtype."""

    name: str
    kind: str
    shape: tuple
    dtype: str
    span: Span
    in_shape: tuple | None = None  # a matrix-free operator: shape <- in_shape, given as callables
    default: "Value | None" = None  # an operator's value when none is given (from dims, operators)


@dataclass(frozen=True)
class Learnable:
    """A learnable symbol: shape, init expression (built at compile time), tying and constraint."""

    name: str
    shape: tuple
    init: Value
    tying: str            # 'shared' | 'per_layer'
    constraint: str | None  # None | 'positive' | 'unit'
    span: Span


@dataclass(frozen=True)
class StateVar:
    """A state carried between iterations; `aux` states accumulate a per-layer term for the loss."""

    name: str
    shape: tuple
    dtype: str
    init: Value
    batched: bool
    span: Span
    aux: bool = False


@dataclass(frozen=True)
class BlockDef:
    """A learnable block: its layers (`blocks.LayerDef`), input and output shapes, and tying."""

    name: str
    layers: tuple
    in_shape: tuple
    out_shape: tuple
    tying: str
    span: Span
    residual: bool = False   # the block computes x + layers(x)


@dataclass(frozen=True)
class CostTerm:
    name: str
    params: tuple[str, ...]
    expr: Value
    span: Span


@dataclass
class Program:
    """One checked iteration: declarations, per-state updates (in terms of the states at the start
    of the iteration), outputs and loss. Produced by `check`, consumed by `unfold`."""

    name: str
    description: str | None
    file: str
    source: str
    dims: dict[str, int | None]
    operators: dict[str, Tensor]
    inputs: dict[str, Tensor]
    targets: dict[str, Tensor]
    consts: dict[str, Value]
    learnables: dict[str, Learnable]
    states: dict[str, StateVar]
    updates: dict[str, Value]
    equations: list[tuple[str, Value]]
    K: int
    outputs: tuple[str, ...]
    loss: Value | None
    costs: dict[str, CostTerm] = field(default_factory=dict)
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)
    final: tuple[str, ...] = ()  # states updated once more after the K iterations (`finally x`)

    @property
    def defaulted(self) -> tuple[str, ...]:
        """The operators with a default (`operator W : [n, m] = expr`), in declaration order."""
        return tuple(n for n, t in self.operators.items() if t.default is not None)


IDENT = ("*",)  # the shape of `I`: square, its size taken from what it is combined with


def fmt_shape(shape: tuple) -> str:
    """`[n, m]`-style rendering of a shape."""
    if shape == IDENT:
        return "[square, any size]"
    return "[" + ", ".join(str(d) for d in shape) + "]"  # a `sizes.Size` prints as `2*c`
