"""The float64 NumPy oracle: evaluates an unfolded graph node by node.

It shares nothing with the torch backend but the graph, so tests comparing the two check the
lowering tables against each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..compiler.constraints import CONSTRAINTS
from ..compiler.graph import Graph, NodeRecord
from ..compiler.unfold import Network, default_graph
from .walk import walk

__all__ = ["evaluate", "NUMPY_OPS", "initial_parameters", "constrained", "project",
           "operator_defaults"]


def _axes(rec: NodeRecord) -> tuple[int, ...]:
    return tuple(range(-len(rec.shape), 0))


def _reduce(fn: Callable) -> Callable:
    return lambda a, r, s, c: fn(a[0], _axes(s[0])) if s[0].shape else fn(a[0], ())


def _along(fn: Callable) -> Callable:
    """A reduction along the node's axis (attrs[0]; None: every per-sample entry)."""
    def run(a, r, s, c):
        nd, axis = len(s[0].shape), r.attrs[0]
        return fn(a[0], _axes(s[0]) if axis is None else axis - nd) if nd else a[0]
    return run


def _logsumexp(x: np.ndarray, axis) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def _spread(a, r, s, c):
    d = r.attrs[0] - len(r.shape)
    return np.repeat(np.expand_dims(a[0], d), r.shape[r.attrs[0]], axis=d)


def _matmul(a, r, s, c):
    x, y = a
    if s[1].batched and len(s[1].shape) == 1:
        return np.einsum("...ij,...j->...i", x, y)
    return np.matmul(x, y)


def _quantile(v: np.ndarray, q, nd: int, method: str = "linear") -> np.ndarray:
    """The q-quantile over the last nd axes (one sample's entries)."""
    return np.quantile(np.reshape(v, v.shape[:v.ndim - nd] + (-1,)), q, axis=-1, method=method)


def _soft_ss(v: np.ndarray, t, p, nd: int) -> np.ndarray:
    """Support selection: |v| above t and above its nearest-rank (1 - p)-quantile pass; the rest
    are soft-thresholded."""
    a = np.abs(v)
    top = _quantile(a, 1.0 - p, nd, "nearest")
    keep = (a > t) & (a > np.reshape(top, np.shape(top) + (1,) * nd))
    return np.where(keep, v, np.sign(v) * np.maximum(a - t, 0.0))


def _group_norms(x: np.ndarray, rec: NodeRecord, keep: bool) -> np.ndarray:
    """The Euclidean norm of each group x[i] of a [G, ...] value (its trailing axes)."""
    axes = tuple(range(-(len(rec.shape) - 1), 0))
    return np.sqrt(np.sum(np.abs(x) ** 2, axis=axes, keepdims=keep))


def _softplus(x):
    return np.logaddexp(0.0, x)


NUMPY_OPS: dict[str, Callable] = {
    "add": lambda a, r, s, c: a[0] + a[1],
    "sub": lambda a, r, s, c: a[0] - a[1],
    "mul": lambda a, r, s, c: a[0] * a[1],
    "div": lambda a, r, s, c: a[0] / a[1],
    "pow": lambda a, r, s, c: np.power(a[0], a[1]),
    "neg": lambda a, r, s, c: -a[0],
    "matmul": _matmul,
    "transpose": lambda a, r, s, c: np.swapaxes(a[0], -1, -2),
    "soft": lambda a, r, s, c: np.sign(a[0]) * np.maximum(np.abs(a[0]) - a[1], 0.0),
    "hard": lambda a, r, s, c: np.where(np.abs(a[0]) > a[1], a[0], 0.0),
    "hard_ste": lambda a, r, s, c: np.where(np.abs(a[0]) > a[1], a[0], 0.0),
    "soft_ss": lambda a, r, s, c: _soft_ss(a[0], a[1], a[2], len(r.shape)),
    "quantile": lambda a, r, s, c: _quantile(a[0], a[1], len(s[0].shape)),
    "hard_smooth": lambda a, r, s, c: a[0] / (1.0 + np.exp(-(np.abs(a[0]) - a[1]) / a[2])),
    "relu": lambda a, r, s, c: np.maximum(a[0], 0.0),
    "abs": lambda a, r, s, c: np.abs(a[0]),
    "sign": lambda a, r, s, c: np.sign(a[0]),
    "softplus": lambda a, r, s, c: _softplus(a[0]),
    "sigmoid": lambda a, r, s, c: 1.0 / (1.0 + np.exp(-a[0])),
    "tanh": lambda a, r, s, c: np.tanh(a[0]),
    "sqrt": lambda a, r, s, c: np.sqrt(a[0]),
    "exp": lambda a, r, s, c: np.exp(a[0]),
    "log": lambda a, r, s, c: np.log(a[0]),
    "clamp": lambda a, r, s, c: np.minimum(np.maximum(a[0], a[1]), a[2]),
    "maximum": lambda a, r, s, c: np.maximum(a[0], a[1]),
    "minimum": lambda a, r, s, c: np.minimum(a[0], a[1]),
    "sum": _reduce(lambda x, ax: np.sum(x, axis=ax)),
    "norm21": lambda a, r, s, c: np.sum(_group_norms(a[0], s[0], False), axis=-1),
    "gnorm": lambda a, r, s, c: _group_norms(a[0], s[0], True),
    "mean": _reduce(lambda x, ax: np.mean(x, axis=ax)),
    "sum_axis": _along(lambda x, ax: np.sum(x, axis=ax)),
    "mean_axis": _along(lambda x, ax: np.mean(x, axis=ax)),
    "logsumexp": _along(_logsumexp),
    "amax": _along(lambda x, ax: np.max(x, axis=ax)),
    "spread": _spread,
    "norm1": _reduce(lambda x, ax: np.sum(np.abs(x), axis=ax)),
    "norm2": _reduce(lambda x, ax: np.sqrt(np.sum(np.abs(x) ** 2, axis=ax))),
    "sqnorm": _reduce(lambda x, ax: np.sum(np.abs(x) ** 2, axis=ax)),
    "norm0": _reduce(lambda x, ax: np.sum(x != 0, axis=ax).astype(float)),
    "norminf": _reduce(lambda x, ax: np.max(np.abs(x), axis=ax)),
    "opnorm": lambda a, r, s, c: np.linalg.norm(a[0], 2),
    "pinv": lambda a, r, s, c: np.linalg.pinv(a[0]),
    "inv": lambda a, r, s, c: np.linalg.inv(a[0]),
    "diag": lambda a, r, s, c: (a[0][..., None] * np.eye(s[0].shape[0]) if len(s[0].shape) == 1
                                else np.diagonal(a[0], axis1=-2, axis2=-1)),
    "mse": lambda a, r, s, c: np.mean(np.abs(a[0] - a[1]) ** 2),
    "nmse": lambda a, r, s, c: np.sum(np.abs(a[0] - a[1]) ** 2) / np.sum(np.abs(a[1]) ** 2),
}

def _conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Cross-correlation with zero padding k//2 (as torch's Conv2d), x [B, C, H, W]."""
    k = w.shape[-1]
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    H, W = x.shape[-2:]
    out = np.zeros((x.shape[0], w.shape[0], H, W))
    for i in range(k):
        for j in range(k):
            out += np.einsum("bchw,oc->bohw", xp[:, :, i:i + H, j:j + W], w[:, :, i, j])
    return out if b is None else out + b[None, :, None, None]


_ACT = {"relu": lambda v: np.maximum(v, 0.0), "tanh": np.tanh,
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "softplus": lambda v: np.logaddexp(0.0, v)}


def _block(layers, x: np.ndarray, params: Mapping[str, np.ndarray], key: str,
           residual: bool = False) -> np.ndarray:
    x0 = x
    for i, d in enumerate(layers):
        if d.kind in _ACT:
            x = _ACT[d.kind](x)
            continue
        w = np.asarray(params[f"{key}.{i}.weight"], dtype=np.float64)
        b = np.asarray(params[f"{key}.{i}.bias"], dtype=np.float64) if d.bias else None
        x = _conv2d(x, w, b) if d.kind == "conv" else x @ w.T + (0 if b is None else b)
    return x0 + x if residual else x


def _block_adjoint(layers, y: np.ndarray, params: Mapping[str, np.ndarray], key: str,
                   residual: bool = False) -> np.ndarray:
    """B'(y) of a linear block: a same-padded correlation's adjoint is the correlation with the
    kernel flipped and its channels swapped; a linear layer's is its transpose."""
    x = y
    for i in reversed(range(len(layers))):
        w = np.asarray(params[f"{key}.{i}.weight"], dtype=np.float64)
        x = (_conv2d(x, np.swapaxes(w, 0, 1)[..., ::-1, ::-1], None) if layers[i].kind == "conv"
             else x @ w)
    return y + x if residual else x


def _otf(H: np.ndarray, h: int, w: int) -> np.ndarray:
    a, b = H.shape[-2:]
    pad = np.zeros(H.shape[:-2] + (h, w))
    pad[..., :a, :b] = H
    return np.fft.fft2(np.roll(pad, (-(a // 2), -(b // 2)), axis=(-2, -1)))


def _plf(v, q, lo, hi, axis):
    n = q.shape[-1]
    vc = np.clip(v, lo, hi)  # slope 1 beyond the ends, as ADMM-Net's S_PLF
    t = (vc - lo) / ((hi - lo) / (n - 1))
    i = np.clip(np.floor(t), 0, n - 2).astype(int)
    shape = [1] * v.ndim
    shape[axis] = q.shape[0]
    off = (np.arange(q.shape[0]) * n).reshape(shape)
    flat = q.reshape(-1)
    left, right = flat[i + off], flat[i + 1 + off]
    return left + (t - i) * (right - left) + (v - vc)


def _dct_filters(k: int, order: str = "C") -> np.ndarray:
    n = np.arange(k)
    basis = np.stack([np.cos(np.pi * (2 * n + 1) * u / (2 * k)) for u in range(k)])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    filt = np.einsum("ux,vy->uvxy", basis, basis).reshape(k * k, k, k)[1:]
    return np.swapaxes(filt, -1, -2).copy() if order == "F" else filt


def _diff_filters() -> np.ndarray:
    f = np.zeros((2, 3, 3))
    f[0, 1, 1], f[0, 0, 1], f[1, 1, 1], f[1, 1, 0] = -1.0, 1.0, -1.0, 1.0
    return f


NUMPY_OPS.update({
    "fft2": lambda a, r, s, c: np.fft.fft2(a[0], norm="ortho"),
    "ifft2": lambda a, r, s, c: np.fft.ifft2(a[0], norm="ortho"),
    "real": lambda a, r, s, c: np.real(a[0]),
    "imag": lambda a, r, s, c: np.imag(a[0]),
    "conj": lambda a, r, s, c: np.conj(a[0]),
    "complex": lambda a, r, s, c: a[0] + 1j * a[1],
    "cconv": lambda a, r, s, c: np.real(np.fft.ifft2(
        _otf(a[0], *a[1].shape[-2:]) * np.expand_dims(np.fft.fft2(a[1]), -3))),
    "cconv_t": lambda a, r, s, c: np.real(np.fft.ifft2(
        np.conj(_otf(a[0], *a[1].shape[-2:])) * np.fft.fft2(a[1]))).sum(axis=-3),
    "otf": lambda a, r, s, c: _otf(a[0], *r.shape[-2:]),
    "sum_l": lambda a, r, s, c: np.sum(a[0], axis=-len(s[0].shape)),
    "bank": lambda a, r, s, c: np.einsum("rl,rab->lab", a[0], a[1]),
    "nonzero": lambda a, r, s, c: np.where(a[0] == 0, a[1], a[0]),
    "plf": lambda a, r, s, c: _plf(a[0], a[1], a[2], a[3], -len(s[0].shape)),
})

def _arr(v) -> np.ndarray:
    """float64, or complex128 for complex data."""
    a = np.asarray(v)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def _expand(a, r, s, c):
    """A value broadcast to the node's shape (a per-sample value along new leading axes)."""
    v, src = a[0], s[0].shape
    if not r.batched:
        return np.broadcast_to(v, r.shape).copy()
    lead = (-1,) + (1,) * (len(r.shape) - len(src)) + tuple(src)
    return np.broadcast_to(np.reshape(v, lead), (v.shape[0],) + tuple(r.shape))


def _block_call(a, r, s, c):
    name, layer = r.attrs
    key = name if layer is None else f"{name}_{layer}"
    fn = _block if r.op == "block" else _block_adjoint
    return fn(c.blocks[name], a[0], c.params, key, c.residual[name])


NUMPY_OPS.update({
    "zeros": lambda a, r, s, c: np.zeros(r.shape, dtype=complex if r.dtype == "complex" else float),
    "ones": lambda a, r, s, c: np.ones(r.shape),
    "identity": lambda a, r, s, c: np.eye(r.shape[0]),
    "grid": lambda a, r, s, c: np.linspace(r.attrs[1], r.attrs[2], r.attrs[0]),
    "dct_filters": lambda a, r, s, c: _dct_filters(*r.attrs),
    "diff_filters": lambda a, r, s, c: _diff_filters(),
    "expand": _expand,
    "block": _block_call,
    "block_t": _block_call,
    "reshape": lambda a, r, s, c: a[0].reshape((a[0].shape[0],) + tuple(r.shape) if r.batched else r.shape),
    "batch_mean": lambda a, r, s, c: np.mean(a[0]),
})

_USE = {"project": lambda v, c: np.clip(v, c.lo, c.hi), "softplus": lambda v, c: _softplus(v),
        "sigmoid": lambda v, c: 1 / (1 + np.exp(-v))}


def constrained(constraint: str | None, stored: np.ndarray) -> np.ndarray:
    """The value a learnable takes in the network from its stored value (the oracle of the
    torch module's constraint forward): projected ones are clipped, the others reparametrised."""
    if constraint is None:
        return np.asarray(stored, dtype=np.float64)
    c = CONSTRAINTS[constraint]
    return _USE[c.method](np.asarray(stored, dtype=np.float64), c)


def project(constraint: str | None, stored: np.ndarray) -> np.ndarray:
    """What `project_()` leaves of a stored value: clipped into the set for projected constraints."""
    c = CONSTRAINTS.get(constraint) if constraint else None
    stored = np.asarray(stored, dtype=np.float64)
    return np.clip(stored, c.lo, c.hi) if c is not None and c.method == "project" else stored


def _lift(v: np.ndarray, rec: NodeRecord, nd: int) -> np.ndarray:
    """A batched operand with fewer per-sample dims than the result keeps its batch dim in front."""
    if not rec.batched or len(rec.shape) >= nd:
        return v
    return np.reshape(v, (v.shape[0],) + (1,) * (nd - len(rec.shape)) + tuple(rec.shape))


@dataclass(frozen=True)
class _Blocks:
    """What the `block` entry reads: block layers, their weights by '<block>[_<k>].<i>.<name>', and
    whether each block is residual."""

    blocks: Mapping
    params: Mapping
    residual: Mapping


class _Eval:
    """The NumPy side of the shared walk (backends/walk.py): values are float64 arrays; leaves not
    given in the environment are not used by this evaluation."""

    table = NUMPY_OPS

    def __init__(self, ctx: _Blocks | None = None):
        self.ctx = ctx

    def number(self, rec: NodeRecord) -> np.float64:
        return np.float64(rec.attrs[0])

    def leaf(self, node: str, rec: NodeRecord) -> None:
        return None

    def lift(self, v: np.ndarray, rec: NodeRecord, nd: int) -> np.ndarray:
        return _lift(v, rec, nd)

    def emit(self, i: int, node: str, rec: NodeRecord, value):
        return value


def _run(g: Graph, env: dict[str, np.ndarray], ctx: _Blocks | None = None) -> dict[str, np.ndarray]:
    """Evaluate every node of `g` not in `env` (its leaves are given there)."""
    return walk(g, g, env, _Eval(ctx))


# ---- matrix-free operators: the given callables, called on float64 tensors (or arrays) ----
_LINOPS: dict[str, object] = {}  # name -> the object given to evaluate (set per call)


def _is_linop(u: Network, name: str) -> bool:
    t = u.program.operators.get(name)
    return t is not None and t.in_shape is not None


def _linop_call(name: str, adjoint: bool, x: np.ndarray) -> np.ndarray:
    """Apply operator `name` (or its adjoint) to a batch x [B, ...] in float64."""
    import torch
    op = _LINOPS[name]
    pair = (op.A, op.A_adjoint) if hasattr(op, "A") and hasattr(op, "A_adjoint") else tuple(op)
    f = pair[1 if adjoint else 0]
    try:
        out = f(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)))
    except TypeError:  # a pair of NumPy callables
        out = f(np.asarray(x, dtype=np.float64))
    out = out.detach().cpu().numpy() if torch.is_tensor(out) else np.asarray(out)
    return out.astype(np.float64)


def _linop_apply(a, r, s, c):
    x = a[0]
    return _linop_call(r.attrs[0], r.attrs[1], x if s[0].batched else x[None])[
        slice(None) if s[0].batched else 0]


def _linop_norm(a, r, s, c, iters: int = 1000) -> np.float64:
    """Power iteration on A'A from the same fixed start as the torch backend."""
    import torch
    name, shape = r.attrs
    x = torch.randn((1,) + tuple(shape), generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64).numpy()
    x, lam = x / np.linalg.norm(x), 0.0
    for _ in range(iters):
        y = _linop_call(name, True, _linop_call(name, False, x))
        new = float(np.linalg.norm(y))
        if new == 0:
            return np.float64(0.0)
        x, done, lam = y / new, abs(new - lam) <= 4 * np.finfo(float).eps * new, new
        if done:
            break
    return np.float64(np.sqrt(lam))


NUMPY_OPS.update({"linop_apply": _linop_apply, "linop_norm": _linop_norm})


def operator_defaults(program, dims: Mapping[str, int], given: Mapping[str, object]
                      ) -> dict[str, np.ndarray]:
    """The values (float64) of the operators with a default (`operator W : [n, m] = expr`) that
    are not in `given`, computed from the given ones."""
    missing = [n for n in program.defaulted if n not in given]
    if not missing:
        return {}
    g, nodes = default_graph(program, dict(dims), missing)
    env = {n: _arr(_host(given[g[n].attrs[0]])) for n in g if g[n].op == "operator"}
    env = _run(g, env)
    return {name: np.asarray(env[node]) for name, node in nodes.items()}


def _host(v):
    """A torch tensor as a NumPy array (detached, on the CPU); anything else as it is."""
    return v.detach().cpu().numpy() if hasattr(v, "detach") else v


def initial_parameters(u: Network, operators: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every learnable's initial value (constraints applied), keyed by forward-graph node."""
    b = u.build
    _LINOPS.update({k: v for k, v in operators.items() if _is_linop(u, k)})
    env = {n: _arr(operators[b[n].attrs[0]])
           for n in b if b[n].op == "operator"}
    env = _run(b, env)
    return {node: np.broadcast_to(env[u.inits[info.name]], info.shape).astype(np.float64)
            for node, info in u.params.items()}  # blocks are random: pass their weights


def evaluate(u: Network, operators: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray],
             params: Mapping[str, np.ndarray] | None = None, targets: Mapping | None = None) -> dict:
    """Run the network in float64: returns {'output', 'layers', 'states', 'loss'}.

    `params` maps forward-graph parameter nodes to values as used (constraints applied); by
    default they are computed from the spec's initial values.
    """
    operators = {**operators, **operator_defaults(u.program, u.dims, operators)}
    _LINOPS.update({k: v for k, v in operators.items() if _is_linop(u, k)})
    ops = {k: v if _is_linop(u, k) else _arr(v) for k, v in operators.items()}
    b = _run(u.build, {n: ops[u.build[n].attrs[0]] for n in u.build if u.build[n].op == "operator"})
    if params is None and u.program.blocks:
        raise ValueError("the spec has learnable blocks, whose weights are random: pass "
                         "params=model.parameter_values()")
    params = dict(initial_parameters(u, ops) if params is None else params)
    g = u.graph
    env: dict[str, np.ndarray] = {}
    for n in g:
        rec = g[n]
        if rec.op == "input":
            env[n] = _sample(inputs, rec)
        elif rec.op == "target":  # read by an aux term: NaN (aux unknown) without targets
            env[n] = np.full(rec.shape, np.nan) if targets is None else _sample(targets, rec)
        elif rec.op == "operator":
            env[n] = ops[rec.attrs[0]]
        elif rec.op == "const":
            env[n] = b[u.consts[rec.attrs[0]]]
        elif rec.op == "param":
            env[n] = np.asarray(params[n], dtype=np.float64)
    env = _run(g, env, _Blocks(u.blocks, params, {n: b.residual for n, b in u.program.blocks.items()}))
    first = u.program.outputs[0]
    out = {"output": env[u.state_nodes[u.K][first]],
           "layers": [env[u.state_nodes[k][first]] for k in range(1, u.K + 1)],
           "states": {s: env[u.state_nodes[u.K][s]] for s in u.program.states}}
    if u.objective_graph is not None:
        og, first = u.objective_graph, u.program.outputs[0]
        values = []
        for k in range(1, u.K + 1):
            oenv = {}
            for n in og:
                rec = og[n]
                if rec.op == "state":
                    oenv[n] = env[u.state_nodes[k][first]]
                elif rec.op == "param" and rec.attrs[1:] == ("k",):
                    oenv[n] = env[_layer_param(u, rec.attrs[0], k - 1)]
                elif rec.op in ("input", "operator", "const", "param") and n in env:
                    oenv[n] = env[n]
            values.append(_run(og, oenv)[u.objective_node])
        out["objective"] = np.array(values)
    if u.loss_graph is not None and targets is not None:
        lg, lenv = u.loss_graph, {}
        for n in lg:
            rec = lg[n]
            if rec.op == "state" and len(rec.attrs) > 1:  # the state after layer k
                lenv[n] = env[u.state_nodes[rec.attrs[1]][rec.attrs[0]]]
            elif rec.op == "state":
                lenv[n] = out["states"][rec.attrs[0]]
            elif rec.op == "target":
                lenv[n] = np.asarray(targets[rec.attrs[0]], dtype=np.float64)
            elif rec.op == "param" and rec.attrs[1:] == ("k",):
                lenv[n] = env[_layer_param(u, rec.attrs[0], u.K - 1)]
            elif rec.op in ("input", "operator", "const", "param") and n in env:
                lenv[n] = env[n]
        out["loss"] = _run(lg, lenv)[u.loss_node]
    return out


def _sample(values: Mapping, rec: NodeRecord) -> np.ndarray:
    """An input's or target's batch as float64 (complex128 for a complex one)."""
    return np.asarray(values[rec.attrs[0]], dtype=np.complex128 if rec.dtype == "complex" else np.float64)


def _layer_param(u: Network, name: str, k: int) -> str:
    """The forward-graph node of layer k's copy of the per-layer learnable `name` (its last copy
    when a `finally` layer k does not use it)."""
    k = min(k, u.copies.get(name, u.K) - 1)
    return next(n for n, i in u.params.items() if i.name == name and i.layer == k)


# ---- ops built by the derivation (prox table, argmin) and indicator cost terms ----
def _indicator(ok: np.ndarray, nd: int) -> np.ndarray:
    if nd:
        ok = np.all(ok, axis=tuple(range(-nd, 0)))
    return np.where(ok, 0.0, np.inf)


def _solve(a, r, s, c):
    H, b = a
    if len(s[1].shape) == 1:
        return np.linalg.solve(H, b[..., None])[..., 0]
    return np.linalg.solve(H, b)


def _join(a, r, s, stack: bool):
    """cat / stack along a per-sample axis; values without a batch dim are broadcast to it."""
    xs = [np.asarray(x) for x in a]
    axis = r.attrs[0]
    if r.batched:
        n = next(x.shape[0] for x, rec in zip(xs, s) if rec.batched)
        xs = [x if rec.batched else np.broadcast_to(x, (n,) + x.shape) for x, rec in zip(xs, s)]
        axis += 1
    return np.stack(xs, axis) if stack else np.concatenate(xs, axis)


def _embed(a, r, s, c):
    idx = tuple(it[1] if it[0] == "at" else slice(it[1], it[2]) for it in r.attrs[0])
    lead = (a[0].shape[0],) if r.batched else ()
    z = np.zeros(lead + tuple(r.shape), dtype=np.asarray(a[0]).dtype)
    z[((slice(None),) if r.batched else ()) + idx] = a[0]
    return z


def _slice(a, r, s, c):
    idx = tuple(it[1] if it[0] == "at" else slice(it[1], it[2]) for it in r.attrs[0])
    return a[0][((slice(None),) if s[0].batched else ()) + idx]


def _diff(x: np.ndarray, axis: int) -> np.ndarray:
    out = np.zeros_like(x)
    n = x.shape[axis]
    lead = [slice(None)] * x.ndim
    lead[axis] = slice(0, n - 1)
    out[tuple(lead)] = np.diff(x, axis=axis)
    return out


def _diff_t(p: np.ndarray, axis: int) -> np.ndarray:
    n = p.shape[axis]
    q = np.moveaxis(p, axis, -1).copy()
    q[..., n - 1] = 0.0
    out = -q
    out[..., 1:] += q[..., :-1]
    return np.moveaxis(out, -1, axis)


NUMPY_OPS.update({
    "cat": lambda a, r, s, c: _join(a, r, s, False),
    "stack": lambda a, r, s, c: _join(a, r, s, True),
    "slice": _slice,
    "embed": _embed,
    "diff": lambda a, r, s, c: _diff(a[0], r.attrs[0] - len(r.shape)),
    "diff_t": lambda a, r, s, c: _diff_t(a[0], r.attrs[0] - len(r.shape)),
    "nonneg": lambda a, r, s, c: _indicator(a[0] >= 0, len(s[0].shape)),
    "ball": lambda a, r, s, c: _indicator(np.sqrt(np.sum(np.abs(a[0]) ** 2, axis=_axes(s[0]))) <= a[1], 0),
    "box": lambda a, r, s, c: _indicator((a[0] >= a[1]) & (a[0] <= a[2]), len(s[0].shape)),
    "solve": _solve,
    "vdot": lambda a, r, s, c: np.sum(np.conj(a[0]) * a[1], axis=_axes(s[0]), keepdims=True),
})
