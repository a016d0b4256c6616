"""Run every benchmark: `python -m benchmarks [--quick] [--device cuda] [--out DIR] [--only NAME ...]`.

bench_lista (compiled vs hand-written LISTA, and compile time for K = 16, 100, 1000), bench_ista_net,
bench_admm_net, bench_fast (torch.compile fast path, bf16, matmul share) and bench_argmin (dense
argmin backward with a learnable coefficient); each prints its table
and writes DIR/<name>.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_admm_net, bench_argmin, bench_fast, bench_ista_net, bench_lista  # noqa: E402

BENCHES = {"lista": bench_lista, "ista_net": bench_ista_net, "admm_net": bench_admm_net,
           "fast": bench_fast, "argmin": bench_argmin}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs with small sizes (for a CPU)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", default="runs/bench", metavar="DIR", help="folder for the JSON files")
    p.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these benchmarks")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: picked)")
    args = p.parse_args(argv)
    failed = []
    for name in args.only or BENCHES:
        flags = ["--device", args.device, "--json", str(Path(args.out) / f"bench_{name}.json")]
        flags += ["--quick"] if args.quick else []
        flags += ["--threads", str(args.threads)] if args.threads else []
        print(f"\n=== bench_{name} {' '.join(flags)}", flush=True)
        t = time.perf_counter()
        try:
            BENCHES[name].main(flags)
        except Exception as e:  # one broken benchmark must not hide the others' numbers
            failed.append(name)
            print(f"bench_{name} FAILED: {type(e).__name__}: {e}")
        print(f"=== bench_{name}: {time.perf_counter() - t:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
