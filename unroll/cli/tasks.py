"""Which training task fits a spec: one function, `task_for`, so new tasks (images, MRI) slot in.

A task provides `sample(batch, generator)`, `test_set()`, `operators()` and `describe()` with the
spec's own names (see `unroll.data`).
"""
from __future__ import annotations

import argparse
from typing import Any

from ..compiler.ir import Program
from .common import CLIError

__all__ = ["task_for", "TASKS"]

# What `unroll train` can train today, for the error message when nothing fits.
TASKS = ("sparse coding (one operator A [n, m], one input y [n], one target x [m]; "
         "the LISTA benchmark, --data DIR/sparse/D.mat or a generated 250x500 A)",
         "CS-MRI (one real operator P [h, w], one complex input y [h, w], one target [h, w]; "
         "chest images DIR/mri with --mask PCT and --size S, or Shepp-Logan phantoms)",
         "block CS (operator Phi [M, 1089], optional Q [1089, M]; T91 blocks, Set11 test blocks, "
         "--ratio PCT reads DIR/cs_phi/phi_0_PCT_1089.mat or generates Phi)")


def _names(program: Program) -> dict[str, tuple[str, ...]]:
    return {"operator_names": tuple(program.operators), "input_names": tuple(program.inputs),
            "target_names": tuple(program.targets),
            "defaulted_operators": program.defaulted}


def _given(args: argparse.Namespace, name: str, default: Any) -> Any:
    """The option's value when given (0 included: it is checked, never replaced), else the default."""
    value = getattr(args, name, None)
    return default if value is None else value


def _main_operator(program: Program) -> str | None:
    """The sparse-coding dictionary among the operators: the only one, else the one named A or D
    (the others, e.g. ALISTA's W, are extra operators the task supplies)."""
    ops = list(program.operators)
    if len(ops) == 1:
        return ops[0]
    named = [o for o in ("A", "D") if o in ops]
    return named[0] if named else None


def _is_sparse_coding(program: Program) -> bool:
    ins, tgs = list(program.inputs.values()), list(program.targets.values())
    main = _main_operator(program)
    if main is None or len(ins) != 1 or len(tgs) != 1:
        return False
    op = program.operators[main]
    return (len(op.shape) == 2 and len(ins[0].shape) == 1 and len(tgs[0].shape) == 1
            and op.dtype == "real" and all(t.dtype == "real" for t in program.operators.values()))


def _extra_operators(program: Program, main: str, given: dict, data_dir) -> dict[str, Any]:
    """Operators besides the dictionary: from --operator, else DIR/sparse/NAME.npy (ALISTA's W),
    else the spec's default (`operator W : [n, m] = expr`)."""
    from pathlib import Path

    import numpy as np
    out = {}
    for name in program.operators:
        if name == main:
            continue
        path = Path(data_dir) / "sparse" / f"{name}.npy" if data_dir is not None else None
        if name in given:
            out[name] = given[name]
        elif path is not None and path.is_file():
            out[name] = np.load(path, allow_pickle=False)
        elif program.operators[name].default is not None:
            continue  # computed by the spec's default when the model is built
        else:
            raise CLIError(f"the spec's operator {name} is not given: pass --operator {name}=FILE"
                           + (f" (or put it in {path})" if path is not None else ""))
    return out


def _given_operators(args: argparse.Namespace) -> dict[str, Any]:
    """The `--operator NAME=FILE` options, read."""
    from ..data.arrays import read_operator
    out = {}
    for text in getattr(args, "operator", None) or []:
        name, array, _ = read_operator(text)
        out[name] = array
    return out


def is_data_file(data: str | None) -> bool:
    """Whether `--data` names a file of arrays (else it is a data directory)."""
    from pathlib import Path

    from ..data.arrays import SUFFIXES
    return data is not None and (Path(data).is_file() or Path(data).suffix.lower() in SUFFIXES)


def task_for(program: Program, args: argparse.Namespace) -> Any:
    """The training task for `program`, bound to its names; uses args.data, .p, .snr, .seed,
    .operator. `--data FILE` trains on the arrays in FILE (any spec)."""
    from ..data import SparseCodingTask, resolve_data_dir
    given = _given_operators(args)
    unknown = [n for n in given if n not in program.operators]
    if unknown:
        raise CLIError(f"--operator {unknown[0]}=...: the spec declares no operator {unknown[0]} "
                       f"(it declares {', '.join(program.operators) or 'none'})")
    if is_data_file(getattr(args, "data", None)):
        from ..data.arrays import ArrayTask, read_arrays
        return ArrayTask.for_spec(program, read_arrays(args.data), given, source=args.data,
                                  dims=getattr(args, "dims", None),
                                  test_fraction=getattr(args, "test_fraction", 0.1),
                                  seed=getattr(args, "seed", 0))
    if _is_sparse_coding(program):
        data_dir, _ = resolve_data_dir(getattr(args, "data", None))
        main = _main_operator(program)
        task = SparseCodingTask.from_data_dir(data_dir, p=getattr(args, "p", 0.1),
                                              snr_db=getattr(args, "snr", None),
                                              seed=getattr(args, "seed", 0),
                                              extra=_extra_operators(program, main, given, data_dir),
                                              names={"operator": main, "measurement":
                                                     next(iter(program.inputs)), "target":
                                                     next(iter(program.targets))})
        if main in given:
            task = SparseCodingTask(given[main], task.p, task.snr_db, task.seed, extra=task.extra,
                                    names=task.names, source=f"{main} from --operator")
        return task.bind(_names(program))
    from ..data.blockcs import PAPER_BLOCKS, BlockCSTask, sampling_operator
    sampling = sampling_operator(program.operators, only=False)
    if sampling is not None and set(program.operators) <= {sampling, "Q"}:  # block CS (ISTA-Net, FISTA-Net)
        data_dir, _ = resolve_data_dir(getattr(args, "data", None))
        task = BlockCSTask.from_data_dir(data_dir, ratio=_given(args, "ratio", 25),
                                         n_blocks=_given(args, "blocks", PAPER_BLOCKS),
                                         seed=getattr(args, "seed", 0), test_blocks=256)
        return task.bind(_names(program))
    from ..data.mri import MRITask, fits_mri
    if fits_mri(program):
        data_dir, _ = resolve_data_dir(getattr(args, "data", None))
        task = MRITask.from_data_dir(data_dir, mask=_given(args, "mask", 20),
                                     size=getattr(args, "size", None), seed=getattr(args, "seed", 0))
        return task.bind(_names(program))
    raise CLIError(
        f"no training task fits {program.name}: it declares operators "
        f"({', '.join(program.operators) or 'none'}), inputs ({', '.join(program.inputs) or 'none'}) "
        f"and targets ({', '.join(program.targets) or 'none'}). `unroll train` knows: "
        + "; ".join(TASKS) + ". Train it on your own arrays with --data FILE.npz (arrays named "
        "after its inputs and targets), or from Python with unroll.data.arrays.ArrayTask.")
