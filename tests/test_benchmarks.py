"""Smoke test of the benchmarks at tiny sizes: the hand-written references agree with the compiled
networks (bench() raises otherwise) and the results have the fields RESULTS.md reports."""
import torch

from benchmarks import bench_admm_net, bench_ista_net
from benchmarks.common import peak_memory, ratio_table


def test_ista_net_benchmark_runs_and_hand_written_network_matches():
    r = bench_ista_net.bench(batch=2, device="cpu", repeats=1, memory=False)
    assert r["max_abs_diff"] < 1e-4 and r["loss_abs_diff"] < 1e-5
    for what in ("forward", "forward+backward"):
        assert r["runtime"][what]["ratio_compiled"] > 0
    assert "forward+backward" in ratio_table(r["runtime"], 1.05, per_call=2)


def test_admm_net_benchmark_runs_and_hand_written_network_matches():
    r = bench_admm_net.bench(batch=1, size=16, device="cpu", repeats=1, memory=False)
    assert r["max_abs_diff"] < 1e-4 and r["images_per_s"]["compiled"] > 0


def test_peak_memory_on_cpu_sees_a_large_allocation():
    def alloc():
        a = torch.ones(1_000_000)  # 4 MB, freed before the next one
        del a
        return torch.ones(250_000)
    assert 4_000_000 <= peak_memory(alloc, "cpu")["peak_bytes"] < 6_000_000
