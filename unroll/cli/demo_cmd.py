"""`unroll demo`: argument parsing for `unroll.demo.run_demo`."""
from __future__ import annotations

import argparse

from .common import CLIError, duration_arg

__all__ = ["add_parser", "run_demo_cmd"]


def run_demo_cmd(args: argparse.Namespace) -> int:
    """Run the LISTA-vs-ISTA/FISTA demo with the parsed options."""
    import torch

    from ..demo import DemoConfig, run_demo
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"--device {args.device}: CUDA is not available here; use --device cpu")
    for name in ("K", "steps", "baseline_iters", "n_test"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be at least 1")
    run_demo(DemoConfig(data=args.data, time_budget=args.time_budget, device=args.device,
                        out=args.out, K=args.K, lr=args.lr, batch_size=args.batch_size,
                        steps=args.steps, baseline_iters=args.baseline_iters, n_test=args.n_test,
                        progress=not args.quiet, pretrained=args.pretrained))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register demo (test-only options are hidden from --help)."""
    p = sub.add_parser(
        "demo", help="train LISTA and compare it with ISTA and FISTA (a few minutes on a CPU)",
        description="The LISTA benchmark end to end: sparse coding with A = DIR/sparse/D.mat "
        "(else a generated 250x500 Gaussian A), fixed test codes DIR/sparse/xtest_n500_p10.npy when "
        "present. Trains LISTA (zoo:lista, K=16) for the time budget, runs ISTA and FISTA (zoo:ista, "
        "zoo:fista) for 1000 iterations on the same test set, prints NMSE (dB) per layer and at "
        "16/100/1000 iterations, and saves OUT/nmse.png and OUT/nmse.json. The baselines take "
        "extra time beyond the budget (under a minute on a CPU).")
    p.add_argument("--data", metavar="DIR",
                   help="data directory (default: $UNROLL_DATA, else generated data)")
    p.add_argument("--time-budget", type=duration_arg, default=180.0, metavar="T",
                   help="LISTA training time, e.g. 3m (default), 90s, 1h")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="where the plot, JSON, checkpoints and logs go (default runs/demo)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument("--batch-size", type=int, default=512, metavar="B",
                   help="batch size (default 512: on a CPU, big batches gain most per second)")
    p.add_argument("--pretrained", action="store_true",
                   help="no training: start from the shipped LISTA weights (unroll.zoo.pretrained("
                        "'lista'), trained on this benchmark) and show their curve at once; the "
                        "ISTA/FISTA baselines are computed once and cached in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # Hidden: small runs for tests.
    p.add_argument("--K", type=int, default=16, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--baseline-iters", type=int, default=1000, help=argparse.SUPPRESS)
    p.add_argument("--n-test", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run_demo_cmd)
