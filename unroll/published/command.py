"""`unroll import SPEC CHECKPOINT -o OUT.pt`: the authors' released weights as one of our checkpoints."""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run_import", "add_operator_arguments", "options_from_args"]


def add_operator_arguments(p: argparse.ArgumentParser) -> None:
    """--ratio/--mask, --data, --phi, --qinit, --mask-file: where the operators come from."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("--ratio", type=float, default=None, metavar="R",
                       help="block CS ratio in percent (default: _r<R> in the checkpoint's file name)")
    which.add_argument("--mask", type=float, default=None, metavar="R",
                       help="CS-MRI sampling mask in percent: DATA/mri/masks/mask_R.mat (default: _r<R> "
                       "in the file name)")
    p.add_argument("--data", metavar="DIR", help="data directory with cs_phi/ and mri/masks/ "
                   "(default $UNROLL_DATA)")
    p.add_argument("--phi", metavar="FILE", help="block CS: the sampling matrix .mat (default "
                   "DATA/cs_phi/phi_0_R_1089.mat)")
    p.add_argument("--qinit", metavar="FILE", help="block CS: the authors' Qinit .mat (default "
                   "Qinit_rR.mat beside the checkpoint)")
    p.add_argument("--mask-file", metavar="FILE", help="CS-MRI: a centred sampling mask .mat "
                   "(v5 or v7.3; default DATA/mri/masks/mask_R.mat)")


def options_from_args(args: argparse.Namespace):
    """The :class:`ImportOptions` of the parsed arguments."""
    from .registry import ImportOptions

    def path(v):
        return Path(v) if v is not None else None

    return ImportOptions(checkpoint=Path(args.checkpoint), ratio=args.ratio, mask=args.mask,
                         data=path(args.data), phi=path(args.phi), qinit=path(args.qinit),
                         mask_file=path(args.mask_file))


def run_import(args: argparse.Namespace) -> int:
    """Read, map, compile and save; print where every operator came from and the record."""
    from .importer import import_checkpoint

    model, saved = import_checkpoint(args.spec, args.checkpoint, options_from_args(args),
                                     fmt=args.format, K=args.K, out=args.out)
    rec = saved["imported"]
    n = sum(p.numel() for p in model.parameters())
    print(f"{rec['source_file']} (sha256 {rec['sha256'][:16]}...): format {rec['format']}, "
          f"{rec['stages']} stages, {len(rec['mapping'])} tensors, {n:,} parameters")
    for name, where in rec["operators"].items():
        print(f"operator {name}: {where}")
    print(f"wrote {args.out}: {saved['spec']} (K={saved['K']}); run it with "
          f"`unroll eval {saved['spec']} --ckpt {args.out} --images DIR`")
    return 0


class _ListFormats(argparse.Action):
    """--formats: print every registered format (name, target spec, file endings) and exit 0."""

    def __call__(self, parser, namespace, values, option_string=None):
        from .registry import formats

        for f in formats():
            print(f"{f.name:<20} -> {f.target:<22} {' '.join(f.suffixes):<16} {f.description}")
        parser.exit(0)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register import."""
    p = sub.add_parser(
        "import", help="turn a paper's released checkpoint into an unroll checkpoint",
        description="Read a released checkpoint (never unpickling code), map the authors' parameter "
        "names onto SPEC's through the format's table, compile SPEC with the operators (Phi and the "
        "authors' Qinit, or the MRI mask) and save one of our checkpoints: the state dict with the "
        "operators, K, the spec it belongs to and a record of the source file (name, SHA-256) and "
        "the mapping. A checkpoint that does not fit is an error naming the first mismatch. "
        "Formats: ista_net, ista_net_plus (ISTA-Net-PyTorch .pkl state dicts, block CS), "
        "ista_net_plus_mri (CS-MRI .pkl), admm_net_matconvnet (Deep ADMM-Net net-stage*.mat, MATLAB v7.3, "
        "into zoo:admm_net_exact; zoo:admm_net names it too); `unroll import --formats` lists every "
        "registered one.")
    p.add_argument("--formats", action=_ListFormats, nargs=0, help="list the registered formats and exit")
    p.add_argument("spec", metavar="SPEC", help="the zoo spec to import into (zoo:ista_net_plus), or a "
                   "spec file with --format")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the released file (.pkl state dict, .mat)")
    p.add_argument("-o", "--out", required=True, metavar="OUT.pt", help="where to write our checkpoint")
    p.add_argument("--format", default=None, metavar="NAME",
                   help="the checkpoint format (default: the one registered for SPEC)")
    p.add_argument("--K", type=int, default=None, metavar="N",
                   help="expected number of layers (default: the checkpoint's stage count)")
    add_operator_arguments(p)
    p.set_defaults(func=run_import)
