"""Benchmarks: `python -m benchmarks.bench_lista` (compiled LISTA against a hand-written one)."""
