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


def _check(text_of: Callable[[Path], str], *extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["check", text_of(d), "--dim", "n=4", "--dim", "m=6", *extra]


def _compile(text_of: Callable[[Path], str], *extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["compile", text_of(d), "--K", "2", "--dim", "n=4", "--dim", "m=6", "-o",
                      str(d / "gen.py"), *extra]


def _rename(old: str, new: str) -> Callable[[Path], str]:
    return lambda d: _spec(d, re.sub(rf"\b{old}\b", new, LISTA))


_ITER = "    x = soft(W_e y + S x, theta)"
_G = (ZOO / "ista_grad_prox.unroll").read_text()


def _grad_with(old: str, new: str) -> Callable[[Path], str]:
    assert old in _G, old
    return lambda d: _spec(d, _G.replace(old, new, 1))


def _fifo(d: Path) -> str:
    p = d / "fifo.unroll"
    os.mkfifo(p)
    return str(p)


def _odd_name(name: str) -> Callable[[Path], str]:
    return lambda d: _spec(d, LISTA, name)


SPEC_CASES: list[Case] = [
    # F3: names the generated code uses itself
    *[Case("F3", f"{role}_{name}", _check(_rename(old, name)), 2, "reserved" if name[0] == "_" else "cannot name")
      for role, old, name in [("target", "x_star", "_states"), ("input", "y", "_x"), ("input", "y", "aux"),
                              ("input", "y", "upto"), ("input", "y", "batch"), ("input", "y", "_dtype"),
                              ("const", "lam", "_full"), ("learn", "S", "_parameters"), ("state", "x", "__debug__"),
                              ("operator", "A", "_inv_softplus"), ("operator", "A", "dtype"), ("algorithm", "LISTA", "_full")]],
    *[Case("F3", f"{role}_{name}_renamed", _compile(_rename(old, name)), 0, "wrote")
      for role, old, name in [("const", "lam", "objective"), ("const", "lam", "training"), ("learn", "S", "unfolded"),
                              ("learn", "S", "K"), ("const", "L", "forward"), ("learn", "theta", "layers")]],
    # F4: --dim cannot change a size the spec fixes
    Case("F4", "dim_fixed", lambda d: ["compile", "zoo:ista_net", "--K", "2", "--dim", "N=100", "--dim", "M=10",
                                       "-o", str(d / "g.py")], 2, "fixes N = 1089"),
    Case("F18", "dim_twice", lambda d: ["check", "zoo:lista", "--dim", "n=5", "--dim", "n=6"], 2, "twice"),
    Case("F18", "dim_unicode_digit", lambda d: ["check", "zoo:lista", "--dim", "n=\u0665"], 2, "NAME=SIZE"),
    Case("F18", "positive_positive", _check(_lista_with("shared positive", "positive positive")), 2, "two constraints"),
    # F5: zero sizes
    Case("F5", "dims_zero", _check(_lista_with("dims n, m", "dims n = 0, m")), 2, "at least 1"),
    Case("F5", "shape_zero", _check(_lista_with("learn theta : [m]", "learn theta : [0]")), 2, "positive"),
    Case("F5", "dim_arg_zero", lambda d: ["check", "zoo:lista", "--dim", "n=0"], 2, "NAME=SIZE"),
    # F8: constants that fold to inf/NaN
    *[Case("F8", name, _compile(_lista_with("const lam = 0.1", f"const lam = {expr}")), 2, needle)
      for name, expr, needle in [("literal_1e999", "1e999", "too large"), ("pow_overflow", "10 ^ 400", "overflows"),
                                 ("zero_neg_power", "0 ^ (-1)", "divides by zero"), ("div_zero", "1 / 0", "divides by zero"),
                                 ("tower", "2^2^2^2^2^2", "overflows"), ("inf_minus_inf", "1e308 * 10 - 1e308 * 10", "finite"),
                                 ("complex_power", "(-8) ^ 0.5", "complex"), ("const_of_zero", "0\nconst z = 1 / lam", "divides")]],
    # F11: recursion from spec text
    *[Case("F11", name, _check(_lista_with("const lam = 0.1", f"const lam = {expr}")), 2, "nested more than")
      for name, expr in [("sum_600", "0.1" + " + 0" * 600), ("neg_600", "-" * 600 + "1"),
                         ("calls_450", "abs(" * 450 + "1" + ")" * 450), ("pow_5000", "1" + "^2" * 5000)]],
    Case("F11", "transpose_10000", _check(_lista_with("norm2(A)^2", "norm2(A" + "'" * 10000 + ")^2")), 2, "nested more than"),
    Case("F11", "iterate_sum_600", _check(_lista_with(_ITER, "    x = soft(W_e y + S x, theta" + " + 0" * 600 + ")")), 2,
         "nested more than"),
    Case("F11", "parens_10000", _check(_lista_with("const lam = 0.1", "const lam = " + "(" * 10000 + "0.1" + ")" * 10000)),
         0, "ok"),
    Case("F11", "cost_calls_itself", _check(_grad_with("cost f(x) = 1/2 * ||A x - y||^2",
                                                       "cost f(x) = 1/2 * ||A x - y||^2 + f(x)")), 2, "calls itself"),
    Case("F11", "costs_call_each_other", _check(_grad_with("cost f(x) = 1/2 * ||A x - y||^2",
                                                           "cost f(x) = 1/2 * ||A x - y||^2 + h(x)\ncost h(x) = f(x)")),
         2, "calls itself"),
    # F12: checker and derivation crashes
    Case("F12", "argmin_not_quadratic", _compile(_lista_with(_ITER, "    x = argmin(x: ||x||_1 + ||A x - y||^2)")), 2,
         "argmin"),
    Case("F12", "grid_1e400", _check(_lista_with("const lam = 0.1", "const lam = sum(grid(1e400, -1, 1))")), 2, "too large"),
    Case("F12", "argmin_iters_huge", _compile(_lista_with(_ITER, "    x = argmin(x: ||A x - y||^2 + ||x||^2, method = cg, "
                                                          "iters = 1e12)")), 2, "argmin"),
    # F14: bounded work
    Case("F14", "K_1e20", _check(_lista_with("iterate K = 16", "iterate K = 99999999999999999999")), 2, "limit"),
    Case("F14", "K_option_1e9", lambda d: ["check", "zoo:lista", "--K", "1000000000", "--dim", "n=4", "--dim", "m=4"], 2,
         "at most"),
    Case("F14", "graph_K_2000", lambda d: ["graph", "zoo:lista", "--K", "2000", "--dim", "n=4", "--dim", "m=4", "-o",
                                           str(d / "g.dot")], 0, "summarised"),
    Case("F14", "huge_dims", lambda d: ["compile", "zoo:lista", "--K", "2", "--dim", "n=10000000", "--dim", "m=10000000",
                                        "-o", str(d / "g.py")], 2, "limit"),
    Case("F14", "spec_5MB", lambda d: ["check", _spec(d, LISTA + "# " + "x" * 5_000_000 + "\n")], 2, "limited"),
    Case("F14", "spec_fifo", lambda d: ["check", _fifo(d)], 2, "not a regular file"),
    Case("F14", "spec_dev_zero", lambda d: ["check", "/dev/zero"], 2, "not a regular file"),
    Case("F14", "spec_directory", lambda d: ["check", str(d)], 2, "directory"),
    # F15: where errors point
    Case("F15", "unclosed_paren", _check(_lista_with("const lam = 0.1", "const lam = (0.1")), 2, ":9:17: syntax error: missing closing"),
    Case("F15", "unclosed_paren_iterate", _check(_lista_with(_ITER, "    x = soft(W_e y + S x, theta")), 2,
         ":21:32: syntax error: missing closing"),
    Case("F15", "bom", lambda d: ["check", str((lambda p: (p.write_bytes(b"\xef\xbb\xbf" + LISTA.encode()), p)[1])(
        d / "bom.unroll"))], 0, "ok: LISTA"),
    Case("F15", "latin1_bytes", lambda d: ["check", str((lambda p: (p.write_bytes(LISTA.encode() + b"# \xe9\n"), p)[1])(
        d / "latin.unroll"))], 2, "not UTF-8"),
    # F16: messages that name the right thing
    Case("F16", "learn_without_init", _check(_lista_with("= lam / L     shared positive", "shared")), 2, "missing initial value"),
    Case("F16", "empty_spec_arg", lambda d: ["check", ""], 2, "no spec file"),
    Case("F16", "newline_spec_arg", lambda d: ["check", "line1\nline2"], 2, "no spec file"),
    Case("F16", "eval_wrong_task", lambda d: ["eval", "zoo:lista", "--ckpt", str(_train_run(d) / "last.pt")], 2,
         "neither", True),
    # F17: file names cannot break the generated module
    *[Case("F17", f"file_name_{i}", _compile(_odd_name(name)), 0, "wrote")
      for i, name in enumerate(["bad\\xname.unroll", "q\"\"\"\\N{x}\\u.unroll", "nl\nimport os.unroll", "it's.unroll"])],
    # F20: the zoo cannot be left
    Case("F20", "zoo_climb", lambda d: ["check", f"zoo:../../../../../{d}/x"], 2, "no zoo spec"),
    Case("F20", "zoo_absolute", lambda d: ["check", f"zoo:{_spec(d, LISTA, 'x.unroll')[:-7]}"], 2, "no zoo spec"),
]

ALL_CASES = CLI_CASES + SPEC_CASES
