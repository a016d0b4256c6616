"""Sparse coding with the compiled zoo FISTA: optimal codes Z* (targets), per-iteration errors against
them, a dictionary learned by alternating FISTA coding with block-coordinate atom updates, the lasso
KKT check, and an on-disk cache keyed by everything a result depends on."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..api import compile as compile_spec, parse
from ..dsl import ast

__all__ = ["with_consts", "fista_model", "solve_codes", "CodeStats", "fista_errors", "kkt_violation",
           "learn_dictionary", "cached", "digest", "half_sq_error"]

_LAYER_BYTES = 256 * 2**20  # memory for one chunk's per-layer outputs when they are kept


def with_consts(spec: str, **values: float):
    """The parsed spec with the named ``const`` declarations replaced by numbers (e.g. ``lam=0.5``)."""
    tree = parse(spec)
    left = dict(values)
    stmts = []
    for s in tree.statements:
        if isinstance(s, ast.Const) and s.name in left:
            s = replace(s, expr=ast.Number(s.expr.span, float(left.pop(s.name))))
        stmts.append(s)
    if left:
        declared = [s.name for s in tree.statements if isinstance(s, ast.Const)]
        raise ValueError(f"{spec}: no const {', '.join(left)} to set (consts: {', '.join(declared) or 'none'})")
    return replace(tree, statements=tuple(stmts))


_MODELS: dict[str, torch.nn.Module] = {}  # the last few compiled FISTAs (targets for train and test share one)
_KEEP = 3


def fista_model(D: np.ndarray, lam: float, K: int, dtype: torch.dtype = torch.float64,
                spec: str = "zoo:fista") -> torch.nn.Module:
    """The zoo FISTA spec with λ = ``lam``, compiled for K iterations on dictionary ``D`` [n, m]
    (compiling is linear in K, so the last few models are kept for later calls with the same inputs)."""
    key = digest(np.asarray(D, dtype=np.float64), float(lam), int(K), str(dtype), spec)
    model = _MODELS.pop(key, None)
    if model is None:
        model = compile_spec(with_consts(spec, lam=lam), K=K, A=D, dtype=dtype).eval()
    _MODELS[key] = model  # most recent last
    while len(_MODELS) > _KEEP:
        del _MODELS[next(iter(_MODELS))]
    return model


@dataclass(frozen=True)
class CodeStats:
    """How converged the codes are: K, the last step's relative change ‖z_K − z_{K−1}‖ / ‖z_K‖ over all
    patches (as one ratio of sums, and the worst patch), the worst KKT violation and the non-zeros."""

    K: int
    rel_change: float
    max_rel_change: float
    kkt: float
    nonzero_fraction: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict for JSON."""
        return dict(self.__dict__)


def _chunks(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


@torch.no_grad()
def solve_codes(D: np.ndarray, X: np.ndarray, lam: float, K: int, dtype: torch.dtype = torch.float64,
                spec: str = "zoo:fista", stats: bool = True) -> tuple[np.ndarray, CodeStats | None]:
    """Z [N, m] = K FISTA iterations (the compiled zoo spec) on each row of X [N, n]; with ``stats`` the
    last two iterates are kept to measure the final relative change (memory-bounded chunks)."""
    model = fista_model(D, lam, K, dtype, spec)
    m = D.shape[1]
    itemsize = torch.empty((), dtype=dtype).element_size()
    chunk = max(8, min(4096, _LAYER_BYTES // max(1, K * m * itemsize))) if stats else 4096
    Y = torch.as_tensor(X, dtype=dtype)
    Z = np.empty((X.shape[0], m))
    num = den = worst = 0.0
    for sl in _chunks(X.shape[0], chunk):
        if stats:
            z, layers = model(y=Y[sl], return_layers=True)
            prev = layers[-2] if len(layers) > 1 else torch.zeros_like(z)
            del layers
            d, r = (z - prev).norm(dim=1), z.norm(dim=1)
            num, den = num + float(d.pow(2).sum()), den + float(r.pow(2).sum())
            worst = max(worst, float((d / r.clamp_min(1e-300)).masked_fill(r == 0, 0).max()))
        else:
            z = model(y=Y[sl])
        Z[sl] = z.double().numpy()
    if not stats:
        return Z, None
    rel = (num / den) ** 0.5 if den > 0 else 0.0
    return Z, CodeStats(K, rel, worst, kkt_violation(D, X, Z, lam), float(np.mean(Z != 0)))


def kkt_violation(D: np.ndarray, X: np.ndarray, Z: np.ndarray, lam: float) -> float:
    """Largest violation of the lasso optimality conditions of ½‖D z − x‖² + λ‖z‖₁ over all rows:
    g = Dᵀ(x − D z) must equal λ·sign(z) where z ≠ 0 and satisfy |g| ≤ λ where z = 0."""
    g = (X - Z @ D.T) @ D
    on = Z != 0
    v = np.where(on, np.abs(g - lam * np.sign(Z)), np.maximum(np.abs(g) - lam, 0.0))
    return float(v.max()) if v.size else 0.0


def half_sq_error(Z: np.ndarray | torch.Tensor, Zstar: np.ndarray | torch.Tensor) -> float:
    """½‖Z* − Z‖² averaged over patches (rows): the paper's error."""
    d = torch.as_tensor(Zstar, dtype=torch.float64) - torch.as_tensor(Z, dtype=torch.float64)
    return float(0.5 * d.pow(2).sum(dim=1).mean())


@torch.no_grad()
def fista_errors(D: np.ndarray, X: np.ndarray, Zstar: np.ndarray, lam: float, K: int,
                 dtype: torch.dtype = torch.float64, spec: str = "zoo:fista") -> list[float]:
    """½‖Z* − Z_k‖² averaged over the rows of X after k = 1..K FISTA iterations (one compiled run)."""
    model = fista_model(D, lam, K, dtype, spec)
    itemsize = torch.empty((), dtype=dtype).element_size()
    chunk = max(8, min(4096, _LAYER_BYTES // max(1, K * D.shape[1] * itemsize)))
    Y, T = torch.as_tensor(X, dtype=dtype), torch.as_tensor(Zstar, dtype=torch.float64)
    total = torch.zeros(K, dtype=torch.float64)
    for sl in _chunks(X.shape[0], chunk):
        _, layers = model(y=Y[sl], return_layers=True)
        t = T[sl]
        total += torch.stack([(t - z.double()).pow(2).sum() for z in layers])
        del layers
    return (0.5 * total / X.shape[0]).tolist()


def learn_dictionary(X: np.ndarray, m: int, lam: float, iters: int = 30, batch: int = 1024, K: int = 100,
                     seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[np.ndarray, list[dict]]:
    """A dictionary [n, m] with unit-norm columns for the lasso ½‖D z − x‖² + λ‖z‖₁ on the rows of X.

    Online alternating scheme (as Mairal et al. 2009): each iteration codes a random batch with K
    iterations of the compiled zoo FISTA, adds the batch's statistics zzᵀ and x zᵀ to running sums
    (older batches weighted down by 1 − 1/(t+1)), and updates each atom once by block-coordinate
    descent on the accumulated quadratic, then renormalises it; an unused atom is restarted on a
    random patch. Starts from ``m`` random training patches, normalised.
    """
    rng = np.random.default_rng(seed)
    N, n = X.shape
    usable = np.flatnonzero(np.linalg.norm(X, axis=1) > 1e-8)
    if usable.size == 0:
        raise ValueError("every training patch is zero: cannot learn a dictionary")

    def random_atoms(count: int) -> np.ndarray:
        d = X[rng.choice(usable, count, replace=usable.size < count)].T.copy()
        d += 1e-3 * rng.standard_normal(d.shape)  # breaks ties between repeated patches
        return d / np.linalg.norm(d, axis=0, keepdims=True)

    D = random_atoms(m)
    A = np.zeros((m, m))
    B = np.zeros((n, m))
    history = []
    for t in range(1, iters + 1):
        xb = X[rng.choice(N, min(batch, N), replace=False)]
        zb, _ = solve_codes(D, xb, lam, K, torch.float64, stats=False)
        w = 1.0 - 1.0 / (t + 1)
        A = w * A + zb.T @ zb / len(xb)
        B = w * B + xb.T @ zb / len(xb)
        for j in range(m):
            if A[j, j] < 1e-10:
                D[:, j] = random_atoms(1)[:, 0]
                continue
            u = D[:, j] + (B[:, j] - D @ A[:, j]) / A[j, j]
            norm = np.linalg.norm(u)
            D[:, j] = u / norm if norm > 1e-12 else random_atoms(1)[:, 0]
        obj = float(0.5 * np.sum((xb - zb @ D.T) ** 2) / len(xb) + lam * np.abs(zb).sum() / len(xb))
        history.append({"iteration": t, "objective": obj, "nonzero_fraction": float(np.mean(zb != 0))})
        if log is not None and (t == 1 or t % max(1, iters // 5) == 0 or t == iters):
            log(f"  dictionary m={m} iteration {t}/{iters}: batch objective {obj:.4f}, "
                f"non-zeros {history[-1]['nonzero_fraction']:.3f}")
    return D, history


def digest(*parts: Any) -> str:
    """A hex key over arrays (their bytes, shape and dtype) and JSON-able values, in order."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()[:24]


def cached(directory: str | os.PathLike | None, kind: str, key: str,
           compute: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays ``compute()`` returns, stored as DIR/kind-key.npz and read back when present (no pickles).
    Returns (arrays, whether they came from the cache); no directory means no caching."""
    if directory is None:
        return compute(), False
    path = Path(directory) / f"{kind}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}, True
        except (OSError, ValueError):
            pass  # unreadable (e.g. a cut-off write): recompute and overwrite
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return arrays, False
