"""How each op is written in generated PyTorch code: one table entry per op name (every op of
compiler.ops.OPS, plus the zeros, identity and expand nodes the graph builds itself).

An entry takes the argument expressions (Python identifiers or literals), the node's record, its
arguments' records and the context (`dtype` and `device` expressions), and returns the expression
text; backends/walk.py calls it. Values with a batch dimension carry it first; `nd` is the number of
per-sample dims.
"""
from __future__ import annotations

from typing import Callable

from ..compiler.graph import Namespace, NodeRecord
from .torch_runtime import attr_name

__all__ = ["TORCH_OPS", "HELPERS", "literal"]

_NS = Namespace()  # for `safe` only

# Helper functions written at the top of every generated file (the file needs only torch).
HELPERS = '''
def soft(v, t):
    """Soft thresholding: sign(v) * max(|v| - t, 0)."""
    return torch.sign(v) * torch.relu(torch.abs(v) - t)


def hard(v, t):
    """Hard thresholding: v where |v| > t, else 0."""
    return v * (torch.abs(v) > t).to(v.dtype)


def hard_ste(v, t):
    """Hard thresholding forward, soft thresholding's gradient backward (straight-through)."""
    s = soft(v, t)
    return s + (hard(v, t) - s).detach()


def hard_smooth(v, t, s):
    """Sigmoid-gated hard thresholding: v * sigmoid((|v| - t) / s)."""
    return v * torch.sigmoid((torch.abs(v) - t) / s)


def _quantile(v, q, nd, interpolation="linear"):
    """The q-quantile over the last nd axes of v (one sample's entries), as torch.quantile."""
    x = v.reshape(v.shape[:v.dim() - nd] + (-1,))
    return torch.quantile(x, torch.as_tensor(q, dtype=v.dtype, device=v.device), dim=-1,
                          interpolation=interpolation)


def _soft_ss(v, t, p, nd):
    """Support selection (LISTA-CPSS): entries among the largest fraction p of |v| per sample (above
    its (1 - p)-quantile, nearest rank) and above t pass; the rest are soft-thresholded by t. The
    selection mask is a constant for autograd."""
    a = v.detach().abs()
    top = _quantile(a, 1 - torch.as_tensor(p, dtype=v.dtype, device=v.device), nd, "nearest")
    keep = ((a > t) & (a > top.reshape(top.shape + (1,) * nd))).to(v.dtype)
    return keep * v + soft((1 - keep) * v, t)


def _clamp(v, lo, hi):
    lo = torch.as_tensor(lo, dtype=v.dtype, device=v.device)
    hi = torch.as_tensor(hi, dtype=v.dtype, device=v.device)
    return torch.minimum(torch.maximum(v, lo), hi)


def _maximum(a, b):
    if not torch.is_tensor(a):
        a, b = b, a
    return torch.maximum(a, torch.as_tensor(b, dtype=a.dtype, device=a.device))


def _minimum(a, b):
    if not torch.is_tensor(a):
        a, b = b, a
    return torch.minimum(a, torch.as_tensor(b, dtype=a.dtype, device=a.device))


def _inv_softplus(v):
    if bool((v <= 0).any()):
        raise ValueError("needs positive initial values")
    return v + torch.log(-torch.expm1(-v))


def _check_in(v, lo, hi, what):
    """The initial value of a projected learnable (`what`: positive or unit), already in its set."""
    bad = (v <= 0) if what == "positive" else (v <= 0) | (v >= 1)
    if bool(bad.any()):
        raise ValueError("needs positive initial values" if what == "positive"
                         else "needs initial values in (0, 1)")
    return v.clamp(lo, hi)


def _feasible(v, lo, hi):
    """v clamped into [lo, hi] with an identity gradient: the projected constraint's forward."""
    return v.detach().clamp(lo, hi) + (v - v.detach())


def _logit(v):
    if bool(((v <= 0) | (v >= 1)).any()):
        raise ValueError("needs initial values in (0, 1)")
    return torch.logit(v)


class _Residual(torch.nn.Sequential):
    """x + layers(x): with a zero-initialised last layer it starts as the identity."""

    def forward(self, x):
        return x + super().forward(x)


def _block_adjoint(block, x):
    """B'(x) for a linear block (conv and linear layers, no bias): the layers transposed, last
    first, with the same weights; a residual block's adjoint is x + layers'(x)."""
    y = x
    for m in reversed(list(block)):
        if isinstance(m, torch.nn.Conv2d):
            y = F.conv_transpose2d(y, m.weight, padding=m.padding)
        else:
            y = y @ m.weight
    return x + y if isinstance(block, _Residual) else y


def _dct_matrix(n, dtype):
    """Rows of the orthonormal n-point DCT-II matrix, [n, n]."""
    i = torch.arange(n, dtype=torch.float64)
    m = torch.cos(torch.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n))
    return (m / m.norm(dim=1, keepdim=True)).to(dtype)


def _init_weight(w, init, scale):
    """Initialise a conv or linear weight in place: xavier (normal, the default), kaiming (normal,
    fan-in, relu gain), orthogonal, zeros, or dct (DCT basis rows / filters, cycled), times scale."""
    with torch.no_grad():
        if init in (None, "xavier"):
            torch.nn.init.xavier_normal_(w)
        elif init == "kaiming":
            torch.nn.init.kaiming_normal_(w, nonlinearity="relu")
        elif init == "orthogonal":
            torch.nn.init.orthogonal_(w)
        elif init == "zeros":
            torch.nn.init.zeros_(w)
        elif w.dim() == 2:  # dct, linear: output j is DCT row j mod n_in
            w.copy_(_dct_matrix(w.shape[1], w.dtype)[torch.arange(w.shape[0]) % w.shape[1]])
        else:  # dct, conv: output o is the 2-D DCT filter o mod k*k on every input channel
            k = w.shape[-1]
            basis = _dct_matrix(k, w.dtype)
            filt = torch.einsum("ux,vy->uvxy", basis, basis).reshape(k * k, k, k)
            w.copy_(filt[torch.arange(w.shape[0]) % (k * k)][:, None].expand_as(w) / w.shape[1])
        w.mul_(scale)


def _block(layers, dtype, residual=False):
    """A learnable block from (kind, in, out, kernel, bias, init, scale) tuples; biases start at 0."""
    mods = []
    for kind, cin, cout, k, bias, init, scale in layers:
        if kind == "conv":
            m = torch.nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias, dtype=dtype)
        elif kind == "linear":
            m = torch.nn.Linear(cin, cout, bias=bias, dtype=dtype)
        else:
            m = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                 "softplus": torch.nn.Softplus}[kind]()
        if kind in ("conv", "linear"):
            _init_weight(m.weight, init, scale)
            if bias:
                torch.nn.init.zeros_(m.bias)
        mods.append(m)
    return (_Residual if residual else torch.nn.Sequential)(*mods)


def _join(xs, batched, axis, stack):
    """cat / stack of per-sample values along a per-sample axis; values without a batch dim are
    expanded to the batch, numbers become tensors and real values join complex ones as complex."""
    ref = next(x for x in xs if torch.is_tensor(x))
    xs = [x if torch.is_tensor(x) else torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
          for x in xs]
    if any(x.is_complex() for x in xs):
        cdt = next(x.dtype for x in xs if x.is_complex())
        xs = [x.to(cdt) for x in xs]
    if any(batched):
        n = next(x.shape[0] for x, b in zip(xs, batched) if b)
        xs = [x if b else x.expand(n, *x.shape) for x, b in zip(xs, batched)]
        axis += 1
    return torch.stack(xs, axis) if stack else torch.cat(xs, axis)


def _embed(g, shape, index, dtype, device):
    """Zeros of `shape` with g written at `index` (the adjoint of taking that range)."""
    z = torch.zeros(shape, dtype=g.dtype if torch.is_tensor(g) else dtype, device=device)
    z[index] = g
    return z


def _complex(a, b):
    """a + i b for real tensors (or numbers), broadcast."""
    if not torch.is_tensor(a) and not torch.is_tensor(b):
        return torch.complex(torch.tensor(float(a)), torch.tensor(float(b)))
    ref = a if torch.is_tensor(a) else b
    a, b = (torch.as_tensor(v, dtype=ref.dtype, device=ref.device) for v in (a, b))
    a, b = torch.broadcast_tensors(a, b)
    return torch.complex(a, b)


def _diff(x, axis):
    """Forward differences along axis (from the end), 0 at the last entry (Neumann)."""
    n = x.shape[axis]
    d = x.narrow(axis, 1, n - 1) - x.narrow(axis, 0, n - 1)
    return torch.cat([d, torch.zeros_like(x.narrow(axis, 0, 1))], axis)


def _diff_t(p, axis):
    """The adjoint of _diff: (D'p)_i = p_(i-1) - p_i with p_(-1) = p_(n-1) = 0."""
    n = p.shape[axis]
    q = torch.cat([p.narrow(axis, 0, n - 1), torch.zeros_like(p.narrow(axis, 0, 1))], axis)
    return torch.cat([torch.zeros_like(q.narrow(axis, 0, 1)), q.narrow(axis, 0, n - 1)], axis) - q


def _complex_of(dtype):
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _otf(H, h, w):
    """Transfer functions of the filters H [L, a, b] on an h x w grid (circular boundary)."""
    a, b = H.shape[-2:]
    pad = F.pad(H, (0, w - b, 0, h - a))
    pad = torch.roll(pad, shifts=(-(a // 2), -(b // 2)), dims=(-2, -1))
    return torch.fft.fft2(pad)


def _cconv(H, x):
    """Circular convolution of x [..., h, w] with each filter of H: [..., L, h, w]."""
    otf = _otf(H, x.shape[-2], x.shape[-1])
    return torch.fft.ifft2(otf * torch.fft.fft2(x).unsqueeze(-3)).real


def _cconv_t(H, z):
    """Adjoint of _cconv: z [..., L, h, w] to [..., h, w]."""
    otf = _otf(H, z.shape[-2], z.shape[-1])
    return torch.fft.ifft2(torch.conj(otf) * torch.fft.fft2(z)).real.sum(dim=-3)


def plf(v, q, lo, hi, axis):
    """Piecewise-linear function: values q [L, P] on P uniform points of [lo, hi], per channel
    (the axis of v holding L); beyond the ends it continues with slope 1 (ADMM-Net's S_PLF)."""
    n = q.shape[-1]
    step = (hi - lo) / (n - 1)
    # On segment j (0: below lo, 1..P-1: between grid points j-1 and j, P: above hi) the function
    # is a[j] + s[j] * v: two gathers and a multiply-add, whose backward is as short.
    one = torch.ones_like(q[:, :1])
    slope = torch.cat([one, (q[:, 1:] - q[:, :-1]) / step, one], 1)
    grid = lo + step * torch.arange(n, dtype=q.dtype, device=q.device)
    knot = torch.cat([grid[:1], grid[:-1], grid[-1:]])
    base = torch.cat([q[:, :1], q[:, :-1], q[:, -1:]], 1) - slope * knot
    with torch.no_grad():
        j = torch.clamp(torch.floor((v - lo) / step) + 1, 0, n).long()
    lead = 1
    for d in v.shape[:axis % v.dim()]:
        lead *= d
    # NOTE: gather from tables broadcast over the leading dims: 3x faster than flat indexing
    idx = j.reshape(lead, q.shape[0], -1)
    a = torch.gather(base.unsqueeze(0).expand(lead, -1, -1), 2, idx).view(v.shape)
    s = torch.gather(slope.unsqueeze(0).expand(lead, -1, -1), 2, idx).view(v.shape)
    return a + s * v


def _dct_filters(k, dtype, device, order="C"):
    """The k*k - 1 non-constant orthonormal 2-D DCT-II basis filters, [k*k - 1, k, k]; order "F"
    transposes each atom (MATLAB's column-major reshape of the rows of kron(dctmtx, dctmtx))."""
    n = torch.arange(k, dtype=torch.float64)
    basis = torch.stack([torch.cos(torch.pi * (2 * n + 1) * u / (2 * k)) for u in range(k)])
    basis = basis / basis.norm(dim=1, keepdim=True)
    filt = torch.einsum("ux,vy->uvxy", basis, basis).reshape(k * k, k, k)[1:]
    if order == "F":
        filt = filt.transpose(-1, -2).contiguous()
    return filt.to(dtype=dtype, device=device)


def _bank(G, B):
    """Filter bank [L, a, b]: filter l is sum_r G[r, l] B[r] (coefficients G [R, L], atoms B)."""
    return torch.einsum("rl,rab->lab", G, B)


def _nonzero(v, e):
    """v with its exact zeros replaced by e (a safe denominator)."""
    return torch.where(v == 0, torch.as_tensor(e, dtype=v.dtype, device=v.device), v)


def _diff_filters(dtype, device):
    """Forward differences along h and along w as 3x3 filters, [2, 3, 3]."""
    f = torch.zeros(2, 3, 3, dtype=dtype, device=device)
    f[0, 1, 1], f[0, 0, 1] = -1.0, 1.0
    f[1, 1, 1], f[1, 1, 0] = -1.0, 1.0
    return f


def _full(v, shape, dtype, device):
    return torch.as_tensor(v, dtype=dtype, device=device).expand(shape).clone()
'''


def literal(x: float) -> str:
    """A Python literal for a number (parenthesised when negative, exact for inf and nan)."""
    if x != x:
        return 'float("nan")'
    if x in (float("inf"), float("-inf")):
        return f'float("{"-" if x < 0 else ""}inf")'
    s = repr(float(x))
    return f"({s})" if x < 0 else s


def _dims(rec: NodeRecord) -> str:
    nd = len(rec.shape)
    return "(" + ", ".join(str(-i) for i in range(nd, 0, -1)) + ",)"


def _groups(rec: NodeRecord) -> str:
    """The axes inside each group of a [G, ...] value: every per-sample axis but the leading one."""
    return "(" + "".join(f"{-i}, " for i in range(len(rec.shape) - 1, 0, -1)) + ")"


def _reduce(method: str, pre: str = "{0}") -> Callable:
    def emit(a, rec, args, ctx):
        nd = len(args[0].shape)
        x = pre.format(*a)
        return x if nd == 0 else f"({x}).{method}(dim={_dims(args[0])})"
    return emit


def _matmul(a, rec, args, ctx):
    ra, rb = args
    if not ra.batched and rb.batched and len(rb.shape) == 1:
        return f"F.linear({a[1]}, {a[0]})"
    if ra.batched and rb.batched is not None and len(rb.shape) == 1:
        return f"torch.matmul({a[0]}, {a[1]}.unsqueeze(-1)).squeeze(-1)"
    return f"torch.matmul({a[0]}, {a[1]})"


def _transpose(a, rec, args, ctx):
    return f"{a[0]}.transpose(-1, -2)" if args[0].batched else f"{a[0]}.T"


def _sqabs(x: str, rec: NodeRecord) -> str:
    return f"{x}.abs() ** 2" if rec.dtype == "complex" else f"{x} * {x}"


def _dtype(rec: NodeRecord, ctx: dict) -> str:
    """The dtype expression of a value of rec's dtype (ctx['dtype'] is the real one)."""
    return ctx["dtype"] if rec.dtype == "real" else f"_complex_of({ctx['dtype']})"


def _shape(shape: tuple) -> str:
    return "(" + "".join(f"{d}, " for d in shape) + ")"


def _expand(a, rec, args, ctx):
    if rec.batched:  # a per-sample value broadcast along new leading axes
        src = args[0]
        lead = ", ".join(["-1"] + ["1"] * (len(rec.shape) - len(src.shape)) + [str(d) for d in src.shape])
        return f"{a[0]}.reshape({lead}).expand(-1, *{_shape(rec.shape)})"
    return f"_full({a[0]}, {_shape(rec.shape)}, {ctx['dtype']}, {ctx['device']})"


def _linop_apply(a, rec, args, ctx):
    f = f"self._linop_{_NS.safe(rec.attrs[0])}[{int(rec.attrs[1])}]"
    return f"{f}({a[0]})" if args[0].batched else f"{f}({a[0]}[None])[0]"


def _block(a, rec, args, ctx):
    name, layer = rec.attrs
    where = f"self.{attr_name(name)}" if layer is None else f"self.layers[{layer}].{attr_name(name)}"
    return f"{where}({a[0]})" if rec.op == "block" else f"_block_adjoint({where}, {a[0]})"


TORCH_OPS: dict[str, Callable[[list[str], NodeRecord, list[NodeRecord], dict], str]] = {
    "add": lambda a, r, s, c: f"{a[0]} + {a[1]}",
    "sub": lambda a, r, s, c: f"{a[0]} - {a[1]}",
    "mul": lambda a, r, s, c: f"{a[0]} * {a[1]}",
    "div": lambda a, r, s, c: f"{a[0]} / {a[1]}",
    "pow": lambda a, r, s, c: f"{a[0]} ** {a[1]}",
    "neg": lambda a, r, s, c: f"-{a[0]}",
    "matmul": _matmul,
    "transpose": _transpose,
    "soft": lambda a, r, s, c: f"soft({a[0]}, {a[1]})",
    "hard": lambda a, r, s, c: f"hard({a[0]}, {a[1]})",
    "hard_ste": lambda a, r, s, c: f"hard_ste({a[0]}, {a[1]})",
    "soft_ss": lambda a, r, s, c: f"_soft_ss({a[0]}, {a[1]}, {a[2]}, {len(r.shape)})",
    "quantile": lambda a, r, s, c: f"_quantile({a[0]}, {a[1]}, {len(s[0].shape)})",
    "linop_apply": _linop_apply,
    "linop_norm": lambda a, r, s, c: (f"_linop_norm(self._linop_{_NS.safe(r.attrs[0])}, "
                                      f"{_shape(r.attrs[1])}, {c['dtype']}, {c['device']})"),
    "hard_smooth": lambda a, r, s, c: f"hard_smooth({a[0]}, {a[1]}, {a[2]})",
    "relu": lambda a, r, s, c: f"torch.relu({a[0]})",
    "abs": lambda a, r, s, c: f"torch.abs({a[0]})",
    "sign": lambda a, r, s, c: f"torch.sign({a[0]})",
    "softplus": lambda a, r, s, c: f"F.softplus({a[0]})",
    "sigmoid": lambda a, r, s, c: f"torch.sigmoid({a[0]})",
    "tanh": lambda a, r, s, c: f"torch.tanh({a[0]})",
    "sqrt": lambda a, r, s, c: f"torch.sqrt({a[0]})",
    "exp": lambda a, r, s, c: f"torch.exp({a[0]})",
    "log": lambda a, r, s, c: f"torch.log({a[0]})",
    "clamp": lambda a, r, s, c: f"_clamp({a[0]}, {a[1]}, {a[2]})",
    "maximum": lambda a, r, s, c: f"_maximum({a[0]}, {a[1]})",
    "minimum": lambda a, r, s, c: f"_minimum({a[0]}, {a[1]})",
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "norm1": _reduce("sum", "{0}.abs()"),
    "sqnorm": lambda a, r, s, c: _reduce("sum", _sqabs("{0}", s[0]))(a, r, s, c),
    "norm2": lambda a, r, s, c: (f"torch.linalg.vector_norm({a[0]}, dim={_dims(s[0])})"
                              if s[0].shape else f"{a[0]}.abs()"),
    "norm0": _reduce("sum", "({0} != 0).to({0}.real.dtype)"),
    "norminf": _reduce("amax", "{0}.abs()"),
    "norm21": lambda a, r, s, c: f"torch.linalg.vector_norm({a[0]}, dim={_groups(s[0])}).sum(dim=-1)",
    "gnorm": lambda a, r, s, c: f"torch.linalg.vector_norm({a[0]}, dim={_groups(s[0])}, keepdim=True)",
    "opnorm": lambda a, r, s, c: f"torch.linalg.matrix_norm({a[0]}, ord=2)",
    "pinv": lambda a, r, s, c: f"torch.linalg.pinv({a[0]})",
    "inv": lambda a, r, s, c: f"torch.linalg.inv({a[0]})",
    "diag": lambda a, r, s, c: (f"torch.diag_embed({a[0]})" if len(s[0].shape) == 1 else
                                f"torch.diagonal({a[0]}, dim1=-2, dim2=-1)"),
    "reshape": lambda a, r, s, c: (f"{a[0]}.reshape({a[0]}.shape[0], {', '.join(map(str, r.shape))})"
                                if r.batched else f"{a[0]}.reshape({tuple(r.shape)!r})"),
    "batch_mean": lambda a, r, s, c: f"{a[0]}.mean()",
    # constructors (attributes, no arguments) and the values the graph itself builds
    "zeros": lambda a, r, s, c: f"torch.zeros({_shape(r.shape)}, dtype={_dtype(r, c)}, device={c['device']})",
    "ones": lambda a, r, s, c: f"torch.ones({_shape(r.shape)}, dtype={c['dtype']}, device={c['device']})",
    "identity": lambda a, r, s, c: f"torch.eye({r.shape[0]}, dtype={c['dtype']}, device={c['device']})",
    "grid": lambda a, r, s, c: (f"torch.linspace({literal(r.attrs[1])}, {literal(r.attrs[2])}, "
                                f"{r.attrs[0]}, dtype={_dtype(r, c)}, device={c['device']})"),
    "dct_filters": lambda a, r, s, c: (f"_dct_filters({r.attrs[0]}, {_dtype(r, c)}, {c['device']}"
                                       + (f", {r.attrs[1]!r}" if r.attrs[1:] == ("F",) else "") + ")"),
    "diff_filters": lambda a, r, s, c: f"_diff_filters({_dtype(r, c)}, {c['device']})",
    "expand": _expand,
    "block": _block,
    "block_t": _block,
    "fft2": lambda a, r, s, c: f'torch.fft.fft2({a[0]}, norm="ortho")',
    "ifft2": lambda a, r, s, c: f'torch.fft.ifft2({a[0]}, norm="ortho")',
    "real": lambda a, r, s, c: f"{a[0]}.real" if s[0].dtype == "complex" else a[0],
    "imag": lambda a, r, s, c: f"{a[0]}.imag" if s[0].dtype == "complex" else f"torch.zeros_like({a[0]})",
    "conj": lambda a, r, s, c: f"torch.conj({a[0]})" if s[0].dtype == "complex" else a[0],
    "complex": lambda a, r, s, c: f"_complex({a[0]}, {a[1]})",
    "cconv": lambda a, r, s, c: f"_cconv({a[0]}, {a[1]})",
    "cconv_t": lambda a, r, s, c: f"_cconv_t({a[0]}, {a[1]})",
    "otf": lambda a, r, s, c: f"_otf({a[0]}, {r.shape[-2]}, {r.shape[-1]})",
    "sum_l": lambda a, r, s, c: f"{a[0]}.sum(dim={-len(s[0].shape)})",
    "bank": lambda a, r, s, c: f"_bank({a[0]}, {a[1]})",
    "nonzero": lambda a, r, s, c: f"_nonzero({a[0]}, {a[1]})",
    "plf": lambda a, r, s, c: f"plf({a[0]}, {a[1]}, {a[2]}, {a[3]}, {-len(s[0].shape)})",
    "mse": lambda a, r, s, c: (f"torch.mean(torch.abs({a[0]} - {a[1]}) ** 2)" if r.dtype == "complex"
                            else f"torch.mean(({a[0]} - {a[1]}) ** 2)"),
    "nmse": lambda a, r, s, c: (f"torch.sum(torch.abs({a[0]} - {a[1]}) ** 2) / "
                             f"torch.sum(torch.abs({a[1]}) ** 2)" if "complex" in (s[0].dtype, s[1].dtype)
                             else f"torch.sum(({a[0]} - {a[1]}) ** 2) / torch.sum({a[1]} ** 2)"),
}


# ---- ops built by the derivation (prox table, argmin) and indicator cost terms ----
HELPERS += '''

def _indicator(ok, nd):
    """0 where every entry of a sample satisfies the constraint, +inf elsewhere."""
    if nd:
        ok = ok.flatten(-nd).all(-1)
    return torch.where(ok, 0.0, float("inf"))


def _solve(H, b):
    """H^-1 b for a fixed square H and a (batch of) vector(s) b. A batch is solved as one matrix of
    right-hand sides, so the backward builds an [n, n] gradient for H, never [batch, n, n]."""
    if H.dim() == 2 and b.dim() == 2:
        return torch.linalg.solve(H, b.transpose(0, 1)).transpose(0, 1)
    return torch.linalg.solve(H, b.unsqueeze(-1)).squeeze(-1)
'''


def _vdot(a, rec, args, ctx):
    nd = len(args[0].shape)
    x = f"torch.conj({a[0]}) * {a[1]}" if rec.dtype == "complex" else f"{a[0]} * {a[1]}"
    return f"({x}).sum(dim={_dims(args[0])}, keepdim=True)" if nd else f"({x})"


def _index_text(rec, batched: bool) -> str:
    """A Python index tuple for a range node's items (from validated ints only)."""
    items = [str(it[1]) if it[0] == "at" else f"slice({it[1]}, {it[2]})" for it in rec.attrs[0]]
    return "(" + "".join(f"{i}, " for i in (["slice(None)"] if batched else []) + items) + ")"


def _embed(a, rec, args, ctx):
    """Zeros of the node's dtype (also when the cotangent is a number) with a[0] at the range."""
    shape = "".join(f"{d}, " for d in rec.shape)
    full = f"({a[0]}.shape[0], {shape})" if rec.batched else f"({shape})"
    return f"_embed({a[0]}, {full}, {_index_text(rec, rec.batched)}, {_dtype(rec, ctx)}, {ctx['device']})"


def _slice(a, rec, args, ctx):
    items = [str(it[1]) if it[0] == "at" else f"{it[1]}:{it[2]}" for it in rec.attrs[0]]
    return f"{a[0]}[{', '.join(([':'] if args[0].batched else []) + items)}]"


def _axis_from_end(rec, axis: int) -> int:
    return axis - len(rec.shape)


def _along(method: str) -> Callable:
    """A reduction along the node's axis (attrs[0]; None: every per-sample entry)."""
    def emit(a, rec, args, ctx):
        nd, axis = len(args[0].shape), rec.attrs[0]
        if nd == 0:
            return a[0]
        dims = _dims(args[0]) if axis is None else str(axis - nd)
        return f"{method.format(a[0])}, dim={dims})"
    return emit


HELPERS += '''

def _spread(x, dim, size):
    """x repeated `size` times along a new axis `dim` (counted from the end): a sum's adjoint."""
    x = x.unsqueeze(dim)
    shape = list(x.shape)
    shape[dim] = size
    return x.expand(shape)
'''


TORCH_OPS.update({
    "cat": lambda a, r, s, c: (f"_join([{', '.join(a)}], {tuple(x.batched for x in s)!r}, "
                            f"{r.attrs[0]}, False)"),
    "stack": lambda a, r, s, c: (f"_join([{', '.join(a)}], {tuple(x.batched for x in s)!r}, "
                              f"{r.attrs[0]}, True)"),
    "slice": _slice,
    "embed": _embed,
    "diff": lambda a, r, s, c: f"_diff({a[0]}, {_axis_from_end(r, r.attrs[0])})",
    "sum_axis": _along("torch.sum({0}"),
    "mean_axis": _along("torch.mean({0}"),
    "logsumexp": _along("torch.logsumexp({0}"),
    "amax": _along("torch.amax({0}"),
    "spread": lambda a, r, s, c: f"_spread({a[0]}, {_axis_from_end(r, r.attrs[0])}, {r.shape[r.attrs[0]]})",
    "diff_t": lambda a, r, s, c: f"_diff_t({a[0]}, {_axis_from_end(r, r.attrs[0])})",
    "nonneg": lambda a, r, s, c: f"_indicator({a[0]} >= 0, {len(s[0].shape)})",
    "ball": lambda a, r, s, c: (f"_indicator(torch.linalg.vector_norm({a[0]}, dim={_dims(s[0])}) <= "
                             f"{a[1]}, 0)" if s[0].shape else f"_indicator({a[0]}.abs() <= {a[1]}, 0)"),
    "box": lambda a, r, s, c: (f"_indicator(({a[0]} >= {a[1]}) & ({a[0]} <= {a[2]}), "
                            f"{len(s[0].shape)})"),
    "solve": lambda a, r, s, c: (f"_solve({a[0]}, {a[1]})" if len(s[1].shape) == 1
                              else f"torch.linalg.solve({a[0]}, {a[1]})"),
    "vdot": _vdot,
})


HELPERS += '''

def _linop(op, name):
    """(forward, adjoint) of a matrix-free operator: an object with A(x) and A_adjoint(y) (the
    deepinv Physics convention) or a pair of callables; both take and return batched tensors."""
    if hasattr(op, "A") and hasattr(op, "A_adjoint"):
        return (op.A, op.A_adjoint)
    if isinstance(op, (tuple, list)) and len(op) == 2 and all(callable(f) for f in op):
        return (op[0], op[1])
    raise TypeError(f"operator {name} is matrix-free: give an object with A(x) and A_adjoint(y) "
                    "or a pair (forward, adjoint)")


def _linop_norm(op, shape, dtype, device, iters=1000):
    """Spectral norm of a matrix-free operator: power iteration on A'A from a fixed random start."""
    dtype = dtype or torch.get_default_dtype()
    tol = 4 * torch.finfo(dtype).eps
    x = torch.randn((1,) + tuple(shape), generator=torch.Generator().manual_seed(0), dtype=dtype)
    x = x.to(device)
    x = x / x.norm()
    lam = torch.zeros((), dtype=dtype, device=x.device)
    with torch.no_grad():
        for _ in range(iters):
            y = op[1](op[0](x))
            new = y.norm()
            if new == 0:
                return new
            x = y / new
            done = bool(abs(new - lam) <= tol * new)
            lam = new
            if done:
                break
    return torch.sqrt(lam)
'''
