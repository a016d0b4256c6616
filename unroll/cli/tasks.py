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
            "target_names": tuple(program.targets)}


def _given(args: argparse.Namespace, name: str, default: Any) -> Any:
    """The option's value when given (0 included: it is checked, never replaced), else the default."""
    value = getattr(args, name, None)
    return default if value is None else value


def _is_sparse_coding(program: Program) -> bool:
    ops, ins, tgs = (list(t.values()) for t in (program.operators, program.inputs, program.targets))
    return (len(ops) == 1 and len(ins) == 1 and len(tgs) == 1 and len(ops[0].shape) == 2
            and len(ins[0].shape) == 1 and len(tgs[0].shape) == 1 and ops[0].dtype == "real")


def task_for(program: Program, args: argparse.Namespace) -> Any:
    """The training task for `program`, bound to its names; uses args.data, .p, .snr, .seed."""
    from ..data import SparseCodingTask, resolve_data_dir
    if _is_sparse_coding(program):
        data_dir, _ = resolve_data_dir(getattr(args, "data", None))
        task = SparseCodingTask.from_data_dir(data_dir, p=getattr(args, "p", 0.1),
                                              snr_db=getattr(args, "snr", None),
                                              seed=getattr(args, "seed", 0))
        return task.bind(_names(program))
    if {"Phi"} <= set(program.operators) <= {"Phi", "Q"}:  # block CS (ISTA-Net, FISTA-Net)
        from ..data.blockcs import PAPER_BLOCKS, BlockCSTask
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
        + "; ".join(TASKS) + ". From Python, pass your own task to unroll.train.train.")
