"""`unroll eval SPEC --ckpt PATH`: whole-image block-CS evaluation of trained weights on Set11."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.blockcs import sampling_operator

__all__ = ["add_parser", "run_eval"]


def run_eval(args: argparse.Namespace) -> int:
    """Print the per-image PSNR/SSIM table; with --out write PNGs, a side-by-side figure and JSON."""
    from ..data import load_phi, load_test_images, resolve_data_dir
    from ..data.blockcs import measurements_for_ratio, phi_file
    from .blockcs import evaluate_images
    from .figures import side_by_side, write_reconstructions
    from .loading import load_for_eval, sampling_matrix

    model, saved = load_for_eval(args.spec, args.ckpt, args.K, args.device)
    if args.images is not None:
        return run_folder(args, model, saved)
    if sampling_operator(model.operator_names, only=False) is None:  # not block CS: CS-MRI (mask P)
        from ..data.mri import fits_mri
        from .mri import run_eval_command
        if not fits_mri(model.unfolded.program):
            raise ValueError(f"unroll eval measures block CS (an operator Phi) and CS-MRI models (a "
                             f"real mask operator, a complex input, a target image); "
                             f"{model.spec_name} is neither (operators: "
                             f"{', '.join(model.operator_names)}). Evaluate it from Python instead.")

        return run_eval_command(args, model)
    data_dir, where = resolve_data_dir(args.data)
    print(where)
    phi = sampling_matrix(model)
    print(f"{model.spec_name} (K={model.K}) from {args.ckpt}: Phi {phi.shape[0]}x{phi.shape[1]} "
          f"(ratio {100 * phi.shape[0] / phi.shape[1]:.1f}%)")
    if args.ratio is not None:
        expected = measurements_for_ratio(args.ratio, phi.shape[1])
        if expected != phi.shape[0]:
            raise ValueError(f"--ratio {args.ratio:g} means M={expected} measurements per block, but the "
                             f"checkpoint was trained with M={phi.shape[0]}")
        ref, src = load_phi(data_dir, args.ratio)
        if phi_file(data_dir, args.ratio) is not None and not _close(ref, phi):
            print(f"warning: the checkpoint's Phi differs from {src.split(' (')[0]}; measuring with the "
                  "checkpoint's Phi")
    images, source = load_test_images(data_dir)
    print(source)
    result = evaluate_images(model, phi, images, batch_size=args.batch_size)
    print(result.table())
    if args.out:
        out = Path(args.out)
        pngs = write_reconstructions(result, out)
        fig = side_by_side(result, out / "side_by_side.png", title=f"{model.spec_name}, K={model.K}, "
                           f"M={phi.shape[0]}: mean {result.mean_psnr:.2f} dB")
        (out / "scores.json").write_text(json.dumps({"spec": str(args.spec), "ckpt": str(args.ckpt),
                                                     **result.to_dict()}, indent=1), encoding="utf-8")
        print(f"wrote {len(pngs)} reconstructions, {fig} and {out / 'scores.json'}")
    return 0


def run_folder(args: argparse.Namespace, model, saved) -> int:
    """``--images DIR``: every image of the folder, per-image table and mean; ``--json`` writes the scores."""
    from .folder import SSIM_VARIANTS, evaluate_folder, folder_json, format_folder_table
    from .loading import sampling_matrix

    protocol = (saved.get("imported") or {}).get("protocol") or {}
    block_cs = sampling_operator(model.operator_names, only=False) is not None
    if block_cs:
        phi = sampling_matrix(model)
        what = f"block CS, Phi {phi.shape[0]}x{phi.shape[1]} ({100 * phi.shape[0] / phi.shape[1]:.1f}%)"
        if args.ratio is not None:
            from ..data.blockcs import measurements_for_ratio
            if measurements_for_ratio(args.ratio, phi.shape[1]) != phi.shape[0]:
                raise ValueError(f"--ratio {args.ratio:g} does not match the checkpoint's Phi "
                                 f"({phi.shape[0]} measurements per block)")
    else:
        P = getattr(model, model.operator_names[0]).detach().cpu().double().numpy()
        what = f"CS-MRI, mask {P.shape[0]}x{P.shape[1]} ({100 * P.mean():.1f}% sampled)"
        if getattr(args, "mask", None) is not None and abs(100 * P.mean() - args.mask) > 2.5:
            raise ValueError(f"--mask {args.mask:g} does not match the checkpoint's mask "
                             f"({100 * P.mean():.1f}% sampled)")
    print(f"{model.spec_name} (K={model.K}) from {args.ckpt}: {what}")
    scores = evaluate_folder(model, args.images, ssim=args.ssim, protocol=protocol)
    clip = protocol.get("clip", block_cs)
    print(f"PSNR and SSIM on the 0-255 scale, output {'clipped to [0, 1]' if clip else 'not clipped'}; "
          f"SSIM: {args.ssim} ({SSIM_VARIANTS[args.ssim][1]})")
    print(format_folder_table(scores))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(folder_json(scores), indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _close(a, b) -> bool:
    import numpy as np

    return a.shape == b.shape and bool(np.allclose(a, b, atol=1e-5))


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register eval."""
    p = sub.add_parser(
        "eval", help="evaluate trained weights on whole test images (block CS: Set11; CS-MRI)",
        description="Rebuild SPEC with the checkpoint's operators and weights. Block CS (operator "
        "Phi): reconstruct every test image block by block (33x33, zero-padded at right/bottom) and "
        "print PSNR and SSIM on the 0-255 scale per image, as ISTA-Net's Table 1. CS-MRI (operator "
        "P): zero-filled / TV-ADMM / model table, as ADMM-Net. With --images DIR: every image of "
        "DIR through the model, per-image PSNR/SSIM and the mean (--json for a file).")
    p.add_argument("spec", metavar="SPEC", help="the spec the weights were trained with (zoo:ista_net_plus)")
    p.add_argument("--ckpt", required=True, metavar="PATH", help="a training checkpoint (last.pt/best.pt) "
                   "or a state dict")
    p.add_argument("--ratio", type=float, default=None, metavar="PCT",
                   help="block CS: CS ratio in percent, checked against the checkpoint's Phi")
    p.add_argument("--K", type=int, default=None, metavar="N", help="layers (default: the checkpoint's)")
    p.add_argument("--data", metavar="DIR", help="data directory with images/set11 (default: "
                   "$UNROLL_DATA, else built-in synthetic images)")
    p.add_argument("--out", metavar="DIR", help="write <image>_rec.png, side_by_side.png and scores.json here")
    p.add_argument("--images", metavar="DIR", default=None, help="evaluate every image of DIR instead: "
                   "PNG/TIFF/JPEG/BMP (colour -> BT.601 luminance Y, 8-bit rounded as OpenCV) and "
                   ".mat v5/v7.3 (variable im_ori or the only 2-D array); block CS or CS-MRI by the "
                   "model's operators")
    p.add_argument("--json", metavar="OUT", default=None, help="with --images: write {mean_psnr, "
                   "mean_ssim, images: [{name, psnr, ssim}]} to OUT")
    p.add_argument("--ssim", choices=("skimage", "gaussian"), default="skimage",
                   help="with --images: SSIM variant; skimage = scikit-image's default 7x7 uniform "
                   "window (ISTA-Net's numbers, default), gaussian = Wang et al.'s 11x11 Gaussian")
    p.add_argument("--batch-size", type=int, default=256, metavar="B", help="blocks per forward pass")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    from .mri import add_eval_arguments

    add_eval_arguments(p)
    p.set_defaults(func=run_eval)
