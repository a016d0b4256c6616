"""`unroll reproduce ista-net|admm-net`: train as the paper within a budget, print ours next to theirs."""
from __future__ import annotations

import argparse

__all__ = ["add_parser", "run_reproduce"]


def _duration(text: str) -> float:
    from ..cli.common import duration_arg

    return duration_arg(text)


def _run_ista_net(args: argparse.Namespace) -> int:
    from .ista_net import ReproduceConfig, format_table, reproduce_ista_net, ship_pretrained

    cfg = ReproduceConfig(ratios=tuple(args.ratios or (10, 25)), budget_s=args.budget,
                          networks=tuple(args.networks or ("ista_net_plus",)), data_dir=args.data,
                          device=args.device, out_dir=args.out or "runs/reproduce_ista_net",
                          K=args.K or 9, batch_size=args.batch_size or 64, lr=args.lr or 1e-3,
                          n_blocks=args.blocks, seed=args.seed, progress=not args.quiet)
    print(f"budget: {args.budget:g}s of training per (network, ratio); "
          f"{len(cfg.networks) * len(cfg.ratios)} runs")
    result = reproduce_ista_net(cfg)
    print(format_table(result["rows"]))
    print(f"results: {result['results']}")
    if args.ship:
        import unroll
        from ..evaluate.loading import load_for_eval

        for row in result["rows"]:
            model, _ = load_for_eval(f"zoo:{row['network']}", row["checkpoint"])
            record = {k: row[k] for k in ("network", "ratio", "M", "phi", "steps", "train_seconds",
                                          "psnr", "ssim", "paper_psnr", "images")}
            record.update(device=result["device"], batch_size=cfg.batch_size, lr=cfg.lr, schedule="cosine",
                          n_blocks=cfg.n_blocks, seed=cfg.seed, unroll=unroll.__version__,
                          command="unroll reproduce ista-net")
            print(f"shipped {ship_pretrained(model, row['network'], row['ratio'], record)}")
    return 0


def _run_admm_net(args: argparse.Namespace) -> int:
    from .admm_net import run_command

    return run_command(args)


_PAPERS = {"ista-net": _run_ista_net, "admm-net": _run_admm_net}


def run_reproduce(args: argparse.Namespace) -> int:
    """Dispatch to the chosen paper's reproduction."""
    return _PAPERS[args.paper](args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register reproduce."""
    from .admm_net import add_arguments as add_admm_arguments

    p = sub.add_parser(
        "reproduce", help="reproduce a paper's table (ista-net: Set11 Table 1; admm-net: CS-MRI)",
        description="ista-net: train ISTA-Net+ (and optionally ISTA-Net / FISTA-Net) on 33x33 T91 "
        "blocks for each CS ratio within the time budget, evaluate on Set11 as the paper (PSNR/SSIM "
        "on 0-255) and print our numbers next to the paper's Table 1. admm-net: ADMM-Net on CS-MRI "
        "per mask. Both write OUT/results.json.")
    p.add_argument("paper", choices=sorted(_PAPERS), help="which reproduction")
    p.add_argument("--budget", type=_duration, default=600.0, metavar="T",
                   help="training time PER run (ista-net: per network and ratio; admm-net: per mask), "
                   "e.g. 10m (default 10m)")
    p.add_argument("--data", metavar="DIR", help="data directory (default $UNROLL_DATA, else built-in "
                   "synthetic images and generated operators, said so in the output)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/reproduce_<paper>)")
    p.add_argument("--K", type=int, default=None, help="layers (default: the paper's, 9 / 15)")
    p.add_argument("--batch-size", type=int, default=None, metavar="B", help="batch size (default 64 / 4)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate, cosine-decayed (default "
                   "1e-3 / 2e-3; ISTA-Net's paper: 1e-4 for 200 epochs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--ratios", type=float, nargs="+", default=None, metavar="PCT",
                   help="ista-net: CS ratios in percent (default 10 25; the paper: 1 4 10 25 30 40)")
    p.add_argument("--networks", nargs="+", choices=("ista_net_plus", "ista_net", "fista_net"),
                   help="ista-net: networks to train (default ista_net_plus)")
    p.add_argument("--blocks", type=int, default=88912, metavar="N", help="ista-net: training blocks "
                   "cut from T91 (default 88912, as the paper)")
    p.add_argument("--ship", action="store_true", help="ista-net: save the trained weights into "
                   "unroll/zoo/pretrained")
    add_admm_arguments(p)
    p.set_defaults(func=run_reproduce)
