"""`unroll reproduce ista-net --ratios 10 25 --budget 10m`: our Set11 PSNR next to the paper's Table 1."""
from __future__ import annotations

import argparse

__all__ = ["add_parser", "run_reproduce"]

_PAPERS = {"ista-net": ("ista_net_plus",)}


def _duration(text: str) -> float:
    from ..cli.common import duration_arg

    return duration_arg(text)


def run_reproduce(args: argparse.Namespace) -> int:
    """Train per (network, ratio) within --budget, evaluate on Set11, print the comparison, write JSON."""
    from .ista_net import ReproduceConfig, format_table, reproduce_ista_net, ship_pretrained

    networks = tuple(args.networks) if args.networks else _PAPERS[args.paper]
    cfg = ReproduceConfig(ratios=tuple(args.ratios), budget_s=args.budget, networks=networks,
                          data_dir=args.data, device=args.device, out_dir=args.out, K=args.K,
                          batch_size=args.batch_size, lr=args.lr, n_blocks=args.blocks,
                          seed=args.seed, progress=not args.quiet)
    print(f"budget: {args.budget:g}s of training per (network, ratio); {len(networks) * len(cfg.ratios)} runs")
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register reproduce."""
    p = sub.add_parser(
        "reproduce", help="reproduce a paper's table (ista-net: ISTA-Net Table 1 on Set11)",
        description="Train ISTA-Net+ (and optionally ISTA-Net / FISTA-Net) on 33x33 T91 blocks for "
        "each CS ratio within the time budget, evaluate on Set11 as the paper (PSNR/SSIM on 0-255) "
        "and print our numbers next to the paper's Table 1; writes OUT/results.json.")
    p.add_argument("paper", choices=sorted(_PAPERS), help="which reproduction")
    p.add_argument("--ratios", type=float, nargs="+", default=[10, 25], metavar="PCT",
                   help="CS ratios in percent (default 10 25; the paper: 1 4 10 25 30 40)")
    p.add_argument("--budget", type=_duration, default=600.0, metavar="T",
                   help="training time PER (network, ratio), e.g. 10m (default 10m)")
    p.add_argument("--networks", nargs="+", choices=("ista_net_plus", "ista_net", "fista_net"),
                   help="networks to train (default ista_net_plus)")
    p.add_argument("--data", metavar="DIR", help="data directory with images/t91, images/set11 and "
                   "cs_phi (default $UNROLL_DATA, else built-in synthetic images and generated Phi)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", default="runs/reproduce_ista_net", metavar="DIR", help="run directory")
    p.add_argument("--K", type=int, default=9, help="phases (default 9, as the paper)")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed (default 1e-3; "
                   "the paper: 1e-4 for 200 epochs)")
    p.add_argument("--blocks", type=int, default=88912, metavar="N", help="training blocks cut from T91 "
                   "(default 88912, as the paper)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--ship", action="store_true", help="save the trained weights into unroll/zoo/pretrained")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_reproduce)
