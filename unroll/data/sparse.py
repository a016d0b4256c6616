"""Synthetic sparse coding, the LISTA benchmark: y = A x (+ noise), x Bernoulli(p)·N(0, 1)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .binding import TaskBindingError, bind_single_roles, spec_names
from .checked import checked, read_mat, read_npy

__all__ = ["gaussian_dictionary", "load_standard_problem", "SparseCodingTask"]

_DEFAULT_NAMES = {"operator": "A", "measurement": "y", "target": "x_star"}
_ROLE_KINDS = {"operator": "operator_names", "measurement": "input_names", "target": "target_names"}
# Offset that separates the fixed test set's random stream from the per-step training streams.
_TEST_SEED_OFFSET = 0x5EED_7E57


def gaussian_dictionary(n: int = 250, m: int = 500, seed: int = 0) -> np.ndarray:
    """An [n, m] float64 Gaussian matrix with unit-norm columns (the LISTA benchmark's A)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, m))
    return A / np.linalg.norm(A, axis=0, keepdims=True)


def load_standard_problem(
    data_dir: str | os.PathLike | None, n: int = 250, m: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Return (A [n, m] float64, x_test [N, m] or None, sentence saying where they came from).

    Reads ``sparse/D.mat`` (key ``D``) and ``sparse/xtest_n500_p10.npy`` (codes as columns) from
    ``data_dir`` when present; otherwise A is generated with :func:`gaussian_dictionary`.
    """
    sparse_dir = Path(data_dir) / "sparse" if data_dir is not None else None
    d_path = sparse_dir / "D.mat" if sparse_dir is not None else None
    if d_path is not None and d_path.is_file():

        A = checked(read_mat(d_path, "D"), d_path, "variable 'D'", nonzero=True)
        parts = [f"A from {d_path} ({A.shape[0]}x{A.shape[1]})"]
        x_path = sparse_dir / "xtest_n500_p10.npy"
        x_test = None
        if x_path.is_file():
            x_test = np.ascontiguousarray(checked(read_npy(x_path), x_path, "the test codes").T)
            if x_test.shape[1] != A.shape[1]:
                raise ValueError(
                    f"{x_path}: test codes have length {x_test.shape[1]} but A has {A.shape[1]} columns"
                )
            parts.append(f"{x_test.shape[0]} fixed test codes from {x_path}")
        else:
            parts.append("test codes generated")
        return A, x_test, "; ".join(parts)
    where = f"{d_path} not found" if d_path is not None else "no data directory"
    A = gaussian_dictionary(n, m, seed)
    return A, None, f"A generated ({n}x{m} Gaussian, unit-norm columns, seed {seed}; {where}); test codes generated"


class SparseCodingTask:
    """Training stream and fixed test set for sparse coding with a fixed dictionary A.

    Batches are dicts keyed by the bound spec's names (default ``y``, ``x_star``); ``bind``
    maps the roles operator / measurement / target onto any spec with one of each.
    """

    train_size = None  # an infinite stream: epochs are undefined

    def __init__(
        self,
        A: Any,
        p: float = 0.1,
        snr_db: float | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        x_test: Any = None,
        n_test: int = 1000,
        names: Mapping[str, str] | None = None,
        source: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        A = A.detach().cpu().numpy() if isinstance(A, torch.Tensor) else np.asarray(A)
        if A.ndim != 2:
            raise ValueError(f"A must be a matrix, got shape {A.shape}")
        if not 0.0 < p <= 1.0:
            raise ValueError(f"sparsity p must be in (0, 1], got {p}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.A = A.astype(np.float64)
        self.p = float(p)
        self.snr_db = None if snr_db is None else float(snr_db)
        self.seed = int(seed)
        self.dtype = dtype
        self.x_test = None if x_test is None else np.asarray(x_test)
        if self.x_test is not None and (self.x_test.ndim != 2 or self.x_test.shape[1] != self.m):
            raise ValueError(f"x_test must be [N, {self.m}], got {self.x_test.shape}")
        self.n_test = int(n_test) if self.x_test is None else self.x_test.shape[0]
        self.names = dict(_DEFAULT_NAMES if names is None else names)
        self.source = source
        self.extra = {k: np.asarray(v) for k, v in (extra or {}).items()}  # more operators (ALISTA's W)
        self._A_t = torch.as_tensor(self.A, dtype=dtype)
        self._test: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_data_dir(cls, data_dir: str | os.PathLike | None, **kwargs: Any) -> "SparseCodingTask":
        """The standard benchmark: A (and fixed test codes) from ``data_dir`` or generated."""
        A, x_test, source = load_standard_problem(data_dir, seed=kwargs.get("seed", 0))
        return cls(A, x_test=x_test, source=source, **kwargs)

    @property
    def n(self) -> int:
        """Measurement length (rows of A)."""
        return self.A.shape[0]

    @property
    def m(self) -> int:
        """Code length (columns of A)."""
        return self.A.shape[1]

    def describe(self) -> str:
        """One line for logs: sizes, sparsity, noise and data source."""
        noise = "noiseless" if self.snr_db is None else f"SNR {self.snr_db:g} dB"
        src = f"; {self.source}" if self.source else ""
        return f"sparse coding n={self.n} m={self.m} p={self.p:g} {noise}{src}"

    def bind(self, model_or_names: Any) -> "SparseCodingTask":
        """A copy whose batches and operators use the spec's names; ValueError if roles don't fit.

        With several operators, A is the one this task's names call the operator (default `A`);
        every other one must be among the task's `extra` operators."""
        ops = spec_names(model_or_names)["operator_names"]
        roles = {k: v for k, v in _ROLE_KINDS.items() if k != "operator" or len(ops) <= 1}
        names = bind_single_roles(model_or_names, "the sparse-coding task", roles)
        if len(ops) > 1:
            if self.names["operator"] not in ops:
                raise TaskBindingError(
                    f"the sparse-coding task's operator is {self.names['operator']!r}, which the spec "
                    f"does not declare (it declares {', '.join(ops)}); pass names={{'operator': ...}}")
            names["operator"] = self.names["operator"]
            defaulted = (model_or_names.get("defaulted_operators", ()) if isinstance(
                model_or_names, Mapping) else getattr(model_or_names, "defaulted_operators", ()))
            missing = [o for o in ops if o != names["operator"] and o not in self.extra
                       and o not in defaulted]  # a spec default is computed at compile
            if missing:
                raise TaskBindingError(
                    f"the spec declares operator {', '.join(missing)} besides {names['operator']}; "
                    f"give {'it' if len(missing) == 1 else 'them'} to the task (extra={{...}}, or "
                    f"--operator {missing[0]}=FILE)")
        other = SparseCodingTask(
            self.A, self.p, self.snr_db, self.seed, self.dtype, self.x_test, self.n_test, names, self.source,
            self.extra,
        )
        other._test = None if self._test is None else {
            names[r]: self._test[self.names[r]] for r in ("measurement", "target")
        }
        return other

    def operators(self) -> dict[str, np.ndarray]:
        """The fixed operators keyed by spec name, to pass to ``unroll.compile(..., **ops)``."""
        return {self.names["operator"]: self.A, **self.extra}

    def codes(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[batch, m] codes: Bernoulli(p) support times N(0, 1) amplitudes."""
        support = torch.rand((batch, self.m), generator=generator, dtype=self.dtype) < self.p
        amplitude = torch.randn((batch, self.m), generator=generator, dtype=self.dtype)
        return amplitude * support

    def measure(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """y = x Aᵀ, plus white noise per sample at ``snr_db`` (σ = ‖y‖/√n · 10^(−SNR/20))."""
        y = x.to(self.dtype) @ self._A_t.T
        if self.snr_db is not None:
            sigma = y.norm(dim=1, keepdim=True) / self.n**0.5 * 10.0 ** (-self.snr_db / 20.0)
            y = y + sigma * torch.randn(y.shape, generator=generator, dtype=self.dtype)
        return y

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A training batch {measurement: [B, n], target: [B, m]}, determined by ``generator``."""
        x = self.codes(batch, generator)
        y = self.measure(x, generator)
        return {self.names["measurement"]: y, self.names["target"]: x}

    def test_set(self) -> dict[str, torch.Tensor]:
        """The fixed test set (file codes if given, else generated from ``seed``); cached."""
        if self._test is None:
            g = torch.Generator().manual_seed(self.seed + _TEST_SEED_OFFSET)
            if self.x_test is not None:
                x = torch.as_tensor(self.x_test, dtype=torch.float64)
            else:
                x = self.codes(self.n_test, g).to(torch.float64)
            y = x @ torch.as_tensor(self.A).T  # float64 products, then cast: same y for both dtypes
            if self.snr_db is not None:
                sigma = y.norm(dim=1, keepdim=True) / self.n**0.5 * 10.0 ** (-self.snr_db / 20.0)
                y = y + sigma * torch.randn(y.shape, generator=g, dtype=torch.float64)
            self._test = {
                self.names["measurement"]: y.to(self.dtype),
                self.names["target"]: x.to(self.dtype),
            }
        return dict(self._test)
