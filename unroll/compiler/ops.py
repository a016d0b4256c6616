"""The primitive ops: each states its arity, its shape rule and (where it has one) its value on
plain numbers. Checkers and folding apply one general rule over these facts; backends add their
own lowering tables keyed by the same names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

__all__ = ["OpInfo", "OPS", "FUNCTIONS", "ZERO_PRESERVING", "REAL_ONLY", "SPECIAL_CALLS", "op"]


@dataclass(frozen=True)
class OpInfo:
    """Facts about one op: `rule` is 'elementwise', 'reduce' (per sample to a scalar), 'batch_reduce'
    (over the batch too, for losses), 'matmul', 'transpose', 'matrix_scalar' or 'custom'."""

    name: str
    arity: tuple[int, int]
    rule: str
    number: Callable[..., float] | None = None
    doc: str = ""
    smooth: bool = True
    out_dtype: str = "same"   # 'same' (complex if any argument is), 'complex' or 'real'
    real_only: bool = False   # arguments must be real
    zero_grad: tuple = ()     # argument positions whose derivative is zero (almost) everywhere


def _soft(v: float, t: float) -> float:
    return math.copysign(max(abs(v) - t, 0.0), v)


def _hard(v: float, t: float) -> float:
    return v if abs(v) > t else 0.0


def _hard_smooth(v: float, t: float, s: float) -> float:
    z = (abs(v) - t) / s
    return v / (1 + math.exp(-z)) if z > -700 else 0.0


def _softplus(v: float) -> float:
    return math.log1p(math.exp(-abs(v))) + max(v, 0.0)


_TABLE = [
    OpInfo("add", (2, 2), "elementwise", lambda a, b: a + b, "a + b"),
    OpInfo("sub", (2, 2), "elementwise", lambda a, b: a - b, "a - b"),
    OpInfo("mul", (2, 2), "elementwise", lambda a, b: a * b, "a * b (element-wise)"),
    OpInfo("div", (2, 2), "elementwise", lambda a, b: a / b, "a / b (element-wise)"),
    OpInfo("pow", (2, 2), "elementwise", lambda a, b: a ** b, "a ^ b (element-wise)"),
    OpInfo("neg", (1, 1), "elementwise", lambda a: -a, "-a"),
    OpInfo("matmul", (2, 2), "matmul", None, "matrix product A x (juxtaposition or @)"),
    OpInfo("transpose", (1, 1), "transpose", None, "A' (transpose)"),
    OpInfo("soft", (2, 2), "elementwise", _soft, "soft(v, t): soft thresholding sign(v)·max(|v|−t, 0)", False),
    OpInfo("hard", (2, 2), "elementwise", _hard, "hard(v, t): hard thresholding v·[|v| > t]", False,
           zero_grad=(1,)),
    OpInfo("hard_ste", (2, 2), "elementwise", _hard, "hard_ste(v, t): hard thresholding forward, "
           "soft thresholding's gradient backward (straight-through: t trains)", False),
    OpInfo("hard_smooth", (3, 3), "elementwise", _hard_smooth, "hard_smooth(v, t, s): sigmoid-gated "
           "hard thresholding v·sigmoid((|v| − t)/s), hard as s → 0", False),
    OpInfo("relu", (1, 1), "elementwise", lambda a: max(a, 0.0), "relu(v) = max(v, 0)", False),
    OpInfo("abs", (1, 1), "elementwise", abs, "abs(v)", False, out_dtype="real"),
    OpInfo("sign", (1, 1), "elementwise", lambda a: math.copysign(1.0, a) if a else 0.0, "sign(v)", False,
           zero_grad=(0,)),
    OpInfo("softplus", (1, 1), "elementwise", _softplus, "softplus(v) = log(1 + e^v)"),
    OpInfo("sigmoid", (1, 1), "elementwise", lambda a: 1 / (1 + math.exp(-a)), "sigmoid(v)"),
    OpInfo("tanh", (1, 1), "elementwise", math.tanh, "tanh(v)"),
    OpInfo("sqrt", (1, 1), "elementwise", math.sqrt, "sqrt(v)"),
    OpInfo("exp", (1, 1), "elementwise", math.exp, "exp(v)"),
    OpInfo("log", (1, 1), "elementwise", math.log, "log(v)"),
    OpInfo("clamp", (3, 3), "elementwise", lambda v, lo, hi: min(max(v, lo), hi), "clamp(v, lo, hi)", False),
    OpInfo("maximum", (2, 2), "elementwise", max, "max(a, b) element-wise", False),
    OpInfo("minimum", (2, 2), "elementwise", min, "min(a, b) element-wise", False),
    OpInfo("sum", (1, 1), "reduce", None, "sum(v): sum of the entries of one sample"),
    OpInfo("mean", (1, 1), "reduce", None, "mean(v): mean of the entries of one sample"),
    OpInfo("norm1", (1, 1), "reduce", None, "||v||_1", False, out_dtype="real"),
    OpInfo("norm2", (1, 1), "reduce", None, "||v|| (Euclidean / Frobenius)", False, out_dtype="real"),
    OpInfo("sqnorm", (1, 1), "reduce", None, "||v||^2", out_dtype="real"),
    OpInfo("norm0", (1, 1), "reduce", None, "||v||_0 (count of non-zeros)", False, out_dtype="real",
           zero_grad=(0,)),
    OpInfo("norminf", (1, 1), "reduce", None, "||v||_inf", False, out_dtype="real"),
    OpInfo("opnorm", (1, 1), "matrix_scalar", None, "norm2(A): spectral norm of a fixed matrix", out_dtype="real"),
    OpInfo("fft2", (1, 1), "fourier", None, "fft2(v): orthonormal 2-D FFT over the last two axes",
           out_dtype="complex"),
    OpInfo("ifft2", (1, 1), "fourier", None, "ifft2(v): orthonormal inverse 2-D FFT", out_dtype="complex"),
    OpInfo("real", (1, 1), "elementwise", None, "real(v): real part", out_dtype="real"),
    OpInfo("imag", (1, 1), "elementwise", None, "imag(v): imaginary part", out_dtype="real"),
    OpInfo("conj", (1, 1), "elementwise", None, "conj(v): complex conjugate"),
    OpInfo("complex", (2, 2), "elementwise", None, "complex(a, b): a + i b from real parts",
           out_dtype="complex", real_only=True),
    OpInfo("cconv", (2, 2), "cconv", None, "cconv(H, x): circular convolution of image x [h, w] with "
           "each filter of H [L, a, b], giving [L, h, w]", real_only=True),
    OpInfo("cconv_t", (2, 2), "cconv_t", None, "cconv_t(H, z): adjoint of cconv, z [L, h, w] to "
           "[h, w]", real_only=True),
    OpInfo("otf", (1, 1), "custom", None, "otf(H, [h, w]): transfer functions (2-D FFT) of the "
           "filters H [L, a, b], complex [L, h, w]", out_dtype="complex"),
    OpInfo("sum_l", (1, 1), "sum_l", None, "sum_l(v): sum over the leading (filter) axis"),
    OpInfo("plf", (4, 4), "plf", None, "plf(v, q, lo, hi): piecewise-linear function with values q "
           "[L, P] on P uniform points of [lo, hi] per channel l of v [L, ...], slope 1 beyond the ends", real_only=True),
    OpInfo("bank", (2, 2), "bank", None, "bank(G, B): filter bank [L, a, b] whose filter l is "
           "sum_r G[r, l] B[r], from coefficients G [R, L] on the atoms B [R, a, b]"),
    OpInfo("nonzero", (2, 2), "elementwise", lambda v, e: v if v != 0 else e, "nonzero(v, e): v "
           "with its exact zeros replaced by e (a safe denominator)"),
    OpInfo("grid", (0, 0), "custom", None, "grid(P, lo, hi): P uniform points of [lo, hi]"),
    OpInfo("dct_filters", (0, 0), "custom", None, "dct_filters(s): the s*s-1 non-constant 2-D DCT "
           "basis filters of size s x s, [s*s-1, s, s]; dct_filters(s, order = F) gives each atom "
           "transposed (MATLAB's column-major reshape of kron(dctmtx(s), dctmtx(s)) rows)"),
    OpInfo("diff_filters", (0, 0), "custom", None, "diff_filters(): horizontal and vertical "
           "finite-difference filters, [2, 3, 3]"),
    OpInfo("reshape", (1, 1), "custom", None, "reshape(v, [c, h, w]): same entries, new shape"),
    OpInfo("block", (1, 1), "custom", None, "a learnable block applied to a value"),
    OpInfo("batch_mean", (1, 1), "batch_reduce", None, "mean over the batch (per-sample losses)"),
    OpInfo("mse", (2, 2), "batch_reduce", None, "mse(a, b): mean squared error over batch and entries", out_dtype="real"),
    OpInfo("nmse", (2, 2), "batch_reduce", None, "nmse(a, b): ||a − b||² / ||b||² over the batch", out_dtype="real"),
    # Indicators (cost terms): 0 where the constraint holds, +inf elsewhere; their prox is a projection.
    OpInfo("nonneg", (1, 1), "reduce", None, "nonneg(x): indicator of x ≥ 0 (0 or +inf)", False,
           zero_grad=(0,)),
    OpInfo("box", (3, 3), "reduce", None, "box(x, lo, hi): indicator of lo ≤ x ≤ hi (0 or +inf)",
           False, zero_grad=(0, 1, 2)),
    # Several values as one and back (channels.py); axes count per-sample dims from 0.
    OpInfo("cat", (1, 1 << 16), "custom", None, "cat([a, b], axis): join along an axis"),
    OpInfo("stack", (1, 1 << 16), "custom", None, "stack([a, b], axis): join along a new axis"),
    OpInfo("slice", (1, 1), "custom", None, "v[i, a:b]: entries or ranges along the leading axes"),
    OpInfo("embed", (1, 1), "custom", None, "the adjoint of a range: v placed into zeros of the "
           "source's shape (built by grad, never written in a spec)"),
    OpInfo("diff", (1, 1), "custom", None, "diff(x, axis): forward differences x[i+1] - x[i], 0 at "
           "the last entry (Neumann boundary)"),
    OpInfo("diff_t", (1, 1), "custom", None, "diff_t(p, axis): the adjoint of diff (minus the "
           "discrete divergence)"),
    # Built only by the derivation (argmin, block soft thresholding), never written in a spec.
    OpInfo("solve", (2, 2), "custom", None, "solve(H, b): H⁻¹ b for a fixed square matrix H"),
    OpInfo("vdot", (2, 2), "custom", None, "vdot(a, b): per-sample inner product, kept as [1]"),
    # A matrix-free operator (attrs: name, adjoint): applied to a value, or its norm by power iteration.
    OpInfo("linop_apply", (1, 1), "custom", None, "A x for a matrix-free operator A (A' y: adjoint)"),
    OpInfo("linop_norm", (0, 0), "custom", None, "norm2(A) of a matrix-free operator (power iteration)",
           out_dtype="real"),
]

OPS: dict[str, OpInfo] = {o.name: o for o in _TABLE}

# Ops that only make sense on real values (thresholds, orderings).
REAL_ONLY = frozenset({"soft", "hard", "hard_ste", "hard_smooth", "relu", "sign", "clamp", "maximum", "minimum", "softplus",
                       "sigmoid", "tanh", "log", "sqrt", "norm0"})

# Spec function names → op names (norm2 on a matrix is the spectral norm: see check).
FUNCTIONS: dict[str, str] = {
    "soft": "soft", "hard": "hard", "hard_ste": "hard_ste", "hard_smooth": "hard_smooth", "relu": "relu", "abs": "abs", "sign": "sign",
    "softplus": "softplus", "sigmoid": "sigmoid", "tanh": "tanh", "sqrt": "sqrt", "exp": "exp",
    "log": "log", "clamp": "clamp", "max": "maximum", "min": "minimum", "sum": "sum",
    "mean": "mean", "norm2": "opnorm", "mse": "mse", "nmse": "nmse",
    "nonneg": "nonneg", "box": "box",
    "fft2": "fft2", "ifft2": "ifft2", "real": "real", "imag": "imag", "conj": "conj", "complex": "complex",
    "cconv": "cconv", "cconv_t": "cconv_t", "sum_l": "sum_l", "plf": "plf",
    "bank": "bank", "nonzero": "nonzero",
}

# Calls whose arguments are numbers or shapes fixed in the spec (handled in check.call_special).
SPECIAL_CALLS = ("grid", "dct_filters", "diff_filters", "otf")

# Ops whose value is zero wherever their first argument is zero (used when folding zero states).
ZERO_PRESERVING = frozenset({"soft", "hard", "hard_ste", "hard_smooth", "linop_apply", "relu", "abs",
                             "sign", "neg", "tanh", "sqrt", "fft2", "ifft2", "real", "imag", "conj",
                             "sum_l", "slice", "diff", "diff_t", "embed"})


def op(name: str) -> OpInfo:
    """The facts for op `name` (KeyError if unknown)."""
    return OPS[name]
