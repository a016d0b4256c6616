"""Benchmarks: `python -m benchmarks [--quick] [--device cuda]` runs them all (see docs/performance.md)."""
