"""Learnable blocks: a fixed set of layer kinds, each stating its parameters and shape rule.

A block is a small network (`conv(1 -> 32, 3) | relu | conv(32 -> 32, 3)`) declared once in a spec
and applied like a function; backends build it from these facts, never from per-algorithm code.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..dsl import ast
from ..errors import ShapeError, SpecError, closest
from .ir import fmt_shape

__all__ = ["LayerDef", "LAYER_KINDS", "layer_def", "flow"]


@dataclass(frozen=True)
class LayerDef:
    """One checked layer: kind, channels in/out (conv, linear), kernel size, whether it has a bias."""

    kind: str
    cin: int = 0
    cout: int = 0
    kernel: int = 0
    bias: bool = False


_ACTIVATIONS = ("relu", "tanh", "sigmoid", "softplus")
LAYER_KINDS = ("conv", "linear") + _ACTIVATIONS


def layer_def(layer: ast.Layer, source: str) -> LayerDef:
    """Check a parsed layer's arguments and return its definition."""
    kind, args = layer.kind, layer.args
    flags = [a for a in args if isinstance(a, str)]
    if any(f != "bias" for f in flags):
        raise SpecError(f"unknown flag '{[f for f in flags if f != 'bias'][0]}' in {kind}(...)",
                        layer.span, "the only flag is `bias`", source)
    bias = "bias" in flags
    nums = [a for a in args if not isinstance(a, str)]
    if kind == "conv":
        if len(nums) != 2 or not isinstance(nums[0], tuple) or not isinstance(nums[1], int):
            raise SpecError("conv takes channels and a kernel size: conv(1 -> 32, 3)", layer.span,
                            None, source)
        if nums[1] % 2 == 0:
            raise SpecError(f"conv kernel size must be odd to keep the image size, got {nums[1]}",
                            layer.span, None, source)
        return LayerDef("conv", nums[0][0], nums[0][1], nums[1], bias)
    if kind == "linear":
        if len(nums) != 1 or not isinstance(nums[0], tuple):
            raise SpecError("linear takes its sizes: linear(64 -> 64)", layer.span, None, source)
        return LayerDef("linear", nums[0][0], nums[0][1], 0, bias)
    if kind in _ACTIVATIONS:
        if args:
            raise SpecError(f"{kind} takes no arguments", layer.span, None, source)
        return LayerDef(kind)
    raise SpecError(f"unknown layer kind '{kind}'", layer.span,
                    closest(kind, LAYER_KINDS) or "layers: " + ", ".join(LAYER_KINDS), source)


def flow(layers: list[tuple[LayerDef, ast.Layer]], in_shape: tuple, source: str) -> tuple:
    """The shape after the layers, checking channel counts on the way (dims may be names)."""
    shape = in_shape
    for d, node in layers:
        if d.kind == "conv":
            if len(shape) != 3:
                raise ShapeError(f"conv needs an image [c, h, w], got {fmt_shape(shape)}", node.span,
                                 "reshape a vector first: reshape(v, [1, 33, 33])", source)
            if isinstance(shape[0], int) and shape[0] != d.cin:
                raise ShapeError(f"conv expects {d.cin} input channels, got {shape[0]}", node.span,
                                 f"the value reaching it is {fmt_shape(shape)}", source)
            shape = (d.cout,) + tuple(shape[1:])
        elif d.kind == "linear":
            if len(shape) != 1:
                raise ShapeError(f"linear needs a vector, got {fmt_shape(shape)}", node.span, None,
                                 source)
            if isinstance(shape[0], int) and shape[0] != d.cin:
                raise ShapeError(f"linear expects {d.cin} inputs, got {shape[0]}", node.span, None,
                                 source)
            shape = (d.cout,)
    return shape
