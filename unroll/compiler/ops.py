"""The primitive ops, one `OpInfo` entry each: every fact the compiler knows about an op.

An entry states the op's arity, its shape rule (`infer_shape`, used by the checker and by the
derivation's smart constructors alike), its value on plain numbers (constant folding), whether it
is smooth, its vector-Jacobian rule (`grad`), its proximal operator when it is a cost atom
(`prox`), how it prints (spec spelling, infix symbol, text/Unicode/LaTeX forms) and how it is
drawn. `NODES` holds the IR values that are not computations (leaves, and the loss's layer nodes
that unfold replaces). Other modules read these facts from here and keep no table of their own;
backends add one lowering table each, keyed by the same names. docs/internals.md walks through
adding an op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Sequence, Union

from .ir import IDENT, Value, fmt_shape
from .sizes import may_equal
from .vjp_rules import (NotDifferentiable, _back, _cat_vjp, _cj, _complex_vjp, _count,
                        _conv_vjp, _div_vjp, _embed_vjp, _imag_vjp, _lse_vjp, _matmul_vjp, _mul_vjp,
                        _pow_vjp, _size, _slice_vjp, _stack_vjp, _unb)

__all__ = ["OpInfo", "Prox", "Mismatch", "NotDifferentiable", "OPS", "NODES", "IDENT",
           "infer_shape", "broadcast", "node_info", "FUNCTIONS", "ZERO_PRESERVING", "SPECIAL_CALLS"]


# A vector-Jacobian rule: (algebra, node, adjoint of the node, depends(value)) -> one adjoint per
# argument (None: zero). The algebra module (compiler.algebra) is passed in so that this table
# imports no derivation code.
VJPRule = Callable[[ModuleType, Value, Value, Callable[[Value], bool]], list]
# How an op prints: a format string over the printed arguments ({0}, {1}), or (value, texts) -> text.
Form = Union[str, Callable[[Value, list], str]]


@dataclass(frozen=True)
class Prox:
    """The proximal operator of `s·op(x)` for a cost atom: `build(al, v, s, atom)`; `form` and
    `result` read as a table row; `role` is 'separable' (coordinate-wise), 'projection' (an
    indicator) or 'whole' (acts on the vector as a whole)."""

    build: Callable
    form: str
    result: str
    role: str


@dataclass(frozen=True)
class OpInfo:
    """Facts about one op. `rule` names its shape rule: 'elementwise', 'reduce' (per sample to a
    scalar), 'batch_reduce' (over the batch too, for losses), 'matmul', 'transpose',
    'matrix_scalar', 'fourier', 'cconv', 'cconv_t', 'bank', 'sum_l', 'plf', 'quantile', 'soft_ss',
    'diag', 'pinv', 'inv', 'norm21', 'gnorm', or 'custom' (shape set where the value is built), 'leaf' for `NODES`."""

    name: str
    arity: tuple[int, int]
    rule: str
    number: Callable[..., float] | None = None  # its value on plain numbers (constant folding)
    doc: str = ""
    smooth: bool = True  # differentiable everywhere: a template sends a term using it to the gradient
    out_dtype: str = "same"  # 'same' (complex if any argument is), 'complex' or 'real'
    real_only: bool = False  # arguments must be real
    zero_grad: tuple = ()  # argument positions whose derivative is zero (almost) everywhere
    remedy: str = ""  # what to write instead when zero_grad cuts a learnable's gradient
    zero_preserving: bool = False  # zero wherever its first argument is zero (folds zero states)
    along_axis: bool = False  # acts along an axis its attrs name (applied to I it would misread it)
    linear_in: int | None = None  # the argument it is (real-)linear in, the others fixed (argmin)
    unit_args: tuple = ()  # argument positions that must lie in [0, 1] (checked where they are numbers)
    vjp: VJPRule | None = None  # None: grad cannot differentiate through it
    prox: Prox | None = None  # its proximal operator, as a cost atom
    call: str | None = None  # the function name a spec calls it by (None: not a spec function)
    infix: str | None = None  # binary operator text (' + ', '^', ' ' for a product)
    precedence: int | None = None  # binding strength when printed (None: an atom)
    verb: str = ""  # in shape errors: 'cannot {verb} [n] and [m]'
    text: Form | None = None  # printed form in spec syntax (default: call(args))
    sym: tuple[str, str] | None = None  # (Unicode, LaTeX) forms in `unroll show --math`
    kind: str = "other"  # drawing colour group (viz.KIND_COLORS)


@dataclass(frozen=True)
class Mismatch:
    """Why an op does not apply to its arguments' shapes: the message, the argument it points at
    (None: the whole expression), the arguments worth describing in a hint, and a closing hint."""

    message: str
    at: int | None = None
    describe: tuple[int, ...] = ()
    hint: str | None = None


# ---- values on plain numbers ----
def _soft(v: float, t: float) -> float:
    return math.copysign(max(abs(v) - t, 0.0), v)


def _hard(v: float, t: float) -> float:
    return v if abs(v) > t else 0.0


def _hard_smooth(v: float, t: float, s: float) -> float:
    z = (abs(v) - t) / s
    return v / (1 + math.exp(-z)) if z > -700 else 0.0


def _softplus(v: float) -> float:
    return math.log1p(math.exp(-abs(v))) + max(v, 0.0)


def _axis_text(name: str) -> Callable[[Value, list], str]:
    return lambda v, a: f"{name}({a[0]})" if v.attrs[0] is None else f"{name}({a[0]}, {v.attrs[0]})"


# ---- proximal operators of cost atoms ----
def _block_soft(al, v: Value, s: Value, atom: Value) -> Value:
    """v · max(1 − s/‖v‖, 0): the prox of s‖x‖₂ on the whole vector (group lasso)."""
    nrm = al.mk("sqrt", al.mk("vdot", v, v, shape=(1,) * len(v.shape)))
    return al.mul(v, al.mk("relu", al.sub(al.num(1.0), al.div(s, nrm))))


def _group_soft(al, v: Value, s: Value, atom: Value) -> Value:
    """V[i] · max(1 − s/‖V[i]‖, 0) per group i (leading axis): the prox of s‖X‖₂,₁ (group lasso).
    An all-zero group stays zero (its norm is replaced by a tiny number, never divided by 0)."""
    nrm = al.mk("nonzero", al.mk("gnorm", v), al.num(1e-12))
    return al.mul(v, al.mk("relu", al.sub(al.num(1.0), al.div(s, nrm))))


_P_NORM1 = Prox(lambda al, v, s, a: al.mk("soft", v, s), "λ‖x‖₁", "soft(v, tλ)", "separable")
_P_NORM0 = Prox(lambda al, v, s, a: al.mk("hard", v, al.mk("sqrt", al.mul(al.num(2.0), s))),
                "λ‖x‖₀", "hard(v, √(2tλ))", "separable")
_P_SQNORM = Prox(lambda al, v, s, a: al.div(v, al.add(al.num(1.0), al.mul(al.num(2.0), s))),
                 "λ/2‖x‖²", "v / (1 + tλ)", "separable")
_P_NORM2 = Prox(_block_soft, "λ‖x‖₂", "v · max(1 − tλ/‖v‖, 0)", "whole")
_P_NORM21 = Prox(_group_soft, "λ‖X‖₂,₁", "V[i] · max(1 − tλ/‖V[i]‖, 0) per group", "whole")
def _ball_proj(al, v: Value, s: Value, atom: Value) -> Value:
    """v · r / max(‖v‖, r): the projection onto the ball ‖x‖ ≤ r (the centre stays, no 0/0)."""
    r = atom.args[1]
    nrm = al.mk("sqrt", al.mk("vdot", v, v, shape=(1,) * len(v.shape)))
    return al.mul(v, al.div(r, al.mk("maximum", nrm, r)))


_P_BALL = Prox(_ball_proj, "ball(x, r)", "v · min(1, r/‖v‖)", "whole")
_P_NONNEG = Prox(lambda al, v, s, a: al.mk("relu", v), "nonneg(x)", "relu(v)", "projection")
_P_BOX = Prox(lambda al, v, s, a: al.mk("clamp", v, a.args[1], a.args[2]), "box(x, lo, hi)",
              "clamp(v, lo, hi)", "projection")


# ---- printed forms that need the value's attributes ----
def _index_text(v: Value, args: list) -> str:
    items = [str(it[1]) if it[0] == "at" else f"{it[1]}:{it[2]}" for it in v.attrs[0]]
    return f"{args[0]}[{', '.join(items)}]"


def _dct_text(v: Value, args: list) -> str:
    return f"dct_filters({v.attrs[0]}" + (", order = F)" if v.attrs[1:] == ("F",) else ")")


_NO_GRAD_IND = "an indicator is 0 or +inf: use prox(g, v, t) (a projection) in the body"
_E, _R = "elementwise", "reduce"

_TABLE = [
    OpInfo("add", (2, 2), _E, lambda a, b: a + b, "a + b", infix=" + ",
           precedence=10, verb="add", kind="arithmetic",
           vjp=lambda al, n, g, d: [_unb(al, g, n.args[0]), _unb(al, g, n.args[1])]),
    OpInfo("sub", (2, 2), _E, lambda a, b: a - b, "a - b", infix=" - ", precedence=10,
           verb="subtract", kind="arithmetic",
           vjp=lambda al, n, g, d: [_unb(al, g, n.args[0]), _unb(al, al.neg(g), n.args[1])]),
    OpInfo("mul", (2, 2), _E, lambda a, b: a * b, "a * b (element-wise)", infix=" * ",
           precedence=20, verb="multiply", kind="arithmetic", vjp=_mul_vjp),
    OpInfo("div", (2, 2), _E, lambda a, b: a / b, "a / b (element-wise)", infix=" / ",
           precedence=20, verb="divide", kind="arithmetic", vjp=_div_vjp),
    OpInfo("pow", (2, 2), _E, lambda a, b: a ** b, "a ^ b (element-wise)", infix="^",
           precedence=40, kind="arithmetic", vjp=_pow_vjp),
    OpInfo("neg", (1, 1), _E, lambda a: -a, "-a", zero_preserving=True, precedence=25,
           kind="arithmetic", vjp=lambda al, n, g, d: [al.neg(g)]),
    OpInfo("matmul", (2, 2), "matmul", None, "matrix product A x (juxtaposition or @)", infix=" ",
           precedence=20, kind="linear", vjp=_matmul_vjp),
    OpInfo("transpose", (1, 1), "transpose", None, "A' (transpose)", precedence=50, kind="linear",
           vjp=lambda al, n, g, d: [al.T(g)]),
    OpInfo("soft", (2, 2), _E, _soft, "soft(v, t): soft thresholding sign(v)·max(|v|−t, 0)",
           smooth=False, real_only=True, zero_preserving=True, call="soft", kind="nonlinear"),
    OpInfo("hard", (2, 2), _E, _hard, "hard(v, t): hard thresholding v·[|v| > t]", smooth=False,
           real_only=True, zero_grad=(1,), zero_preserving=True, call="hard", kind="nonlinear",
           remedy="hard_ste(v, t) (hard forward, soft thresholding's gradient backward) or "
                  "hard_smooth(v, t, s) (v * sigmoid((|v| - t) / s)) train the threshold"),
    OpInfo("hard_ste", (2, 2), _E, _hard, "hard_ste(v, t): hard thresholding forward, soft "
           "thresholding's gradient backward (straight-through: t trains)", smooth=False,
           real_only=True, zero_preserving=True, call="hard_ste", kind="nonlinear"),
    OpInfo("hard_smooth", (3, 3), _E, _hard_smooth, "hard_smooth(v, t, s): sigmoid-gated hard "
           "thresholding v·sigmoid((|v| − t)/s), hard as s → 0", smooth=False, real_only=True,
           zero_preserving=True, call="hard_smooth", kind="nonlinear"),
    OpInfo("relu", (1, 1), _E, lambda a: max(a, 0.0), "relu(v) = max(v, 0)", smooth=False,
           real_only=True, zero_preserving=True, call="relu", kind="nonlinear"),
    OpInfo("abs", (1, 1), _E, abs, "abs(v)", smooth=False, out_dtype="real", zero_preserving=True,
           call="abs", sym=("|{0}|", r"\left|{0}\right|"), kind="arithmetic"),
    OpInfo("sign", (1, 1), _E, lambda a: math.copysign(1.0, a) if a else 0.0, "sign(v)",
           smooth=False, real_only=True, zero_grad=(0,), zero_preserving=True, call="sign",
           kind="arithmetic", remedy="tanh(v / s) is a smooth sign"),
    OpInfo("softplus", (1, 1), _E, _softplus, "softplus(v) = log(1 + e^v)", real_only=True,
           call="softplus", kind="nonlinear",
           vjp=lambda al, n, g, d: [al.mul(g, al.mk("sigmoid", n.args[0]))]),
    OpInfo("sigmoid", (1, 1), _E, lambda a: 1 / (1 + math.exp(-a)), "sigmoid(v)", real_only=True,
           call="sigmoid", kind="nonlinear",
           vjp=lambda al, n, g, d: [al.mul(g, al.mul(n, al.sub(al.num(1.0), n)))]),
    OpInfo("tanh", (1, 1), _E, math.tanh, "tanh(v)", real_only=True, zero_preserving=True,
           call="tanh", kind="nonlinear",
           vjp=lambda al, n, g, d: [al.mul(g, al.sub(al.num(1.0), al.mul(n, n)))]),
    OpInfo("sqrt", (1, 1), _E, math.sqrt, "sqrt(v)", real_only=True, zero_preserving=True,
           call="sqrt", sym=("√({0})", r"\sqrt{{{0}}}"), kind="arithmetic",
           vjp=lambda al, n, g, d: [al.div(g, al.mul(al.num(2.0), n))]),
    OpInfo("exp", (1, 1), _E, math.exp, "exp(v)", call="exp", kind="arithmetic",
           vjp=lambda al, n, g, d: [al.mul(g, _cj(al, n))]),
    OpInfo("log", (1, 1), _E, math.log, "log(v)", real_only=True, call="log", kind="arithmetic",
           vjp=lambda al, n, g, d: [al.div(g, n.args[0])]),
    OpInfo("clamp", (3, 3), _E, lambda v, lo, hi: min(max(v, lo), hi), "clamp(v, lo, hi)",
           smooth=False, real_only=True, call="clamp", kind="nonlinear"),
    OpInfo("maximum", (2, 2), _E, max, "max(a, b) element-wise", smooth=False, real_only=True,
           call="max", kind="nonlinear"),
    OpInfo("minimum", (2, 2), _E, min, "min(a, b) element-wise", smooth=False, real_only=True,
           call="min", kind="nonlinear"),
    OpInfo("sum", (1, 1), _R, None, "sum(v): sum of the entries of one sample", call="sum",
           kind="reduce", vjp=lambda al, n, g, d: [g]),
    OpInfo("mean", (1, 1), _R, None, "mean(v): mean of the entries of one sample", call="mean",
           kind="reduce", vjp=lambda al, n, g, d: [al.div(g, _size(al, n.args[0]))]),
    OpInfo("quantile", (2, 2), "quantile", None, "quantile(v, q): the q-quantile of one sample's "
           "entries (0 ≤ q ≤ 1, linear interpolation as torch.quantile)", smooth=False,
           out_dtype="real", real_only=True, unit_args=(1,), call="quantile", kind="reduce"),
    OpInfo("soft_ss", (3, 3), "soft_ss", None, "soft_ss(v, t, p): support selection (LISTA-CPSS): "
           "entries among the largest fraction p of |v| in the sample and above t pass unchanged, "
           "the others are soft-thresholded by t; the selection is not differentiated",
           smooth=False, real_only=True, zero_grad=(2,), unit_args=(2,), zero_preserving=True,
           call="soft_ss", kind="nonlinear",
           remedy="p is a schedule (a number or an expression in k), not trained: write it in the call"),
    # Reductions along one per-sample axis (attrs: the axis, None = every entry; channels.py).
    OpInfo("sum_axis", (1, 1), "custom", None, "sum(v, axis): sum along one axis", along_axis=True,
           zero_preserving=True, text=_axis_text("sum"), kind="reduce",
           vjp=lambda al, n, g, d: [_back(al, g, n.args[0], n.attrs[0])]),
    OpInfo("mean_axis", (1, 1), "custom", None, "mean(v, axis): mean along one axis",
           along_axis=True, zero_preserving=True, text=_axis_text("mean"), kind="reduce",
           vjp=lambda al, n, g, d: [al.div(_back(al, g, n.args[0], n.attrs[0]),
                                           _count(al, n.args[0].shape[n.attrs[0]]))]),
    OpInfo("logsumexp", (1, 1), "custom", None, "logsumexp(v, axis): log of the sum of exp along "
           "an axis (of every entry without one), computed stably", real_only=True,
           along_axis=True, text=_axis_text("logsumexp"), kind="reduce", vjp=_lse_vjp),
    OpInfo("amax", (1, 1), "custom", None, "amax(v, axis): the largest entry along an axis (of "
           "every entry without one)", smooth=False, real_only=True, along_axis=True,
           zero_preserving=True, call="amax", text=_axis_text("amax"), kind="reduce"),
    OpInfo("spread", (1, 1), "custom", None, "the adjoint of a sum along an axis: v repeated along "
           "a new axis (attrs: the axis; built by grad, never written in a spec)",
           along_axis=True, zero_preserving=True, kind="linear",
           vjp=lambda al, n, g, d: [al.mk("sum_axis", g, attrs=(n.attrs[0],), shape=n.args[0].shape)]),
    OpInfo("norm1", (1, 1), _R, None, "||v||_1", smooth=False, out_dtype="real", prox=_P_NORM1,
           text="||{0}||_1", sym=("‖{0}‖₁", r"\left\|{0}\right\|_1"), kind="reduce"),
    OpInfo("norm0", (1, 1), _R, None, "||v||_0 (count of non-zeros)", smooth=False,
           out_dtype="real", real_only=True, zero_grad=(0,), prox=_P_NORM0, text="||{0}||_0",
           sym=("‖{0}‖₀", r"\left\|{0}\right\|_0"), kind="reduce",
           remedy="||v||_1, or sum(sigmoid((abs(v) - t) / s)) as a smooth count"),
    OpInfo("sqnorm", (1, 1), _R, None, "||v||^2", out_dtype="real", prox=_P_SQNORM,
           text="||{0}||^2", sym=("‖{0}‖²", r"\left\|{0}\right\|_2^2"), kind="reduce",
           vjp=lambda al, n, g, d: [al.mul(al.mul(al.num(2.0), g), n.args[0])]),
    OpInfo("norm2", (1, 1), _R, None, "||v|| (Euclidean / Frobenius)", smooth=False,
           out_dtype="real", prox=_P_NORM2, text="||{0}||",
           sym=("‖{0}‖", r"\left\|{0}\right\|_2"), kind="reduce"),
    OpInfo("norm21", (1, 1), "norm21", None, "norm21(X): the group (l2,1) norm of X [G, ...], the "
           "sum over the leading axis of the Euclidean norms of X[i]", smooth=False,
           out_dtype="real", prox=_P_NORM21, call="norm21",
           sym=("‖{0}‖₂,₁", r"\left\|{0}\right\|_{{2,1}}"), kind="reduce"),
    OpInfo("gnorm", (1, 1), "gnorm", None, "gnorm(V): the Euclidean norm of each group V[i] of "
           "V [G, ...], kept as [G, 1, ...] (built by the prox of norm21, never written in a spec)",
           smooth=False, out_dtype="real", sym=("‖{0}[i]‖", r"\left\|{0}_i\right\|"),
           kind="reduce"),
    OpInfo("norminf", (1, 1), _R, None, "||v||_inf", smooth=False, out_dtype="real",
           text="||{0}||_inf", sym=("‖{0}‖∞", r"\left\|{0}\right\|_\infty"), kind="reduce"),
    OpInfo("opnorm", (1, 1), "matrix_scalar", None, "norm2(A): spectral norm of a fixed matrix",
           out_dtype="real", call="norm2", sym=("‖{0}‖₂", r"\left\|{0}\right\|_2"), kind="reduce"),
    OpInfo("pinv", (1, 1), "pinv", None, "pinv(A): Moore-Penrose pseudo-inverse of a fixed "
           "matrix [m, n] -> [n, m]", call="pinv", kind="linear"),
    OpInfo("inv", (1, 1), "inv", None, "inv(H): inverse of a fixed square matrix", call="inv",
           kind="linear"),
    OpInfo("diag", (1, 1), "diag", None, "diag(M): the diagonal [n] of a square matrix; diag(v): "
           "the diagonal matrix [n, n] of a vector", zero_preserving=True, call="diag",
           kind="linear", vjp=lambda al, n, g, d: [al.mk("diag", g)]),
    OpInfo("fft2", (1, 1), "fourier", None, "fft2(v): orthonormal 2-D FFT over the last two axes",
           out_dtype="complex", zero_preserving=True, linear_in=0, call="fft2", kind="linear",
           vjp=lambda al, n, g, d: [al.mk("ifft2", g)]),
    OpInfo("ifft2", (1, 1), "fourier", None, "ifft2(v): orthonormal inverse 2-D FFT",
           out_dtype="complex", zero_preserving=True, linear_in=0, call="ifft2", kind="linear",
           vjp=lambda al, n, g, d: [al.mk("fft2", g)]),
    OpInfo("real", (1, 1), _E, None, "real(v): real part", out_dtype="real", zero_preserving=True,
           linear_in=0, call="real", vjp=lambda al, n, g, d: [g]),
    OpInfo("imag", (1, 1), _E, None, "imag(v): imaginary part", out_dtype="real",
           zero_preserving=True, linear_in=0, call="imag", vjp=_imag_vjp),
    OpInfo("conj", (1, 1), _E, None, "conj(v): complex conjugate", zero_preserving=True,
           linear_in=0, call="conj", vjp=lambda al, n, g, d: [_cj(al, g)]),
    OpInfo("complex", (2, 2), _E, None, "complex(a, b): a + i b from real parts",
           out_dtype="complex", real_only=True, call="complex", vjp=_complex_vjp),
    OpInfo("cconv", (2, 2), "cconv", None, "cconv(H, x): circular convolution of image x [h, w] "
           "with each filter of H [L, a, b], giving [L, h, w]", real_only=True, call="cconv",
           linear_in=1, kind="linear", vjp=_conv_vjp("cconv_t")),
    OpInfo("cconv_t", (2, 2), "cconv_t", None, "cconv_t(H, z): adjoint of cconv, z [L, h, w] to "
           "[h, w]", real_only=True, call="cconv_t", linear_in=1,
           kind="linear", vjp=_conv_vjp("cconv")),
    OpInfo("otf", (1, 1), "custom", None, "otf(H, [h, w]): transfer functions (2-D FFT) of the "
           "filters H [L, a, b], complex [L, h, w]", out_dtype="complex"),
    OpInfo("sum_l", (1, 1), "sum_l", None, "sum_l(v): sum over the leading (filter) axis",
           zero_preserving=True, call="sum_l"),
    OpInfo("plf", (4, 4), "plf", None, "plf(v, q, lo, hi): piecewise-linear function with values "
           "q [L, P] on P uniform points of [lo, hi] per channel l of v [L, ...], slope 1 beyond "
           "the ends", real_only=True, call="plf", kind="nonlinear"),
    OpInfo("bank", (2, 2), "bank", None, "bank(G, B): filter bank [L, a, b] whose filter l is "
           "sum_r G[r, l] B[r], from coefficients G [R, L] on the atoms B [R, a, b]", call="bank"),
    OpInfo("nonzero", (2, 2), _E, lambda v, e: v if v != 0 else e, "nonzero(v, e): v with its "
           "exact zeros replaced by e (a safe denominator)", call="nonzero"),
    OpInfo("grid", (0, 0), "custom", None, "grid(P, lo, hi): P uniform points of [lo, hi]",
           text=lambda v, a: "grid({}, {:g}, {:g})".format(*v.attrs)),
    OpInfo("dct_filters", (0, 0), "custom", None, "dct_filters(s): the s*s-1 non-constant 2-D DCT "
           "basis filters of size s x s, [s*s-1, s, s]; dct_filters(s, order = F) gives each atom "
           "transposed (MATLAB's column-major reshape of kron(dctmtx(s), dctmtx(s)) rows)",
           text=_dct_text),
    OpInfo("ones", (0, 0), "custom", None, "ones([r, 1]): a constant of ones of that shape",
           text=lambda v, a: f"ones([{', '.join(str(d) for d in v.shape)}])", kind="const"),
    OpInfo("diff_filters", (0, 0), "custom", None, "diff_filters(): horizontal and vertical "
           "finite-difference filters, [2, 3, 3]"),
    OpInfo("reshape", (1, 1), "custom", None, "reshape(v, [c, h, w]): same entries, new shape",
           zero_preserving=True, linear_in=0,
           text=lambda v, a: f"reshape({a[0]}, [{', '.join(str(d) for d in v.attrs[0])}])",
           kind="linear", vjp=lambda al, n, g, d: [al.mk("reshape", g, attrs=(n.args[0].shape,),
                                                          shape=n.args[0].shape)]),
    OpInfo("block", (1, 1), "custom", None, "a learnable block applied to a value",
           text=lambda v, a: f"{v.attrs[0]}({a[0]})", kind="linear"),
    OpInfo("block_t", (1, 1), "custom", None, "B'(v): the adjoint of a linear block (its layers "
           "transposed in reverse order, the same weights)",
           text=lambda v, a: f"{v.attrs[0]}'({a[0]})", kind="linear"),
    OpInfo("batch_mean", (1, 1), "batch_reduce", None, "mean over the batch (per-sample losses)"),
    OpInfo("mse", (2, 2), "batch_reduce", None, "mse(a, b): mean squared error over batch and "
           "entries", out_dtype="real", call="mse", kind="reduce"),
    OpInfo("nmse", (2, 2), "batch_reduce", None, "nmse(a, b): ||a − b||² / ||b||² over the batch",
           out_dtype="real", call="nmse", kind="reduce"),
    # Indicators (cost terms): 0 where the constraint holds, +inf elsewhere; their prox is a projection.
    OpInfo("nonneg", (1, 1), _R, None, "nonneg(x): indicator of x ≥ 0 (0 or +inf)", smooth=False,
           zero_grad=(0,), remedy=_NO_GRAD_IND, prox=_P_NONNEG, call="nonneg",
           sym=("ι{{{0} ≥ 0}}", r"\iota_{{{0} \geq 0}}")),
    OpInfo("box", (3, 3), _R, None, "box(x, lo, hi): indicator of lo ≤ x ≤ hi (0 or +inf)",
           smooth=False, zero_grad=(0, 1, 2), remedy=_NO_GRAD_IND, prox=_P_BOX, call="box",
           sym=("ι{{{1} ≤ {0} ≤ {2}}}", r"\iota_{{{1} \leq {0} \leq {2}}}")),
    OpInfo("ball", (2, 2), "ball", None, "ball(v, r): indicator of ‖v‖ ≤ r (0 or +inf), r a number",
           smooth=False, real_only=True, zero_grad=(0, 1), remedy=_NO_GRAD_IND, prox=_P_BALL,
           call="ball", sym=("ι{{‖{0}‖ ≤ {1}}}", r"\iota_{{\|{0}\| \leq {1}}}")),
    # Several values as one and back (channels.py); axes count per-sample dims from 0.
    OpInfo("cat", (1, 1 << 16), "custom", None, "cat([a, b], axis): join along an axis",
           along_axis=True, vjp=_cat_vjp, text=lambda v, a: f"cat([{', '.join(a)}], {v.attrs[0]})"),
    OpInfo("stack", (1, 1 << 16), "custom", None, "stack([a, b], axis): join along a new axis",
           along_axis=True, vjp=_stack_vjp, text=lambda v, a: f"stack([{', '.join(a)}], {v.attrs[0]})"),
    OpInfo("slice", (1, 1), "custom", None, "v[i, a:b]: entries or ranges along the leading axes",
           zero_preserving=True, linear_in=0, along_axis=True, vjp=_slice_vjp, text=_index_text),
    OpInfo("embed", (1, 1), "custom", None, "the adjoint of a range: v placed into zeros of the "
           "source's shape (built by grad, never written in a spec)", zero_preserving=True,
           linear_in=0, along_axis=True, vjp=_embed_vjp),
    # forward differences and their adjoint are each other's transpose (channels.py)
    OpInfo("diff", (1, 1), "custom", None, "diff(x, axis): forward differences x[i+1] - x[i], 0 at "
           "the last entry (Neumann boundary)", zero_preserving=True, linear_in=0, along_axis=True,
           vjp=lambda al, n, g, d: [al.mk("diff_t", g, attrs=n.attrs, shape=n.shape)]),
    OpInfo("diff_t", (1, 1), "custom", None, "diff_t(p, axis): the adjoint of diff (minus the "
           "discrete divergence)", zero_preserving=True, linear_in=0, along_axis=True,
           vjp=lambda al, n, g, d: [al.mk("diff", g, attrs=n.attrs, shape=n.shape)]),
    # Built only by the derivation (argmin, block soft thresholding), never written in a spec.
    OpInfo("solve", (2, 2), "custom", None, "solve(H, b): H⁻¹ b for a fixed square matrix H",
           sym=("({0})⁻¹({1})", r"\left({0}\right)^{{-1}} \left({1}\right)"), kind="linear"),
    OpInfo("vdot", (2, 2), "custom", None, "vdot(a, b): per-sample inner product, kept as [1]",
           sym=("⟨{0}, {1}⟩", r"\langle {0}, {1} \rangle")),
    # A matrix-free operator (attrs: name, adjoint): applied to a value, or its norm by power iteration.
    OpInfo("linop_apply", (1, 1), "custom", None, "A x for a matrix-free operator A (A' y: adjoint)",
           zero_preserving=True,
           vjp=lambda al, n, g, d: [al.mk("linop_apply", g, attrs=(n.attrs[0], not n.attrs[1]),
                                          shape=n.args[0].shape)]),
    OpInfo("linop_norm", (0, 0), "custom", None, "norm2(A) of a matrix-free operator (power "
           "iteration)", out_dtype="real", text=lambda v, a: f"norm2({v.attrs[0]})"),
]

OPS: dict[str, OpInfo] = {o.name: o for o in _TABLE}


def _leaf(name: str, doc: str, kind: str = "other", text: Form | None = None,
          arity: tuple[int, int] = (0, 0), rule: str = "leaf") -> OpInfo:
    return OpInfo(name, arity, rule, None, doc, text=text, kind=kind)


NODES: dict[str, OpInfo] = {o.name: o for o in (
    _leaf("input", "an input of the network (attrs: its name)", "input"),
    _leaf("target", "a training target, seen by the loss only", "input"),
    _leaf("operator", "a fixed matrix given when the model is built", "operator"),
    _leaf("linop", "a matrix-free operator (only applied: linop_apply)"),
    _leaf("param", "a learnable (attrs: its name)", "param"),
    _leaf("const", "a value computed once when the model is built", "const"),
    _leaf("state", "a state of the iteration (its value entering the layer)"),
    _leaf("number", "a number", "const", lambda v, a: v.name or f"{v.attrs[0]:g}"),
    _leaf("zeros", "zeros of a shape (folded zero states; zeros([n]) in a spec)", "const", "0"),
    _leaf("identity", "I, square, its size taken from its context", "const", "I"),
    _leaf("index", "the layer index k", "const", "k"),
    _leaf("dim", "a dim's size", "const"),
    _leaf("count", "the layer count K (in the loss)", text="K"),
    _leaf("expand", "a per-sample scalar broadcast to a shape", "linear", arity=(1, 1),
          rule="custom"),
    _leaf("state_at", "a state after layer e (the loss's x[e])", arity=(1, 1), rule="custom",
          text=lambda v, a: f"{v.attrs[0]}[{a[0]}]"),
    _leaf("sum_layers", "an aux term summed over the layers (sum_k)", arity=(1, 1), rule="custom",
          text=lambda v, a: f"sum_k({a[0]})"),
)}


def node_info(op: str) -> OpInfo | None:
    """The facts for an op or node name (None if unknown)."""
    return OPS.get(op) or NODES.get(op)


# Spec function names → op names (norm2 on a matrix is the spectral norm: see check).
FUNCTIONS: dict[str, str] = {o.call: o.name for o in _TABLE if o.call}

# Calls whose arguments are numbers or shapes fixed in the spec (handled in check.call_special).
SPECIAL_CALLS = ("grid", "dct_filters", "diff_filters", "otf", "ones", "zeros")

# Ops whose value is zero wherever their first argument is zero (used when folding zero states).
ZERO_PRESERVING = frozenset(o.name for o in _TABLE if o.zero_preserving)


# ---- shape rules ----
def broadcast(s1: tuple, s2: tuple) -> tuple | None:
    """The shape of an element-wise op on shapes s1 and s2 (None: they do not broadcast).
    Scalars go with anything, `I` with a square matrix, size-1 axes stretch; sizes only the bound
    dims can compare (`m` and `4*G`) are taken as equal here and checked by unfold."""
    if s1 == s2 or s2 == ():
        return s1
    if s1 == ():
        return s2
    if s1 == IDENT and len(s2) == 2 and s2[0] == s2[1]:
        return s2
    if s2 == IDENT and len(s1) == 2 and s1[0] == s1[1]:
        return s1
    if IDENT not in (s1, s2) and len(s1) == len(s2) and all(
            may_equal(a, b) or a == 1 or b == 1 for a, b in zip(s1, s2)):
        return tuple(b if a == 1 else a for a, b in zip(s1, s2))
    return None


def _mismatched(o: OpInfo, s1: tuple, s2: tuple, i: int) -> Mismatch:
    what = f"cannot {o.verb}" if o.verb else f"{o.name}: mismatched shapes"
    return Mismatch(f"{what} {fmt_shape(s1)} and {fmt_shape(s2)}", None, (0, i))


def _elementwise(o, shapes, batched, numbers):
    shape = shapes[0]
    for i, s in enumerate(shapes[1:], 1):
        out = broadcast(shape, s)
        if out is None:
            return _mismatched(o, shape, s, i)
        shape = out
    return shape


def _batch_reduce(o, shapes, batched, numbers):
    out = _elementwise(o, shapes, batched, numbers)
    return out if isinstance(out, Mismatch) else ()


def _matmul(o, shapes, batched, numbers):
    a, b = shapes
    if a == () or b == ():  # a scalar factor scales
        return b if a == () else a
    if a == IDENT or b == IDENT:
        return b if a == IDENT else a
    if len(a) != 2:
        return Mismatch(f"the left factor of a product must be a matrix, got {fmt_shape(a)}", None,
                        (0,), "for an element-wise product write a * b")
    if len(b) not in (1, 2) or not may_equal(b[0], a[1]):
        return Mismatch(f"cannot multiply {fmt_shape(a)} by {fmt_shape(b)}: inner dimensions "
                        "differ", None, (0, 1))
    return (a[0],) + b[1:]


def _transpose(o, shapes, batched, numbers):
    a = shapes[0]
    if a == IDENT or a == ():
        return a
    if len(a) != 2:
        return Mismatch(f"transpose needs a matrix, got shape {fmt_shape(a)}", None, (),
                        "for an inner product write sum(x * y)")
    return (a[1], a[0])


def _fourier(o, shapes, batched, numbers):
    if len(shapes[0]) < 2:
        return Mismatch(f"{o.name} needs an image [.., h, w], got {fmt_shape(shapes[0])}")
    return shapes[0]


def _cconv(o, shapes, batched, numbers):
    h, v = shapes
    if len(h) != 3 or batched[0]:
        return Mismatch(f"{o.name} takes a filter bank [L, a, b] first, got {fmt_shape(h)}", 0)
    adjoint = o.rule == "cconv_t"
    if len(v) != (3 if adjoint else 2) or (adjoint and not may_equal(v[0], h[0])):
        what = f"a stack [{h[0]}, h, w]" if adjoint else "an image [h, w]"
        return Mismatch(f"{o.name} needs {what}, got {fmt_shape(v)}", 1, (1,))
    return v[1:] if adjoint else (h[0],) + v


def _bank(o, shapes, batched, numbers):
    g, b = shapes
    if len(g) != 2 or batched[0]:
        return Mismatch(f"bank takes coefficients G [R, L] first, got {fmt_shape(g)}", 0, (0,))
    if len(b) != 3 or batched[1] or not may_equal(b[0], g[0]):
        return Mismatch(f"bank needs atoms [{g[0]}, a, b] for G {fmt_shape(g)}, got "
                        f"{fmt_shape(b)}", 1, (1,))
    return (g[1],) + b[1:]


def _sum_l(o, shapes, batched, numbers):
    if not shapes[0]:
        return Mismatch("sum_l needs a stack [L, ...], got a scalar")
    return shapes[0][1:]


def _plf(o, shapes, batched, numbers):
    v, q = shapes[0], shapes[1]
    if len(q) != 2 or not v or not may_equal(q[0], v[0]) or batched[1]:
        return Mismatch(f"plf needs values q [L, P] for v [L, ...]; got v {fmt_shape(v)} and q "
                        f"{fmt_shape(q)}")
    for i in range(2, len(shapes)):
        if numbers is not None and not numbers[i]:
            return Mismatch("the range of plf is two numbers", i)
    return v


def _quantile(o, shapes, batched, numbers):
    if shapes[1] != () or batched[1]:
        return Mismatch(f"the level q of quantile(v, q) is one number for every sample, got "
                        f"{'a per-sample ' if batched[1] else ''}{fmt_shape(shapes[1])}", 1, (1,),
                        "write a number in [0, 1] or a scalar expression in k")
    return ()


def _soft_ss(o, shapes, batched, numbers):
    if shapes[2] != () or batched[2]:
        return Mismatch(f"the fraction p of soft_ss(v, t, p) is one number for every sample, got "
                        f"{'a per-sample ' if batched[2] else ''}{fmt_shape(shapes[2])}", 2, (2,),
                        "write a number in [0, 1] or a schedule in k, min(0.012 * (k + 1), 0.13)")
    return _elementwise(o, shapes[:2], batched, numbers)


def _norm21(o, shapes, batched, numbers):
    if len(shapes[0]) < 2:
        return Mismatch(f"{o.name} takes groups along the leading axis, X [G, s] (or [G, ...]), got "
                        f"{fmt_shape(shapes[0])}", None, (0,),
                        "for groups of s entries of a vector x [m] write norm21(reshape(x, [G, s]))")
    return () if o.name == "norm21" else (shapes[0][0],) + (1,) * (len(shapes[0]) - 1)


def _matrix_scalar(o, shapes, batched, numbers):
    if len(shapes[0]) != 2 or batched[0]:
        return Mismatch("norm2 of a fixed matrix is its spectral norm; got "
                        f"{fmt_shape(shapes[0])}")
    return ()


def _fixed_matrix(o, shapes, batched, numbers, square: bool):
    a = shapes[0]
    if len(a) != 2 or batched[0] or (square and not may_equal(a[0], a[1])):
        what = "square matrix" if square else "matrix"
        return Mismatch(f"{o.name} needs a fixed {what} (no batch axis), got {fmt_shape(a)}", None,
                        (0,), "it is computed once per call from operators, consts and learnables")
    return (a[1], a[0])


def _diag(o, shapes, batched, numbers):
    a = shapes[0]
    if len(a) == 1:
        return (a[0], a[0])
    if len(a) == 2 and may_equal(a[0], a[1]):
        return (a[0],)
    return Mismatch(f"diag takes a vector [n] or a square matrix [n, n], got {fmt_shape(a)}", None,
                    (0,))


def _ball(o, shapes, batched, numbers):
    if shapes[1] != ():
        return Mismatch(f"the radius of ball(v, r) is a number, got {fmt_shape(shapes[1])}", 1, (1,))
    return ()


_SHAPE_RULES = {"elementwise": _elementwise, "reduce": lambda o, s, b, n: (),
                "batch_reduce": _batch_reduce, "matmul": _matmul, "transpose": _transpose,
                "fourier": _fourier, "cconv": _cconv, "cconv_t": _cconv, "bank": _bank,
                "sum_l": _sum_l, "plf": _plf, "ball": _ball, "matrix_scalar": _matrix_scalar, "diag": _diag,
                "quantile": _quantile, "soft_ss": _soft_ss, "norm21": _norm21, "gnorm": _norm21,
                "pinv": lambda o, s, b, n: _fixed_matrix(o, s, b, n, False),
                "inv": lambda o, s, b, n: _fixed_matrix(o, s, b, n, True)}


def infer_shape(op: str, shapes: Sequence[tuple], batched: Sequence[bool] | None = None,
                numbers: Sequence[bool] | None = None) -> tuple | Mismatch | None:
    """The per-sample shape of `op` on arguments of these shapes, or a `Mismatch` saying why it
    does not apply; None for an op whose shape is set where it is built ('custom'). `batched` and
    `numbers`, when given, say which arguments have a batch axis and which are plain numbers, for
    the rules that ask (a filter bank is not batched, plf's range is two numbers)."""
    o = OPS[op]
    rule = _SHAPE_RULES.get(o.rule)
    if rule is None:
        return None
    shapes = [tuple(s) for s in shapes]
    batched = tuple(batched) if batched is not None else (False,) * len(shapes)
    return rule(o, shapes, batched, None if numbers is None else tuple(numbers))
