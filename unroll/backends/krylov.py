"""Restarted GMRES on lists of tensors: the linear solve behind `grad='implicit'`'s backward.

The adjoint equation u = g + J'u of a fixed point is linear in u. Iterating it (Richardson) needs
about as many steps as the forward fixed point, each a vector-Jacobian product costing about two
forward layers; a Krylov method needs far fewer products when J's spectral radius is close to 1
(a slowly contracting ISTA). Vectors are lists of real or complex tensors (one per state), with
the inner product summed over them, so no state is flattened into a copy. Complex tensors are
treated as pairs of reals (inner product Re<a, b>, real coefficients): autograd's vector-Jacobian
product of a non-holomorphic map is real-linear, not complex-linear.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["gmres"]

Vec = list[torch.Tensor]


def _dot(a: Vec, b: Vec) -> float:
    """Re <a, b>: the real inner product, summed over the tensors."""
    return sum(float(torch.vdot(x.reshape(-1), y.reshape(-1)).real) for x, y in zip(a, b))


def _norm(a: Vec) -> float:
    return float(sum(float(x.abs().pow(2).sum()) for x in a)) ** 0.5


def _axpy(alpha: float, x: Vec, y: Vec) -> Vec:
    """y + alpha x."""
    return [yi + alpha * xi for xi, yi in zip(x, y)]


def gmres(matvec: Callable[[Vec], Vec], b: Vec, x0: Vec, tol: float, max_products: int,
          restart: int = 30) -> tuple[Vec, int, float]:
    """Solve matvec(x) = b from x0 to relative residual `tol` in at most `max_products` products.
    Returns (x, products used, final relative residual ||b - Ax|| / ||b||)."""
    bnorm = _norm(b) or 1.0
    x, used = list(x0), 0
    r = _axpy(-1.0, matvec(x), b)
    used += 1
    rel = _norm(r) / bnorm
    while rel > tol and used < max_products:
        beta = _norm(r)
        basis = [[t / beta for t in r]]
        hess = np.zeros((restart + 1, restart), dtype=float)
        cols = 0
        for j in range(min(restart, max_products - used)):
            w = matvec(basis[j])
            used += 1
            for i in range(j + 1):  # modified Gram-Schmidt
                hess[i, j] = _dot(basis[i], w)
                w = _axpy(-hess[i, j], basis[i], w)
            hess[j + 1, j] = _norm(w)
            cols = j + 1
            e1 = np.zeros(cols + 1, dtype=float)
            e1[0] = beta
            y = np.linalg.lstsq(hess[:cols + 1, :cols], e1, rcond=None)[0]
            res = float(np.linalg.norm(hess[:cols + 1, :cols] @ y - e1))
            if res / bnorm <= tol or hess[j + 1, j] <= 1e-30 * beta:
                break
            basis.append([t / hess[j + 1, j] for t in w])
        for i in range(cols):
            x = _axpy(float(y[i]), basis[i], x)
        r = _axpy(-1.0, matvec(x), b)  # the true residual, not the recurrence's estimate
        used += 1
        rel = _norm(r) / bnorm
    return x, used, rel
