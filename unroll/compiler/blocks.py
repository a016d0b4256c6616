"""Learnable blocks: a fixed set of layer kinds, each stating its parameters and shape rule.

A block is a small network (`conv(1 -> 32, 3) | relu | conv(32 -> 32, 3)`) declared once in a spec
and applied like a function; backends build it from these facts, never from per-algorithm code.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

from ..dsl import ast
from ..errors import NameError_, ShapeError, SpecError, TyingError, closest
from .channels import CALLS
from .ir import BlockDef, Value, fmt_shape
from .resolve import CONTEXTS, MODIFIERS_TYING
from .sizes import SizeLike, size_sub, size_value

__all__ = ["LayerDef", "LAYER_KINDS", "INITS", "layer_def", "flow", "concrete_layers",
           "check_block", "call_block", "call_adjoint"]


@dataclass(frozen=True)
class LayerDef:
    """One checked layer: kind, channels in/out (conv, linear; ints, dims or size expressions),
    kernel size, whether it has a bias, and its initialisation (None = Xavier-normal) with a scale."""

    kind: str
    cin: SizeLike = 0
    cout: SizeLike = 0
    kernel: int = 0
    bias: bool = False
    init: str | None = None
    scale: float = 1.0


_ACTIVATIONS = ("relu", "tanh", "sigmoid", "softplus")
LAYER_KINDS = ("conv", "linear") + _ACTIVATIONS
INITS = ("xavier", "kaiming", "orthogonal", "zeros", "dct")


def layer_def(layer: ast.Layer, source: str, size_of: Callable) -> LayerDef:
    """Check a parsed layer's arguments and return its definition; `size_of(dim)` turns a parsed
    size (a `Dim` or a bare name) into an int, dim name or `Size`, raising on unknown names."""
    kind, args = layer.kind, layer.args
    inits = [a for a in args if isinstance(a, tuple) and a and a[0] == "init"]
    flags = [a for a in args if isinstance(a, str)]
    bias = "bias" in flags
    init, scale = None, 1.0
    for _, key, name, sc in inits:
        if key != "init":
            raise SpecError(f"unknown layer option '{key}' in {kind}(...)", layer.span,
                            "the option is init = " + " | ".join(INITS), source)
        if name not in INITS:
            raise SpecError(f"unknown initialisation '{name}'", layer.span,
                            closest(name, INITS) or "inits: " + ", ".join(INITS), source)
        init, scale = name, sc
    nums = [a for a in args if a not in inits and a != "bias"]
    nums = [(size_of(a[0]), size_of(a[1])) if isinstance(a, tuple) else size_of(a) for a in nums]
    if kind == "conv":
        if len(nums) != 2 or not isinstance(nums[0], tuple) or not isinstance(nums[1], int):
            raise SpecError("conv takes channels and a kernel size: conv(1 -> 32, 3)", layer.span,
                            None, source)
        if nums[1] % 2 == 0:
            raise SpecError(f"conv kernel size must be odd to keep the image size, got {nums[1]}",
                            layer.span, None, source)
        return LayerDef("conv", nums[0][0], nums[0][1], nums[1], bias, init, scale)
    if kind == "linear":
        if len(nums) != 1 or not isinstance(nums[0], tuple):
            raise SpecError("linear takes its sizes: linear(64 -> 64)", layer.span, None, source)
        return LayerDef("linear", nums[0][0], nums[0][1], 0, bias, init, scale)
    if kind in _ACTIVATIONS:
        if args:
            raise SpecError(f"{kind} takes no arguments", layer.span, None, source)
        return LayerDef(kind)
    raise SpecError(f"unknown layer kind '{kind}'", layer.span,
                    closest(kind, LAYER_KINDS) or "layers: " + ", ".join(LAYER_KINDS), source)


def flow(layers: list[tuple[LayerDef, ast.Layer]], in_shape: tuple, source: str) -> tuple:
    """The shape after the layers, checking channel counts on the way (sizes may be symbolic:
    those that differ only symbolically are checked again when the dims are bound)."""
    shape = in_shape
    for d, node in layers:
        if d.kind == "conv":
            if len(shape) != 3:
                raise ShapeError(f"conv needs an image [c, h, w], got {fmt_shape(shape)}", node.span,
                                 "reshape a vector first: reshape(v, [1, 33, 33])", source)
            if _differ(shape[0], d.cin):
                raise ShapeError(f"conv expects {d.cin} input channels, got {shape[0]}", node.span,
                                 f"the value reaching it is {fmt_shape(shape)}", source)
            shape = (d.cout,) + tuple(shape[1:])
        elif d.kind == "linear":
            if len(shape) != 1:
                raise ShapeError(f"linear needs a vector, got {fmt_shape(shape)}", node.span, None,
                                 source)
            if _differ(shape[0], d.cin):
                raise ShapeError(f"linear expects {d.cin} inputs, got {shape[0]}", node.span, None,
                                 source)
            shape = (d.cout,)
    return shape


def _differ(a: SizeLike, b: SizeLike) -> bool:
    """Sizes that can never be equal: their difference is a non-zero number (`h` and `h + 1`);
    other symbolic ones wait for the dims."""
    d = size_sub(a, b)
    return isinstance(d, int) and d != 0


def concrete_layers(blk, dims: Mapping[str, int], source: str) -> tuple[LayerDef, ...]:
    """The block's layers with every size evaluated, its channel flow re-checked with numbers."""
    out = []
    for d in blk.layers:
        cin, cout = size_value(d.cin, dims), size_value(d.cout, dims)
        if d.kind in ("conv", "linear") and (cin < 1 or cout < 1):
            raise ShapeError(f"block {blk.name}: {d.kind}({d.cin} -> {d.cout}) has a size below 1 "
                             f"with {', '.join(f'{k}={v}' for k, v in dims.items())}", blk.span,
                             None, source)
        out.append(replace(d, cin=cin, cout=cout))
    shape = tuple(size_value(x, dims) for x in blk.in_shape)
    want = tuple(size_value(x, dims) for x in blk.out_shape)
    for d in out:
        if d.kind in ("conv", "linear"):
            if shape[0] != d.cin:
                raise ShapeError(f"block {blk.name}: a {d.kind} expects {d.cin} input channels but "
                                 f"gets {shape[0]} (with the dims bound)", blk.span, None, source)
            shape = (d.cout,) + tuple(shape[1:])
    if shape != want:
        raise ShapeError(f"block {blk.name} gives {fmt_shape(shape)}, not the declared "
                         f"{fmt_shape(want)} (with the dims bound)", blk.span, None, source)
    return tuple(out)


def call_block(ch, e: ast.Call, ctx, env) -> Value:
    """Apply a declared block; several arguments are joined along the channel axis first."""
    blk = ch.blocks[e.func]
    if "block" not in CONTEXTS[ctx]:
        raise ch.err(NameError_, f"block '{e.func}' can only be applied inside iterate", e)
    if not e.args or e.kwargs or e.bound:
        raise ch.err(SpecError, f"block {e.func} takes one argument (or several, joined "
                       "along the channel axis)", e)
    if len(e.args) > 1:  # B(a, b, c) is B(cat([a, b, c], 0))
        joined = ast.Call(e.span, "cat", (ast.ListExpr(e.span, tuple(e.args)),))
        v = CALLS["cat"](ch, joined, ctx, env)
        e = ast.Call(e.span, e.func, (joined,))
    else:
        v = ch.expr(e.args[0], ctx, env)
    if v.shape != blk.in_shape:
        raise ch.err(ShapeError, f"block {e.func} takes {fmt_shape(blk.in_shape)}, got "
                       f"{fmt_shape(v.shape)}", e.args[0], ch.describe(v, e.args[0]))
    return Value("block", (v,), (e.func,), blk.out_shape, v.batched, v.dtype, e.span)


def call_adjoint(ch, e: ast.BinOp, ctx, env) -> Value:
    """`B'(v)`: the adjoint of a linear block (conv and linear layers without bias, residual or
    not), from [out] back to [in], with B's weights: what variational networks apply as K_i'."""
    name = e.left.operand.id
    blk = ch.blocks[name]
    if "block" not in CONTEXTS[ctx]:
        raise ch.err(NameError_, f"block '{name}' can only be applied inside iterate", e)
    for i, d in enumerate(blk.layers, 1):
        if d.kind not in ("conv", "linear") or d.bias:
            what = f"{d.kind}(...) with a bias" if d.bias else d.kind
            raise ch.err(SpecError, f"{name}' needs a linear block, but layer {i} of {name} is "
                         f"{what}", e.left, "the adjoint exists for conv and linear layers "
                         "without bias (residual or not)")
    v = ch.expr(e.right, ctx, env)
    if v.shape != blk.out_shape:
        raise ch.err(ShapeError, f"{name}' takes {fmt_shape(blk.out_shape)} (what {name} gives), "
                     f"got {fmt_shape(v.shape)}", e.right, ch.describe(v, e.right))
    return Value("block_t", (v,), (name,), blk.in_shape, v.batched, v.dtype, e.span)


def check_block(ch, s: ast.Block) -> None:
    """Check a `block` declaration (layers, sizes, tying, residual) and declare it."""
    tying = [m for m in s.modifiers if m in MODIFIERS_TYING]
    if len(set(tying)) > 1:
        raise ch.err(TyingError, f"block {s.name} is both shared and per_layer", s,
                       "choose one tying: shared (one copy) or per_layer (one per layer)")
    bad = [m for m in s.modifiers if m not in MODIFIERS_TYING + ("residual",)]
    if bad:
        raise ch.err(TyingError, f"a block cannot be {bad[0]}", s,
                       "blocks take shared or per_layer, and residual")
    defs = [(layer_def(layer, ch.src, ch.dim_size), layer) for layer in s.layers]
    in_shape, out_shape = ch.shape_of(s.in_shape), ch.shape_of(s.out_shape)
    got = flow(defs, in_shape, ch.src)
    if got != out_shape:
        raise ch.err(ShapeError, f"block {s.name} is declared to give {fmt_shape(out_shape)} "
                       f"but its layers give {fmt_shape(got)}", s)
    residual = "residual" in s.modifiers
    if residual and in_shape != out_shape:
        raise ch.err(ShapeError, f"a residual block returns x + layers(x), so it keeps the "
                       f"shape; {s.name} maps {fmt_shape(in_shape)} to {fmt_shape(out_shape)}", s)
    ch.blocks[s.name] = BlockDef(s.name, tuple(d for d, _ in defs), in_shape, out_shape,
                                   tying[0] if tying else "shared", s.span, residual)
    ch.declare(s.name, "block", None, s)
