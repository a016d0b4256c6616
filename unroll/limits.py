"""Documented limits on what a spec and the command line may ask for, checked before any work
starts so that no input can hang unroll or exhaust memory (docs/cli.md lists them)."""
from __future__ import annotations

__all__ = ["MAX_SPEC_BYTES", "MAX_DEPTH", "MAX_K", "MAX_DIM", "MAX_ELEMENTS", "MAX_GRAPH_LAYERS",
           "MAX_SOLVER_ITERS", "MAX_COST_NESTING"]

MAX_SPEC_BYTES = 1_000_000  # a spec file (or text) larger than 1 MB is refused unread
MAX_DEPTH = 100  # nesting of one expression (a sum of 100 terms nests 100 deep)
MAX_K = 10_000  # layers: `iterate K = N`, --K, and the K of solver templates
MAX_DIM = 10_000_000  # one size: a dim, a shape entry, a grid's points, a layer's channels
MAX_ELEMENTS = 500_000_000  # entries of one tensor (2 GB in float32), checked when sizes are bound
MAX_GRAPH_LAYERS = 32  # `unroll graph` draws at most this many layers
MAX_SOLVER_ITERS = 10_000  # iterations of an inner solver (argmin's cg iters)
MAX_COST_NESTING = 16  # costs calling costs
