"""Train any spec on your own data: arrays named after the spec's inputs, targets and operators,
read from .npz / .npy / .pt / .mat files (or given in memory, or as a torch Dataset), checked
against the spec's declared shapes and split into a training set and a held-out test set."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..compiler.ir import Program, fmt_shape

__all__ = ["DataFileError", "read_arrays", "read_operator", "ArrayTask", "SUFFIXES"]

SUFFIXES = (".npz", ".npy", ".pt", ".pth", ".mat")


class DataFileError(ValueError):
    """A data file that cannot be used: unreadable, a missing array, a wrong shape, NaN or Inf."""


def _mat(path: Path) -> dict[str, np.ndarray]:
    import scipy.io
    try:
        raw = scipy.io.loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 is HDF5: h5py gives the arrays transposed
        import h5py
        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of a data file (.npz, .pt/.pth dict of tensors, .mat; .npy: one array
    named after the file's stem). Never unpickles objects."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"{path}: unknown data format {suffix or '(no suffix)'}; use "
                            + ", ".join(SUFFIXES))
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                out = {k: np.asarray(z[k]) for k in z.files}
        elif suffix == ".npy":
            out = {path.stem: np.load(path, allow_pickle=False)}
        elif suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, torch.Tensor):
                obj = {path.stem: obj}
            if not isinstance(obj, Mapping):
                raise DataFileError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
            out = {}
            for k, v in obj.items():
                if not isinstance(v, (torch.Tensor, np.ndarray)):
                    raise DataFileError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
                out[str(k)] = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v
        else:
            out = _mat(path)
    except DataFileError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise DataFileError(f"{path}: cannot read it as {suffix} ({type(e).__name__}: {e})") from None
    for k, v in out.items():
        if v.dtype.kind not in "biufc":
            raise DataFileError(f"{path}: array {k!r} has dtype {v.dtype}, not numbers")
    return out


def read_operator(text: str) -> tuple[str, np.ndarray, str]:
    """`NAME=FILE` (the `--operator` option): (name, array, file). The file holds one array, or an
    array with that name."""
    name, sep, file = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not file:
        raise DataFileError(f"--operator takes NAME=FILE, e.g. W=W.npy; got {text!r}")
    arrays = read_arrays(file)
    if name in arrays:
        return name, arrays[name], file
    if len(arrays) == 1:
        return name, next(iter(arrays.values())), file
    raise DataFileError(f"{file}: no array named {name!r} (it has {', '.join(arrays) or 'none'})")


def _finite(a: np.ndarray, file: str, name: str) -> None:
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise DataFileError(f"{file}: array {name!r} has {bad} NaN or Inf entr"
                            f"{'y' if bad == 1 else 'ies'}")


class ArrayTask:
    """A training task over fixed arrays: a random held-out test split, batches drawn with
    replacement from the rest (reproducible from the generator, so resume is exact), stored in
    `dtype` (complex arrays in its complex counterpart).

    `samples` maps each input and target name to a [N, ...] array; `operators` maps operator names
    to arrays. Use `for_spec` to check them against a spec and bind its dims.
    """

    def __init__(self, samples: Mapping[str, Any], operators: Mapping[str, Any] | None = None,
                 test_fraction: float = 0.1, seed: int = 0, source: str = "arrays",
                 dims: Mapping[str, int] | None = None, dtype: torch.dtype = torch.float32) -> None:
        if not samples:
            raise DataFileError(f"{source}: no per-sample arrays")
        arrays = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
                  for k, v in samples.items()}
        cplx = torch.complex64 if dtype == torch.float32 else torch.complex128
        arrays = {k: v.to(cplx if v.is_complex() else dtype) for k, v in arrays.items()}
        sizes = {k: v.shape[0] if v.dim() else None for k, v in arrays.items()}
        n = next(iter(sizes.values()))
        for k, s in sizes.items():
            if s is None or s != n:
                raise DataFileError(f"{source}: array {k!r} has {s or 'no'} samples along its first "
                                    f"axis, others have {n}; every input and target needs one row "
                                    "per sample")
        if not 0.0 < test_fraction < 1.0:
            raise DataFileError(f"the held-out fraction must be in (0, 1), got {test_fraction}")
        if n < 2:
            raise DataFileError(f"{source}: {n} sample(s); need at least 2 (training and held-out)")
        n_test = min(max(1, round(n * test_fraction)), n - 1)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self._train = {k: v[perm[n_test:]] for k, v in arrays.items()}
        self._test = {k: v[perm[:n_test]] for k, v in arrays.items()}
        self._ops = {k: np.asarray(v.detach().cpu()) if isinstance(v, torch.Tensor) else
                     v if callable(v) or isinstance(v, tuple) or hasattr(v, "A_adjoint")
                     else np.asarray(v) for k, v in (operators or {}).items()}
        self.train_size, self.test_size = n - n_test, n_test
        self.source, self._dims = source, dict(dims or {})

    @classmethod
    def from_dataset(cls, dataset: Any, operators: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> "ArrayTask":
        """From a map-style torch Dataset whose items are dicts of tensors keyed by spec names."""
        items = [dataset[i] for i in range(len(dataset))]
        if not items or not isinstance(items[0], Mapping):
            raise DataFileError("the dataset's items must be dicts keyed by the spec's input and "
                                "target names")
        samples = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
        return cls(samples, operators, source=kwargs.pop("source", type(dataset).__name__), **kwargs)

    @classmethod
    def for_spec(cls, program: Program, arrays: Mapping[str, Any],
                 operators: Mapping[str, Any] | None = None, source: str = "arrays",
                 dims: Mapping[str, int] | None = None, **kwargs: Any) -> "ArrayTask":
        """Check `arrays` (inputs, targets and maybe operators, by spec name) against the spec:
        every name present, shapes fitting the declared ones (dims bound along the way), finite
        values. `operators` (e.g. from --operator) take precedence over same-named arrays."""
        arrays = {k: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)
                  for k, v in arrays.items()}
        ops = {k: v if program.operators.get(k) is not None and program.operators[k].in_shape
               else np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)
               for k, v in (operators or {}).items()}
        bound = {k: v for k, v in program.dims.items() if v is not None}
        origin = {k: "the spec" for k in bound}
        for k, v in (dims or {}).items():
            origin[k] = origin.get(k) if bound.get(k) == v else "the given dims"
            bound[k] = v
        have = ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items()) or "no arrays"
        for name, t in program.operators.items():
            if t.in_shape is not None:  # matrix-free: callables, never from a file
                if name not in ops:
                    raise DataFileError(f"{source}: operator {name} is matrix-free (callables), so "
                                        "it cannot come from a data file; train from Python with "
                                        "unroll.data.arrays.ArrayTask.for_spec(program, arrays, "
                                        f"{{'{name}': (forward, adjoint)}})")
                continue
            if name not in ops:
                if name not in arrays and t.default is not None:
                    continue  # computed by the spec's default when the model is built
                if name not in arrays:
                    raise DataFileError(f"{source}: no array {name!r} for the spec's operator {name} "
                                        f"{fmt_shape(t.shape)} (the file has {have}); put it in the "
                                        f"file or give it with --operator {name}=FILE")
                ops[name] = arrays[name]
            _fit(ops[name], t.shape, bound, origin, source, name, f"operator {name}", batched=False)
            _finite(ops[name], source, name)
        samples = {}
        for kind, table in (("input", program.inputs), ("target", program.targets)):
            for name, t in table.items():
                if name not in arrays:
                    raise DataFileError(f"{source}: no array {name!r} for the spec's {kind} {name} "
                                        f"{fmt_shape(t.shape)} (the file has {have})")
                a = arrays[name]
                _fit(a, t.shape, bound, origin, source, name, f"{kind} {name}", batched=True)
                _finite(a, source, name)
                if a.dtype.kind == "c" and t.dtype != "complex":
                    raise DataFileError(f"{source}: array {name!r} is complex but the spec's {kind} "
                                        f"{name} is real")
                samples[name] = a.astype(np.complex128 if t.dtype == "complex" else np.float64)
        unbound = [d for d in program.dims if d not in bound]
        if unbound:
            raise DataFileError(f"{source}: the size of dim {', '.join(unbound)} is not fixed by "
                                f"the arrays; give it in the spec or with --dim {unbound[0]}=SIZE "
                                "(dims= in Python)")
        return cls(samples, ops, source=source, dims=bound, **kwargs)

    def describe(self) -> str:
        """One line for logs: where the arrays came from and the split."""
        return (f"arrays from {self.source}: {self.train_size} training, {self.test_size} held-out "
                f"samples ({', '.join(f'{k} {list(v.shape[1:])}' for k, v in self._train.items())})")

    def dims(self) -> dict[str, int]:
        """The dims the arrays fixed (for `unroll.compile(..., dims=...)`)."""
        return dict(self._dims)

    def operators(self) -> dict[str, np.ndarray]:
        """The fixed operators by spec name."""
        return dict(self._ops)

    def bind(self, model_or_names: Any) -> "ArrayTask":
        """Itself, after checking it holds every input and target the model reads."""
        names = [*getattr(model_or_names, "input_names", ()), *getattr(model_or_names, "target_names", ())]
        missing = [n for n in names if n not in self._train]
        if missing:
            raise DataFileError(f"{self.source}: no array for {', '.join(missing)} (has "
                                f"{', '.join(self._train)})")
        return self

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """`batch` training samples drawn with replacement, determined by `generator`."""
        idx = torch.randint(self.train_size, (batch,), generator=generator)
        return {k: v[idx] for k, v in self._train.items()}

    def test_set(self) -> dict[str, torch.Tensor]:
        """The held-out samples."""
        return dict(self._test)


def _fit(a: np.ndarray, shape: tuple, bound: dict, origin: dict, file: str, name: str, what: str,
         batched: bool) -> None:
    """Check an array against a declared shape (after a leading sample axis when `batched`),
    binding unknown dims from it."""
    got = a.shape[1:] if batched else a.shape
    want = ("N",) + tuple(shape) if batched else tuple(shape)
    if (batched and a.ndim == 0) or len(got) != len(shape):
        raise DataFileError(f"{file}: array {name!r} has shape {list(a.shape)} but the spec's {what} "
                            f"is {fmt_shape(want)}" + (" (samples along the first axis)" if batched else ""))
    for d, g in zip(shape, got):
        if isinstance(d, int):
            ok, need = d == g, str(d)
        elif d in bound:
            ok, need = bound[d] == g, f"{d} = {bound[d]} (from {origin[d]})"
        else:
            bound[d], origin[d], ok, need = int(g), f"array {name!r}", True, ""
        if not ok:
            raise DataFileError(f"{file}: array {name!r} has shape {list(a.shape)}, which does not "
                                f"fit the spec's {what} {fmt_shape(want)} with {need}")
