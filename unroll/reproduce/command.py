"""`unroll reproduce ista-net|admm-net|lista`: train as the paper within a budget, print ours next to theirs."""
from __future__ import annotations

import argparse

from .._version import __version__

__all__ = ["add_parser", "run_reproduce"]


def _duration(text: str) -> float:
    """argparse type for --budget: seconds from 600s, 10m, 1h or 90."""
    from ..train.budget import parse_duration
    try:
        return parse_duration(text.strip() or "-")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _Budget(argparse.Action):
    """--budget T: the duration, and a note that it was given (--published trains only then)."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.budget = values
        namespace.budget_given = True


def _run_ista_published(args: argparse.Namespace) -> int:
    """ista-net --published DIR: the released weights through our specs, optionally our training."""
    from pathlib import Path

    import torch

    from ..data import resolve_data_dir
    from .ista_published import evaluate_released, format_published_table, published_dir, write_results

    pub = published_dir(args.published)
    data_dir, where = resolve_data_dir(args.data)
    if data_dir is None:
        raise ValueError("--published needs the data directory (--data DIR or $UNROLL_DATA) for Phi, "
                         "the MRI masks, Set11 and the brain test images")
    print(where)
    networks = tuple(args.networks or ("ista_net_plus", "ista_net"))
    if "fista_net" in networks:
        raise ValueError("--published: the release has ISTA-Net and ISTA-Net+ weights only (not FISTA-Net)")
    ratios = tuple(args.ratios or (1, 4, 10, 25, 30, 40))
    mri = tuple(args.mri_ratios if args.mri_ratios is not None else (20, 30, 40, 50))
    rows = evaluate_released(pub, Path(data_dir), networks, ratios, mri)
    trained: dict = {}
    record = {"published": str(pub), "data": str(data_dir), "torch": torch.__version__,
              "unroll": __version__, "rows": rows}
    out = Path(args.out or "runs/reproduce_ista_net")
    if getattr(args, "budget_given", False):
        from .ista_net import ReproduceConfig, reproduce_ista_net

        cfg = ReproduceConfig(ratios=ratios, budget_s=args.budget, networks=networks, data_dir=str(data_dir),
                              device=args.device, out_dir=str(out), K=args.K or 9,
                              batch_size=args.batch_size or 64, lr=args.lr or 1e-3, n_blocks=args.blocks,
                              seed=args.seed, progress=not args.quiet)
        own = reproduce_ista_net(cfg)
        trained = {(r["network"], float(r["ratio"])): r["psnr"] for r in own["rows"]}
        record["trained"] = own["rows"]
        print("CS-MRI: no own-training column (train zoo:ista_net_plus_mri with `unroll train`)") if mri else None
    print(format_published_table(rows, trained))
    write_results(out / "published.json", record)
    print(f"results: {out / 'published.json'}")
    return 0


def _run_ista_net(args: argparse.Namespace) -> int:
    if getattr(args, "published", None):
        return _run_ista_published(args)
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
        from ..evaluate.loading import load_for_eval

        for row in result["rows"]:
            model, _ = load_for_eval(f"zoo:{row['network']}", row["checkpoint"])
            record = {k: row[k] for k in ("network", "ratio", "M", "phi", "steps", "train_seconds",
                                          "psnr", "ssim", "paper_psnr", "images")}
            record.update(device=result["device"], batch_size=cfg.batch_size, lr=cfg.lr, schedule="cosine",
                          n_blocks=cfg.n_blocks, seed=cfg.seed, unroll=__version__,
                          command="unroll reproduce ista-net")
            print(f"shipped {ship_pretrained(model, row['network'], row['ratio'], record)}")
    return 0


def _run_admm_net(args: argparse.Namespace) -> int:
    if getattr(args, "published", None):
        from .admm_net_published import run_published

        return run_published(args)
    from .admm_net import run_command

    return run_command(args)


def _run_lista(args: argparse.Namespace) -> int:
    from .lista import run_command

    return run_command(args)


_PAPERS = {"ista-net": _run_ista_net, "admm-net": _run_admm_net, "lista": _run_lista}


def run_reproduce(args: argparse.Namespace) -> int:
    """Dispatch to the chosen paper's reproduction."""
    return _PAPERS[args.paper](args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register reproduce."""
    from .admm_net import add_arguments as add_admm_arguments
    from .lista import add_arguments as add_lista_arguments

    p = sub.add_parser(
        "reproduce", help="reproduce a paper's table (ista-net: Set11 Table 1; admm-net: CS-MRI; "
        "lista: Table 1, sparse codes of image patches)",
        description="ista-net: train ISTA-Net+ (and optionally ISTA-Net / FISTA-Net) on 33x33 T91 "
        "blocks for each CS ratio within the time budget, evaluate on Set11 as the paper (PSNR/SSIM "
        "on 0-255) and print our numbers next to the paper's Table 1. admm-net: ADMM-Net on CS-MRI "
        "per mask. lista: learn dictionaries of 10x10 T91 patches, compute the optimal codes Z* with "
        "zoo:fista, train zoo:lista with K = 1, 3, 7 against them and compare with FISTA on Set11 patches "
        "(Gregor & LeCun 2010, Table 1). All write OUT/results.json.")
    p.add_argument("paper", choices=sorted(_PAPERS), help="which reproduction")
    p.add_argument("--published", metavar="DIR", default=None,
                   help="run the paper's released weights through our compiled specs (ista-net: "
                   "DIR/ista_net/*.pkl with their Qinit, on Set11 and the 50 brain images; admm-net: "
                   "DIR/admm_net/net-stage{7,14,15}.mat as zoo:admm_net_exact on Brain_data1/2, the "
                   "authors' own table); trains our own column only when --budget is given")
    p.add_argument("--mri-ratios", type=float, nargs="*", default=None, metavar="PCT",
                   help="ista-net --published: CS-MRI mask ratios (default 20 30 40 50; none to skip)")
    p.add_argument("--budget", type=_duration, default=600.0, metavar="T", action=_Budget,
                   help="training time PER run (ista-net: per network and ratio; admm-net: per mask; "
                   "lista: per dictionary size, split over the depths in proportion to K), e.g. 10m (default 10m)")
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
    add_lista_arguments(p)
    p.set_defaults(func=run_reproduce)
