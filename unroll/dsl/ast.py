"""The spec's abstract syntax tree: frozen dataclasses, each keeping the `Span` it came from."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Span

__all__ = [
    "Node", "Expr", "Number", "Name", "Call", "BinOp", "Neg", "Transpose", "Norm", "ListExpr",
    "Index", "IndexItem", "Dim", "Algorithm", "DimDecl", "Dims", "TensorDecl", "Const", "Cost",
    "Learn", "State", "Assign", "Iterate", "Final", "Output", "Loss", "Solve", "Layer", "Block",
    "Spec",
]


@dataclass(frozen=True)
class Node:
    span: Span = field(compare=False, repr=False)


# ---- expressions ----
@dataclass(frozen=True)
class Expr(Node):
    pass


@dataclass(frozen=True)
class Number(Expr):
    value: float


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class Call(Expr):
    """`f(a, b, key=v, x: e)`: positional args, keyword args and bound-variable args."""

    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...] = ()
    bound: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class BinOp(Expr):
    """Binary operation; op is one of add, sub, mul, div, matmul, pow (juxtaposition is matmul)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr


@dataclass(frozen=True)
class Transpose(Expr):
    operand: Expr


@dataclass(frozen=True)
class Norm(Expr):
    """`||v||_p`; p is '0', '1', '2' or 'inf' ('2' when no subscript is written)."""

    operand: Expr
    p: str = "2"


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class IndexItem(Node):
    """One entry of an index: `at` alone (x[2]), or a range `lo:hi` (either may be None)."""

    at: Expr | None = None
    lo: Expr | None = None
    hi: Expr | None = None
    is_slice: bool = False


@dataclass(frozen=True)
class Index(Expr):
    """`x[i]`, `x[a:b, :]`: channel picks and ranges per axis (or a layer of a state in the loss)."""

    operand: Expr
    items: tuple[IndexItem, ...]


# ---- declarations ----
@dataclass(frozen=True)
class Dim(Node):
    """One entry of a shape: a dim name, an integer, or (op, Dim, Dim) for `2*c`, `c + 1`."""

    value: str | int | tuple


@dataclass(frozen=True)
class Algorithm(Node):
    name: str
    description: str | None


@dataclass(frozen=True)
class DimDecl(Node):
    name: str
    value: int | None


@dataclass(frozen=True)
class Dims(Node):
    dims: tuple[DimDecl, ...]


@dataclass(frozen=True)
class TensorDecl(Node):
    """`operator`, `input` or `target` declaration."""

    kind: str
    name: str
    shape: tuple[Dim, ...]
    dtype: str = "real"
    in_shape: tuple[Dim, ...] | None = None  # matrix-free operator `[out] <- [in] linear`
    default: "Expr | None" = None  # `operator W : [n, m] = expr`: its value when none is given


@dataclass(frozen=True)
class Const(Node):
    name: str
    expr: Expr


@dataclass(frozen=True)
class Cost(Node):
    name: str
    params: tuple[str, ...]
    expr: Expr


class Word(str):
    """A modifier word (`shared`, `positive(softplus)`) that remembers where it is written, so that
    errors about it point at the word; it compares and hashes as the plain string."""

    span: Span | None = None

    def __new__(cls, text: str, span: Span | None = None) -> "Word":
        word = super().__new__(cls, text)
        word.span = span
        return word


@dataclass(frozen=True)
class Learn(Node):
    name: str
    shape: tuple[Dim, ...]
    init: Expr
    modifiers: tuple[str, ...]


@dataclass(frozen=True)
class State(Node):
    name: str
    shape: tuple[Dim, ...]
    dtype: str
    init: Expr


@dataclass(frozen=True)
class Assign(Node):
    name: str
    expr: Expr
    aux: bool = False


@dataclass(frozen=True)
class Iterate(Node):
    count_name: str
    count: int
    body: tuple[Assign, ...]


@dataclass(frozen=True)
class Final(Node):
    """`finally x`: after the K iterations, one more layer that updates only these states (by
    their rules in the iterate block, with their own copy of the per-layer learnables)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Output(Node):
    names: tuple[str, ...]


@dataclass(frozen=True)
class Loss(Node):
    expr: Expr


@dataclass(frozen=True)
class Solve(Node):
    """`solve f + g with ista(L = L, K = 100)`: a solver template writing the iterate block."""

    objective: Expr
    method: str
    options: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class Layer(Node):
    """One layer of a learnable block: `conv(1 -> 32, 3)`, `relu`, `linear(m -> h, init = xavier)`.
    args: a `Dim` (a size), (Dim, Dim) for `a -> b`, a flag name, or ('init', name, scale)."""

    kind: str
    args: tuple


@dataclass(frozen=True)
class Block(Node):
    name: str
    in_shape: tuple[Dim, ...]
    out_shape: tuple[Dim, ...]
    layers: tuple[Layer, ...]
    modifiers: tuple[str, ...]


@dataclass(frozen=True)
class Spec(Node):
    """A whole parsed file: its statements in order, plus the file name and text for errors."""

    file: str
    source: str
    statements: tuple[Node, ...]
