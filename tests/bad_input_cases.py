"""The bad-input corpus: one case per finding of the bad-input probe (F1-F20) and its variants.

Each case builds its files in a folder and gives a CLI argument vector and the exit status it must
end with (2: a user error, 1: divergence, 0: accepted) plus a text the message must contain. The
test suite runs them in-process (tests/test_bad_inputs.py); benchmarks/probe_bad_input.py runs the
same cases as subprocesses with a time limit and tallies them.
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ZOO = Path(__file__).resolve().parents[1] / "unroll" / "zoo"
LISTA = (ZOO / "lista.unroll").read_text()
SMALL = ["--K", "2", "--batch-size", "8", "--quiet"]


@dataclass
class Case:
    """`make(dir)` writes what the case needs and returns the argv; `code` and `needle` are what
    the run must end with; `finding` names the report's item."""

    finding: str
    name: str
    make: Callable[[Path], list[str]]
    code: int = 2
    needle: str = "error"
    slow: bool = False  # trains or reads real data: kept out of the fastest runs

    @property
    def id(self) -> str:
        return f"{self.finding}-{self.name}"


def _spec(d: Path, text: str, name: str = "s.unroll") -> str:
    p = d / name
    p.write_text(text)
    return str(p)


def _lista_with(old: str, new: str) -> Callable[[Path], str]:
    assert old in LISTA, old
    return lambda d: _spec(d, LISTA.replace(old, new, 1))


def _train_run(d: Path, steps: int = 2) -> Path:
    """A finished 2-layer LISTA run in d/run (trained in-process once per folder)."""
    from unroll.cli.main import main
    out = d / "run"
    if not (out / "last.pt").exists():
        code = main(["train", "zoo:lista", *SMALL, "--steps", str(steps), "--eval-every", "1",
                     "--out", str(out)])
        assert code == 0
    return out


def _ckpt_variant(kind: str) -> Callable[[Path], list[str]]:
    """A checkpoint spoiled in one way, evaluated with `unroll eval`."""
    def make(d: Path) -> list[str]:
        import torch
        src = _train_run(d) / "last.pt"
        bad = d / f"{kind}.pt"
        raw = src.read_bytes()
        if kind == "truncated":
            bad.write_bytes(raw[: len(raw) // 2])
        elif kind == "empty":
            bad.write_bytes(b"")
        elif kind == "random":
            bad.write_bytes(np.random.default_rng(0).bytes(4096))
        elif kind == "text":
            bad.write_text("epoch 101\nloss 0.2\n")
        elif kind == "bare_tensor":
            torch.save(torch.zeros(3), bad)
        elif kind == "list":
            torch.save([1, 2, 3], bad)
        elif kind == "wrong_shape":
            saved = torch.load(src, weights_only=True)
            saved["model"]["W_e"] = torch.zeros(3, 3)
            saved.pop("tensor_sha256", None)
            torch.save(saved, bad)
        elif kind == "missing_key":
            saved = torch.load(src, weights_only=True)
            del saved["model"]["S"]
            saved.pop("tensor_sha256", None)
            torch.save(saved, bad)
        elif kind == "bad_K":
            saved = torch.load(src, weights_only=True)
            saved["K"] = 7
            saved.pop("tensor_sha256", None)
            torch.save(saved, bad)
        elif kind == "nan_weights":
            saved = torch.load(src, weights_only=True)
            saved["model"]["theta"] = torch.full_like(saved["model"]["theta"], float("nan"))
            saved.pop("tensor_sha256", None)
            torch.save(saved, bad)
        elif kind == "flipped":
            bad.write_bytes(flip_tensor_byte(raw))
        elif kind == "pickle":
            import pickle
            bad.write_bytes(pickle.dumps({"model": os.getcwd}))  # refused by weights_only
        elif kind == "zip_foreign":
            with zipfile.ZipFile(bad, "w") as z:
                z.writestr("hello.txt", "not a checkpoint")
        return ["eval", "zoo:lista", "--ckpt", str(bad)]
    return make


def flip_tensor_byte(raw: bytes) -> bytes:
    """Flip one byte inside the stored data of the largest tensor of a torch zip checkpoint."""
    import io
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    with zipfile.ZipFile(io.BytesIO(raw)) as z:  # the local header's extra field can differ
        local_extra = int.from_bytes(raw[info.header_offset + 28: info.header_offset + 30], "little")
        start = info.header_offset + 30 + len(info.filename.encode()) + local_extra
    pos = start + info.file_size // 2
    return raw[:pos] + bytes([raw[pos] ^ 0x10]) + raw[pos + 1:]


def _resume_changed(*extra: str) -> Callable[[Path], list[str]]:
    def make(d: Path) -> list[str]:
        out = _train_run(d)
        return ["train", "zoo:lista", *SMALL, "--steps", "2", "--out", str(out), "--resume", *extra]
    return make


def _corrupt_last(d: Path) -> list[str]:
    out = _train_run(d)
    (out / "last.pt").write_bytes(b"PK\x03\x04junk")
    return ["train", "zoo:lista", *SMALL, "--steps", "2", "--out", str(out), "--resume"]


def _data_dir(d: Path, **files) -> str:
    """A data folder whose sparse/ holds the given files (arrays to .npy/.mat, bytes as is)."""
    import scipy.io
    sp = d / "data" / "sparse"
    sp.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        path = sp / name.replace("__", ".")
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif name.endswith("mat"):
            scipy.io.savemat(str(path), value)
        else:
            np.save(path, value)
    return str(d / "data")


def _train_data(**files) -> Callable[[Path], list[str]]:
    return lambda d: ["train", "zoo:lista", *SMALL, "--steps", "1", "--data", _data_dir(d, **files),
                      "--out", str(d / "out")]


_D = np.random.default_rng(0).standard_normal((20, 30))

CLI_CASES: list[Case] = [
    # F1: a run in --out is never replaced silently
    Case("F1", "existing_out", lambda d: ["train", "zoo:lista", *SMALL, "--steps", "2",
                                          "--out", str(_train_run(d))], 2, "already holds a training run", True),
    # F2: blow-up on the last step
    Case("F2", "lr_inf_one_step", lambda d: ["train", "zoo:lista", *SMALL, "--steps", "1", "--lr", "inf",
                                             "--out", str(d / "o")], 2, "--lr"),
    Case("F2", "lr_1e30_last_step", lambda d: ["train", "zoo:lista", *SMALL, "--steps", "1", "--lr", "1e30",
                                               "--eval-every", "1", "--out", str(d / "o")], 1, "diverged", True),
    Case("F2", "lr_1e29_two_steps", lambda d: ["train", "zoo:lista", *SMALL, "--steps", "2", "--lr", "1e29",
                                               "--eval-every", "1", "--out", str(d / "o")], 1, "diverged", True),
    Case("F2", "nan_test_codes", _train_data(D__mat={"D": _D}, xtest_n500_p10__npy=np.full((30, 5), np.nan)),
         2, "NaN", True),
    # F6: given options are checked, never replaced by defaults
    Case("F6", "ratio_0", lambda d: ["train", "zoo:ista_net", *SMALL, "--ratio", "0", "--out", str(d / "o")], 2, "--ratio"),
    Case("F6", "mask_0", lambda d: ["train", "zoo:admm_net", *SMALL, "--mask", "0", "--out", str(d / "o")], 2, "--mask"),
    Case("F6", "blocks_0", lambda d: ["train", "zoo:ista_net", *SMALL, "--blocks", "0", "--out", str(d / "o")], 2, "--blocks"),
    Case("F6", "size_0", lambda d: ["train", "zoo:admm_net", *SMALL, "--size", "0", "--out", str(d / "o")], 2, "--size"),
    Case("F6", "negative_steps", lambda d: ["train", "zoo:lista", "--steps", "-3", "--out", str(d / "o")], 2, "--steps"),
    # F7: --resume refuses changed task settings
    Case("F7", "resume_p", _resume_changed("--p", "0.5"), 2, "--p", True),
    Case("F7", "resume_snr", _resume_changed("--snr", "5"), 2, "--snr", True),
    Case("F7", "resume_K", lambda d: ["train", "zoo:lista", "--K", "3", "--batch-size", "8", "--steps", "2",
                                      "--quiet", "--out", str(_train_run(d)), "--resume"], 2, "K", True),
    Case("F7", "resume_data", lambda d: _resume_changed("--data", _data_dir(
        d, D__mat={"D": np.random.default_rng(1).standard_normal((250, 500))}))(d), 2, "--data", True),
    # F9: checkpoints
    *[Case("F9", k, _ckpt_variant(k), 2, n, True) for k, n in [
        ("truncated", "truncated"), ("empty", "empty"), ("random", "checkpoint"), ("text", "checkpoint"),
        ("bare_tensor", "Tensor"), ("list", "list"), ("wrong_shape", "W_e"), ("missing_key", "missing S"),
        ("bad_K", "neither"), ("nan_weights", "not finite"), ("flipped", "checksum"), ("pickle", "refused"),
        ("zip_foreign", "checkpoint")]],
    Case("F9", "missing_file", lambda d: ["eval", "zoo:lista", "--ckpt", str(d / "nope.pt")], 2, "no such"),
    Case("F9", "resume_corrupt", lambda d: _corrupt_last(d), 2, "last.pt", True),
    # F10: devices, in every command that takes one
    *[Case("F10", f"{cmd}_{dev or 'empty'}", (lambda c, v: lambda d: [c, *( ["zoo:lista"] if c != "demo" else []),
                                                                       "--device", v, "--out", str(d / "o")])(cmd, dev),
           2, "--device") for cmd in ("train", "demo") for dev in ("bogus", "mps", "meta", "", "CPUX", "cuda:99")],
    Case("F10", "eval_cuda", lambda d: ["eval", "zoo:lista", "--ckpt", str(d / "x.pt"), "--device", "cuda"]
         + [], 2, "--device"),
    Case("F10", "lr_1e39", lambda d: ["train", "zoo:lista", "--lr", "1e39", "--out", str(d / "o")], 2, "--lr"),
    Case("F10", "lr_nan", lambda d: ["train", "zoo:lista", "--lr", "nan", "--out", str(d / "o")], 2, "--lr"),
    Case("F16", "snr_nan", lambda d: ["train", "zoo:lista", "--snr", "nan", "--out", str(d / "o")], 2, "--snr"),
    # F13: data files
    Case("F13", "text_D", _train_data(D__mat=b"this is not a MAT file\n"), 2, "D.mat", True),
    Case("F13", "nan_D", _train_data(D__mat={"D": np.full((20, 30), np.nan)}), 2, "D.mat", True),
    Case("F13", "zero_D", _train_data(D__mat={"D": np.zeros((20, 30))}), 2, "D.mat", True),
    Case("F13", "D_missing_variable", _train_data(D__mat={"Dict": _D}), 2, "'D'", True),
    Case("F13", "D_3d", _train_data(D__mat={"D": np.ones((2, 3, 4))}), 2, "D.mat", True),
    Case("F13", "complex_D", _train_data(D__mat={"D": _D + 1j}), 2, "complex", True),
    Case("F13", "xtest_1d", _train_data(D__mat={"D": _D}, xtest_n500_p10__npy=np.ones(30)), 2, "xtest", True),
    Case("F13", "xtest_empty", _train_data(D__mat={"D": _D}, xtest_n500_p10__npy=np.ones((30, 0))), 2, "xtest", True),
    Case("F13", "xtest_text", _train_data(D__mat={"D": _D}, xtest_n500_p10__npy=b"1 2 3\n"), 2, "xtest", True),
    Case("F13", "xtest_wrong_length", _train_data(D__mat={"D": _D}, xtest_n500_p10__npy=np.ones((29, 4))), 2,
         "xtest", True),
]
