"""Deep ADMM-Net (yangyan92/Deep-ADMM-Net) MatConvNet networks `net-stage{N}.mat` (MATLAB v7.3,
read with h5py) mapped onto zoo:admm_net_exact, the network exactly as the authors' code computes it.

`net.layers` is a cell of structs, in the order
`X_org, Convo, Non_linorg, Multi_org, (X_mid, Convo, Non_linmid, Multi_mid)*, X_mid, Convo,
Non_linmid, Multi_final, X_mid, loss`: K full stages (X, C, Z, M) and one more X layer. The reader
checks that order and every array's shape, and names the stage's parameters as the table below
expects: `stage{k}.X.gamma` (the 8x8 DCT coefficients of the X layer's filters, [atom, filter]),
`stage{k}.X.rho`, `stage{k}.C.gamma`, `stage{k}.Z.q` (101 PLF values per channel), `stage{k}.M.eta`,
and `final.X.gamma`, `final.X.rho` for the output layer. Arrays are returned in MATLAB's own layout
(h5py gives them transposed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .operators import mri_mask_operator
from .registry import Format, FormatMismatch, ImportOptions, Rule, register

__all__ = ["read_net_stage_mat", "ADMM_NET", "LAYER_WEIGHTS"]

# Layer type -> (short name in our keys, (authors' weight name, MATLAB shape) per weight).
LAYER_WEIGHTS: dict[str, tuple[str, tuple[tuple[str, tuple[int, int]], ...]]] = {
    "X_org": ("X", (("gamma", (8, 8)), ("rho", (1, 8)))),
    "X_mid": ("X", (("gamma", (8, 8)), ("rho", (1, 8)))),
    "Convo": ("C", (("gamma", (8, 8)),)),
    "Non_linorg": ("Z", (("q", (101, 8)),)),
    "Non_linmid": ("Z", (("q", (101, 8)),)),
    "Multi_org": ("M", (("eta", (1, 8)),)),
    "Multi_mid": ("M", (("eta", (1, 8)),)),
    "Multi_final": ("M", (("eta", (1, 8)),)),
    "loss": ("loss", ()),
}


def _expected(n: int) -> list[str]:
    """The layer types of a network with n layers, as the authors' code builds it."""
    stages = (n - 2) // 4
    if stages < 1 or n != 4 * stages + 2:
        return []
    types = ["X_org", "Convo", "Non_linorg", "Multi_org"]
    for s in range(1, stages):
        types += ["X_mid", "Convo", "Non_linmid", "Multi_final" if s == stages - 1 else "Multi_mid"]
    return types + ["X_mid", "loss"]


def _text(ds) -> str:
    """A MATLAB char array stored by v7.3 (uint16 code points)."""
    return "".join(chr(int(c)) for c in np.asarray(ds).ravel())


def read_net_stage_mat(path: Path) -> dict[str, np.ndarray]:
    """The weights of a `net-stage*.mat` under the keys of the mapping table, in MATLAB's layout;
    FormatMismatch naming the first layer or array that does not fit."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise FormatMismatch(f"{path.name}: not a MATLAB v7.3 (HDF5) file; Deep ADMM-Net networks "
                             "are saved with save(..., '-v7.3')") from None
    with f:
        if "net" not in f or not isinstance(f["net"], h5py.Group) or "layers" not in f["net"]:
            raise FormatMismatch(f"{path.name}: no variable net.layers (variables: "
                                 f"{', '.join(k for k in f.keys() if not k.startswith('#')) or 'none'})")
        refs = np.asarray(f["net"]["layers"]).ravel()
        if refs.dtype != object:
            raise FormatMismatch(f"{path.name}: net.layers is not a cell array")
        want = _expected(len(refs))
        out: dict[str, np.ndarray] = {}
        stage = -1
        for i, ref in enumerate(refs):
            where = f"{path.name}: net.layers{{{i + 1}}}"
            layer = f[ref]
            kind = _text(layer["type"]) if isinstance(layer, h5py.Group) and "type" in layer else "?"
            if kind not in LAYER_WEIGHTS:
                raise FormatMismatch(f"{where} has type {kind!r}, not a Deep ADMM-Net layer "
                                     f"({', '.join(LAYER_WEIGHTS)})")
            if not want:
                raise FormatMismatch(f"{path.name}: net.layers has {len(refs)} layers; a Deep ADMM-Net "
                                     "with K stages has 4K + 2 (X, C, Z, M per stage, a final X, loss)")
            if kind != want[i]:
                raise FormatMismatch(f"{where} is {kind!r} where the stage order puts {want[i]!r}")
            short, weights = LAYER_WEIGHTS[kind]
            if short == "X":
                stage += 1
            if not weights:
                continue
            cells = np.asarray(layer["weights"]).ravel() if "weights" in layer else np.array([])
            if cells.dtype != object or len(cells) != len(weights):
                raise FormatMismatch(f"{where} ({kind}) has {len(cells)} weight arrays, expected "
                                     f"{len(weights)} ({', '.join(n for n, _ in weights)})")
            final = short == "X" and i == len(refs) - 2
            for cell, (name, shape) in zip(cells, weights):
                arr = np.asarray(f[cell], dtype=np.float64).T  # h5py gives MATLAB arrays transposed
                if arr.shape != shape:
                    raise FormatMismatch(f"{where} ({kind}) {name} has shape {'x'.join(map(str, arr.shape))}, "
                                         f"expected {'x'.join(map(str, shape))}")
                key = f"final.X.{name}" if final else f"stage{stage}.{short}.{name}"
                out[key] = arr
    return out


def _mask_operator(opts: ImportOptions) -> dict[str, tuple[np.ndarray, str]]:
    """The k-space mask P (DC at [0, 0]): `--mask-file`, else `DATA/mri/masks/mask_{R}.mat` with R
    from `--mask` (20 when not given: every released network is trained for 20 % sampling)."""
    if opts.mask is None and opts.mask_file is None:
        opts = ImportOptions(**{**opts.__dict__, "mask": 20.0})
    return mri_mask_operator("P")(opts)


def _q(a):
    return a.T  # MATLAB [grid point, channel] -> ours [channel, grid point]


# The mapping table: authors' arrays (MATLAB layout) -> parameters of zoo:admm_net_exact. Γ is
# [atom, filter] in both; the final X layer is the (K+1)-th layer ("{K}": the stage count).
RULES = (
    Rule("stage{k}.X.gamma", "layers.{k}.GH", (8, 8)),
    Rule("stage{k}.X.rho", "layers.{k}.rho", (1, 8)),
    Rule("stage{k}.C.gamma", "layers.{k}.GD", (8, 8)),
    Rule("stage{k}.Z.q", "layers.{k}.q", (101, 8), _q),
    Rule("stage{k}.M.eta", "layers.{k}.eta", (1, 8)),
    Rule("final.X.gamma", "layers.{K}.GH", (8, 8)),
    Rule("final.X.rho", "layers.{K}.rho", (1, 8)),
)

ADMM_NET = register(Format(
    name="admm_net_matconvnet", specs=("admm_net", "admm_net_exact"), target="zoo:admm_net_exact",
    suffixes=(".mat",), reader=read_net_stage_mat, rules=RULES, operators=_mask_operator,
    K=lambda stages: stages,
    # The authors' demo: PSNR of |x| against the [0, 1] image, no clipping, peak 1.
    protocol={"clip": False, "magnitude": True, "peak": 1.0},
    description="Deep ADMM-Net (Yang, Sun, Li & Xu, NIPS 2016), MatConvNet net-stage*.mat (v7.3)"))
