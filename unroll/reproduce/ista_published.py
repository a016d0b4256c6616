"""``unroll reproduce ista-net --published DIR``: ISTA-Net's tables with the authors' released
weights run by our compiled specs (Set11 block CS, Table 1; CS-MRI brain, Table 3), next to the
paper's numbers and, given a training budget, next to our own training."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["PAPER_MRI", "RELEASED_SET11", "RELEASED_MRI", "published_dir", "evaluate_released", "format_published_table"]

# Zhang & Ghanem, CVPR 2018, Table 3: ISTA-Net+ mean PSNR (dB) on the 50 brain test images.
PAPER_MRI = {20: 38.73, 30: 40.89, 40: 42.52, 50: 44.09}
# The released weights evaluated by the authors' own test procedure (published/README.md).
RELEASED_SET11 = {"ista_net_plus": {1: 17.45, 4: 21.56, 10: 26.49, 25: 32.44, 30: 33.70, 40: 36.02},
                  "ista_net": {1: 17.36, 4: 21.15, 10: 26.26, 25: 31.85, 30: 33.09, 40: 35.38}}
RELEASED_MRI = {20: 38.70, 30: 40.97, 40: 42.65, 50: 44.12}


def published_dir(path: str | os.PathLike) -> Path:
    """The folder holding the ISTA-Net files: ``DIR/ista_net`` or ``DIR`` itself."""
    p = Path(path)
    for cand in (p / "ista_net", p):
        if cand.is_dir() and any(cand.glob("*ista_net*_r*.pkl")):
            return cand
    raise FileNotFoundError(f"--published {path}: no ISTA-Net release (ista_net*_r<R>.pkl) in {p} or {p / 'ista_net'}")


def _label(r: float) -> str:
    return f"{int(r)}" if float(r).is_integer() else f"{r:g}"


def evaluate_released(pub: Path, data_dir: Path, networks: tuple[str, ...], ratios: tuple[float, ...],
                      mri_ratios: tuple[float, ...], ssim: str = "skimage",
                      log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One row per (network, ratio): the released weights imported into our spec and scored on
    Set11 (block CS) or the brain test images (CS-MRI), as the authors' test does."""
    from ..evaluate.folder import evaluate_folder, folder_json
    from ..published import import_checkpoint
    from ..published.registry import ImportOptions
    from ..reproduce.ista_net import PAPER_TABLE1

    jobs = [(net, r, "set11") for net in networks for r in ratios]
    jobs += [("ista_net_plus_mri", r, "brain") for r in mri_ratios]
    rows = []
    for net, ratio, test in jobs:
        mri = test == "brain"
        stem = f"mri_ista_net_plus_r{_label(ratio)}" if mri else f"{net}_r{_label(ratio)}"
        ck = pub / f"{stem}.pkl"
        if not ck.is_file():
            log(f"skipped {net} at {_label(ratio)}%: {ck} not found")
            continue
        opts = ImportOptions(ck, data=data_dir, **({"mask": ratio} if mri else {"ratio": ratio}))
        t0 = time.monotonic()
        model, saved = import_checkpoint(f"zoo:{net}", ck, opts)
        folder = data_dir / ("mri/brain_test" if mri else "images/set11")
        scores = folder_json(evaluate_folder(model, folder, ssim=ssim, protocol=saved["imported"]["protocol"]))
        r = int(ratio) if float(ratio).is_integer() else None
        paper = PAPER_MRI.get(r) if mri else PAPER_TABLE1.get(net, {}).get(r)
        released = RELEASED_MRI.get(r) if mri else RELEASED_SET11.get(net, {}).get(r)
        rows.append({"network": net, "test": test, "ratio": ratio, "paper_psnr": paper,
                     "authors_test_psnr": released, "psnr": scores["mean_psnr"], "ssim": scores["mean_ssim"],
                     "images": scores["images"], "checkpoint": str(ck), "sha256": saved["imported"]["sha256"],
                     "seconds": round(time.monotonic() - t0, 1)})
        log(f"{net} {_label(ratio)}% ({test}): {scores['mean_psnr']:.4f} dB, SSIM {scores['mean_ssim']:.4f}"
            + (f" (authors' test {released:.2f})" if released is not None else ""))
    return rows


_NAMES = {"ista_net_plus": "ISTA-Net+", "ista_net": "ISTA-Net", "ista_net_plus_mri": "ISTA-Net+ MRI"}


def format_published_table(rows: list[dict[str, Any]], trained: dict[tuple[str, float], float] | None = None) -> str:
    """paper | authors' weights by their test | authors' weights by our compiled spec (| ours trained)."""
    trained = trained or {}
    own = bool(trained)
    head = (f"{'network':<14} {'test':<6} {'ratio':>5} {'paper':>7} {'their test':>10} {'our spec':>9} "
            f"{'diff':>6} {'SSIM':>6}" + (f" {'trained':>8}" if own else ""))
    lines = [head, "-" * len(head)]

    def cell(v, w, sign=""):
        return f"{v:{sign}{w}.2f}" if v is not None else f"{'-':>{w}}"

    for r in rows:
        rel = r.get("authors_test_psnr")
        diff = r["psnr"] - rel if rel is not None else None
        line = (f"{_NAMES.get(r['network'], r['network']):<14} {r['test']:<6} {_label(r['ratio']) + '%':>5} "
                f"{cell(r.get('paper_psnr'), 7)} {cell(rel, 10)} {r['psnr']:9.2f} {cell(diff, 6, '+')} "
                f"{r['ssim']:6.4f}")
        if own:
            line += f" {cell(trained.get((r['network'], float(r['ratio']))), 8)}"
        lines.append(line)
    lines.append("PSNR dB on the 0-255 scale, output clipped to [0, 1]; 'their test' = the released weights "
                 "scored by the authors' test procedure (published/README.md); SSIM: scikit-image default")
    return "\n".join(lines)


def write_results(path: Path, record: dict[str, Any]) -> None:
    """Atomically write the JSON results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, path)
