"""Backends lowering an unfolded graph: `torch` (the product) and `numpy` (the float64 oracle)."""
