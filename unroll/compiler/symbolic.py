"""IR `Value` ⇄ sympy: matrix expressions over `MatrixSymbol`s with the spec's dims, and their
printing in one-line Unicode (`unicode`) and LaTeX (`latex`).

Linear algebra (sums, scalings, products, transposes) becomes sympy's own matrix algebra, which the
rewrite pass expands and compares; every other op (soft, norms, ...) is an opaque symbol: a fresh
one recorded in `atoms` when matching, or one that prints as the call when printing.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from .ir import Value
from .ops import IDENT, OPS

__all__ = ["to_sympy", "unicode", "latex", "equal"]

GREEK = {"lam": "λ", "lambda": "λ", "rho": "ρ", "theta": "θ", "mu": "μ", "tau": "τ",
         "alpha": "α", "beta": "β", "gamma": "γ", "sigma": "σ", "eta": "η", "eps": "ε"}
_LATEX_GREEK = {"lam": r"\lambda", "λ": r"\lambda"}


class Opaque(sp.Symbol):
    """A scalar that prints as the text it was given (an op sympy does not model)."""


class OpaqueMatrix(sp.MatrixSymbol):
    """A matrix-valued opaque op (soft(v, t), relu(v), ...)."""


def _dim(d) -> sp.Expr:
    return sp.Integer(d) if isinstance(d, int) else sp.Symbol(str(d), integer=True, positive=True)


def _sym(name: str, shape: tuple, cls=None):
    if shape == () or shape == IDENT:
        return (cls or sp.Symbol)(name)
    if len(shape) == 1:
        return (cls or sp.MatrixSymbol)(name, _dim(shape[0]), sp.Integer(1))
    if len(shape) == 2:
        return (cls or sp.MatrixSymbol)(name, _dim(shape[0]), _dim(shape[1]))
    return (Opaque if cls is None else cls)(name) if len(shape) != 2 else None


def _is_mat(e) -> bool:
    return isinstance(e, sp.MatrixExpr)


def _fill(s, like):
    return s * sp.OneMatrix(*like.shape) if not _is_mat(s) and _is_mat(like) else s


def _add(a, b):
    return _fill(a, b) + _fill(b, a)


def _mul(a, b):
    if _is_mat(a) and _is_mat(b):
        return sp.HadamardProduct(a, b)
    return a * b


def _div(a, b):
    if _is_mat(b):
        return sp.HadamardProduct(_fill(a, b), sp.HadamardPower(b, -1))
    return a / b


def _pow(a, b):
    return sp.HadamardPower(a, b) if _is_mat(a) else a ** b


# How sympy models the linear-algebra ops (keyed by op names; the rest become opaque symbols).
_ALGEBRA = {
    "add": _add, "sub": lambda a, b: _add(a, -b), "neg": lambda a: -a, "mul": _mul, "div": _div,
    "pow": _pow, "matmul": lambda a, b: a * b, "transpose": lambda a: a.T,
}

def to_sympy(v: Value, atoms: dict | None = None, style: str = "unicode"):
    """The sympy form of v. With `atoms`, opaque ops become fresh symbols mapped to their Value."""
    memo: dict[int, object] = {}
    from .algebra import walk
    for n in walk(v):
        if atoms is None and n.name and n is not v and n.args:  # a named local prints as its name
            memo[id(n)] = _sym(n.name, n.shape)
            continue
        memo[id(n)] = _node(n, [memo[id(a)] for a in n.args], atoms, style)
    return memo[id(v)]


def _leaf_name(n: Value, style: str) -> str:
    name = str(n.attrs[0]).strip("_") if n.attrs else n.op
    if style == "unicode":
        return GREEK.get(name, name)
    return _LATEX_GREEK.get(name, name)


def _node(n: Value, args: list, atoms: dict | None, style: str):
    if n.op == "number":
        x = float(n.attrs[0])
        return sp.Integer(int(x)) if x.is_integer() else sp.Float(x, 6)
    if n.op == "identity":
        return sp.Identity(_dim(n.shape[0])) if len(n.shape) == 2 else sp.Symbol("I")
    if n.op == "dim":
        return _dim(n.attrs[0])
    if n.op == "index":
        return sp.Symbol("k")
    if n.op == "linop_norm":
        return sp.Symbol(f"‖{n.attrs[0]}‖₂")
    if n.op == "linop_apply" and len(n.shape) == 1 and len(n.args[0].shape) == 1:
        op = sp.MatrixSymbol(str(n.attrs[0]), *(_dim(d) for d in (n.args[0].shape + n.shape)
                                                 if n.attrs[1])) if n.attrs[1] else \
            sp.MatrixSymbol(str(n.attrs[0]), _dim(n.shape[0]), _dim(n.args[0].shape[0]))
        return (op.T if n.attrs[1] else op) * args[0]
    if not n.args:
        return _sym(_leaf_name(n, style), n.shape)
    if n.op in _ALGEBRA:
        try:
            return _ALGEBRA[n.op](*args)
        except (TypeError, ValueError, sp.matrices.exceptions.ShapeError, AttributeError):
            pass
    if atoms is not None:
        name = f"_atom{len(atoms)}"
        s = _sym(name, n.shape)
        atoms[s] = n
        return s
    printer = _UnicodePrinter() if style == "unicode" else _LatexPrinter()
    texts = [printer.doprint(a) for a in args]
    form = OPS[n.op].sym if n.op in OPS else None  # how the opaque op reads: (Unicode, LaTeX)
    if form is not None:
        text = (form[0] if style == "unicode" else form[1]).format(*texts)
    else:
        name = n.op if style == "unicode" else rf"\operatorname{{{n.op}}}"
        text = f"{name}({', '.join(texts)})" if style == "unicode" else \
            rf"{name}\left({', '.join(texts)}\right)"
    return _sym(text, n.shape, OpaqueMatrix if len(n.shape) in (1, 2) else Opaque)


class _UnicodePrinter(StrPrinter):
    """One-line Unicode: Aᵀ(Ax − y), ‖x‖₁, λ/L."""

    def __init__(self):
        super().__init__({"full_prec": False})

    def _print_Transpose(self, e):
        inner = self._print(e.arg)
        return (inner if len(inner) == 1 else f"({inner})") + "ᵀ"

    def _print_MatMul(self, e):
        c, factors = e.as_coeff_matrices()
        parts = []
        for f in factors:
            s = self._print(f)
            parts.append(f"({s})" if isinstance(f, (sp.MatAdd, sp.HadamardProduct)) else s)
        body = "".join(p if len(p) == 1 or p.startswith("(") or p.endswith("ᵀ") else f" {p} "
                       for p in parts).strip().replace("  ", " ")
        num, den = sp.fraction(c)
        sign = "-" if num.could_extract_minus_sign() else ""
        num = -num if sign else num
        if num == 1:
            return sign + body + ("" if den == 1 else "/" + self.parenthesize(den, 50))
        return f"{sign}{self.parenthesize(num / den, 50)} {body}"

    def _print_MatAdd(self, e):
        terms = sorted(e.args, key=lambda t: self._print(t).startswith("-"))
        out = self._print(terms[0])
        for t in terms[1:]:
            s = self._print(t)
            out += f" - {s[1:]}" if s.startswith("-") else f" + {s}"
        return out

    def _print_HadamardProduct(self, e):
        return " ⊙ ".join(self.parenthesize(a, 60) for a in e.args)

    def _print_Identity(self, e):
        return "I"

    def _print_OneMatrix(self, e):
        return "𝟙"

    def _print_Symbol(self, e):
        return e.name

    _print_MatrixSymbol = _print_Symbol

    def doprint(self, expr):
        return super().doprint(expr).replace(" - ", " − ").replace("**", "^").replace("*", "·").replace(
            "-", "−").replace("·I", " I")


class _LatexPrinter(LatexPrinter):
    """LaTeX with opaque ops printed as given."""

    def _print_Opaque(self, e):
        return e.name

    _print_OpaqueMatrix = _print_Opaque

    def _print_Symbol(self, e, style="plain"):
        if e.name in _LATEX_GREEK.values():
            return e.name
        return super()._print_Symbol(e)

    def _print_MatrixSymbol(self, e):
        return self._print_Symbol(sp.Symbol(e.name))


def unicode(v: Value) -> str:
    """v in one line of Unicode, e.g. `soft(x − Aᵀ(Ax − y)/L, λ/L)`."""
    return _UnicodePrinter().doprint(to_sympy(v, style="unicode"))


def latex(v: Value) -> str:
    """v as LaTeX."""
    return _LatexPrinter().doprint(to_sympy(v, style="latex"))


def equal(a, b) -> bool:
    """Whether two sympy forms are equal after expansion (False when their shapes differ)."""
    try:
        d = (a - b)
        if isinstance(d, sp.MatrixExpr):
            d = d.doit().expand()
            return d == 0 or isinstance(d, sp.ZeroMatrix) or (
                isinstance(d, sp.MatMul) and any(x == 0 for x in d.args))
        return sp.simplify(d) == 0
    except Exception:  # noqa: BLE001 - mismatched shapes or unsupported forms are "not equal"
        return False
