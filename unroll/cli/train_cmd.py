"""`unroll train`: compile a spec with its task's operators and train it; print NMSE per layer."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from .common import CLIError, add_spec_args, dims_of, duration_arg, grad_arg, known_dims, load_program
from .tasks import TASKS

__all__ = ["add_parser", "run_train", "layer_table"]

DEFAULT_STEPS = 2000


def layer_table(columns: dict[str, list[float]], rows: list[int] | None = None) -> str:
    """A text table of NMSE (dB): one row per layer (1-based), one column per method."""
    n = max(len(v) for v in columns.values())
    rows = rows or list(range(1, n + 1))
    head = "layer " + "".join(f"{name:>10}" for name in columns)
    lines = [head, "-" * len(head)]
    for k in rows:
        cells = "".join(f"{v[k - 1]:>10.2f}" if k <= len(v) else f"{'':>10}" for v in columns.values())
        lines.append(f"{k:>5} {cells}")
    return "\n".join(lines)


def _saved_steps(out: Path) -> int | None:
    """The step count of the run saved in `out` (so --resume needs no --steps)."""
    from ..train import LAST, load_checkpoint
    if not (out / LAST).exists():
        return None
    from ..train.checkpoint import CheckpointError
    saved = load_checkpoint(out / LAST)
    try:
        return int(saved["config"]["steps"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{out / LAST}: not a training checkpoint (no config.steps entry)") from None


def run_train(args: argparse.Namespace) -> int:
    """Train a spec on the task that fits it (see cli/tasks.py); under torchrun only rank 0 prints."""
    import os
    if int(os.environ.get("RANK", "0")) != 0:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return _run_train(args)
    return _run_train(args)


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from ..api import compile as compile_spec
    from ..train import train
    from .run_dir import check_settings, claim_out_dir, task_settings
    from .tasks import task_for

    if args.layerwise and args.grad == "implicit":  # refused before any data is read
        raise CLIError("--layerwise trains the loss at each layer k (upto=k), but --grad implicit "
                       "differentiates the fixed point of the whole iteration; use --grad unroll or "
                       "checkpoint with --layerwise")
    init = _read_init(args)
    program = load_program(args.spec, args.K)
    args.dims = known_dims(program, dims_of(args))[0]  # unknown or spec-fixed names: exit 2 now
    _check_gradients(program, args.allow_no_grad)
    out = Path(args.out or f"runs/{program.name.lower()}")
    note = claim_out_dir(out, args.resume, args.overwrite)
    if note:
        print(note)
    data_dir = _data_dir(args)
    with contextlib.ExitStack() as scope:
        if args.device == "cpu":
            scope.enter_context(_fastest_threads())
        task = task_for(program, args)
        print(f"task: {task.describe()}")
        check_settings(out, task_settings(program, args, data_dir, task.describe()), args.resume)
        operators = _operators(task, init)
        dims = {**args.dims, **(task.dims() if hasattr(task, "dims") else {})}
        if args.fast and args.grad != "unroll":
            raise CLIError(f"--fast runs --grad unroll only (got --grad {args.grad})")
        with torch.random.fork_rng(devices=[]):  # --seed fixes the blocks' random initial weights
            torch.manual_seed(args.seed)
            model = compile_spec(program, args.K, dims=dims,
                                 dtype=torch.float64 if args.float64 else torch.float32,
                                 device=args.device, fast=args.fast, grad=args.grad, **operators)
        _start_model(model, task, init, args)
        config = _train_config(args, out, _steps(model, task, out, args))
        print(f"training {program.name} (K={model.K}) on {args.device}: "
              + (f"layer-wise, {len(config.stage_steps)} stages per layer" if args.layerwise
                 else f"{config.steps} steps") + f", batch {args.batch_size}, lr {args.lr:g}, {args.schedule}")
        result = train(model, task, config, progress=not args.quiet)
    _report(program.name, result, out)
    return 0


def _read_init(args: argparse.Namespace):
    """--init CK: the weights to start from (None without it); the spec and K default to its own."""
    if not args.init:
        return None
    from ..evaluate.loading import spec_of_checkpoint
    from ..train.warm_start import read_init

    init = read_init(args.init)
    spec = spec_of_checkpoint(args.spec, init.saved)
    if args.K is None and init.K is not None:
        args.K = init.K
    if str(spec) != str(args.spec):
        print(f"--init {init.path.name} belongs to {spec}: training that")
        args.spec = spec
    return init


def _data_dir(args: argparse.Namespace) -> Path | None:
    """The data directory (or file of arrays) --data names, after printing where data comes from."""
    from ..data import resolve_data_dir
    from .tasks import is_data_file

    if is_data_file(args.data):
        data_dir, where = Path(args.data).resolve(), f"using arrays from {args.data} (--data)"
    else:
        data_dir, where = resolve_data_dir(args.data)
    print(where)
    return data_dir


@contextlib.contextmanager
def _fastest_threads():
    """Train with the faster of torch's thread count and 1 (a busy CPU), restored afterwards."""
    import torch

    from ..train.budget import fastest_threads, torch_threads

    before = torch.get_num_threads()
    with torch_threads(fastest_threads()) as threads:
        if threads != before:
            print(f"this CPU is busy: using {threads} torch thread (faster here than {before})")
        yield threads


def _operators(task, init) -> dict:
    """The task's operators, with --init's non-measuring ones (block CS's Q) in their place."""
    operators = task.operators()
    if init is None:
        return operators
    from ..train.warm_start import operators_with_init

    init_op = (getattr(task, "names", None) or {}).get("init")  # block CS: Q, not used to measure
    measuring = {o for o in operators if o != init_op}
    operators, notes = operators_with_init(operators, init, measuring)
    for note in notes:
        print(note)
    return operators


def _start_model(model, task, init, args: argparse.Namespace) -> None:
    """Load --init's weights into the compiled model; with --fast, compile it now (timed)."""
    if init is not None:
        from ..train.warm_start import load_init

        load_init(model, init)
        print(f"initialised from {args.init} ({len(init.state)} tensors"
              + (f", imported from {init.saved['imported']['source_file']}" if "imported" in init.saved else "")
              + ")")
    if args.fast and not args.device.startswith("cuda"):
        from ..backends.fast import CPU_TRAINING_NOTE
        print(CPU_TRAINING_NOTE.replace("fast=True", "--fast"))
    elif args.fast:
        print(f"fast path: torch.compile cold start {_warm_up(model, task, args):.1f}s "
              "(first training step)")


def _steps(model, task, out: Path, args: argparse.Namespace) -> int | None:
    """--steps, else the resumed run's, else as many as fit --time-budget (None: the default)."""
    steps = args.steps
    if steps is None and args.resume:
        steps = _saved_steps(out)
    if steps is None and args.time_budget is not None:
        from ..train.budget import steps_for_budget

        steps = steps_for_budget(model, task, args.time_budget, args.batch_size, args.lr,
                                 args.eval_every, args.device)
        print(f"time budget {args.time_budget:g}s: about {steps} steps")
    return steps


def _train_config(args: argparse.Namespace, out: Path, steps: int | None):
    """The TrainConfig of the parsed options."""
    from ..train import TrainConfig

    return TrainConfig(lr=args.lr, schedule=args.schedule, batch_size=args.batch_size,
                       steps=DEFAULT_STEPS if steps is None else steps,
                       time_budget=args.time_budget, eval_every=args.eval_every,
                       layerwise=args.layerwise, device=args.device, seed=args.seed,
                       **({"stage_steps": args.stage_steps} if args.stage_steps else {}),
                       out_dir=str(out), resume=args.resume, amp=args.amp, tf32=args.tf32,
                       checkpoint_every=args.checkpoint_every)


def _report(name: str, result, out: Path) -> None:
    """The per-layer NMSE table, how the run ended and where its checkpoints and logs are."""
    print(layer_table({name: result.layer_nmse_db}))
    how = "completed" if result.stopped == "completed" else "stopped by the time budget"
    print(f"{how} after {result.steps}/{result.total_steps} steps in {result.elapsed:.0f}s; "
          f"test NMSE {result.layer_nmse_db[-1]:.2f} dB ("
          + (f"{result.initial_nmse_db[-1]:.2f} dB before training; " if result.initial_nmse_db else "")
          + f"best {result.best_nmse_db:.2f} dB at step {result.best_step})")
    print(f"checkpoints: {result.last_checkpoint}"
          + (f", {result.best_checkpoint}" if result.best_checkpoint else "")
          + f"; logs: {out / 'log.csv'}, {out / 'log.json'}")


def _check_gradients(program, allowed: bool) -> None:
    """A learnable the loss cannot train is an error (the first one, located), or with
    --allow-no-grad a warning per learnable."""
    import sys

    from ..compiler.gradflow import no_gradient
    found = no_gradient(program)
    if found and not allowed:
        err = found[0].warning(program, error=True)
        err.hint = ((err.hint + "; or ") if err.hint else "") + "pass --allow-no-grad to train anyway"
        raise err
    for f in found:
        print(f.warning(program), file=sys.stderr)


def _warm_up(model, task, args: argparse.Namespace) -> float:
    """Run one loss and backward pass so torch.compile compiles now; returns the seconds it took."""
    import time

    import torch

    bound = task.bind(model) if hasattr(task, "bind") else task
    dtype = next(model.parameters()).dtype if any(True for _ in model.parameters()) else None
    batch = {k: v.to(device=args.device, dtype=dtype if v.is_floating_point() else None)
             for k, v in bound.sample(args.batch_size, torch.Generator().manual_seed(0)).items()}
    t0 = time.perf_counter()
    loss = model.loss(batch)
    if loss.requires_grad:
        loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def _stage_steps(text: str) -> tuple[int, int, int]:
    """Three non-negative step counts, comma-separated."""
    try:
        steps = tuple(int(t) for t in text.split(","))
    except ValueError:
        steps = ()
    if len(steps) != 3 or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"expected three step counts like 1000,500,500, got {text!r}")
    return steps  # type: ignore[return-value]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register train."""
    p = sub.add_parser(
        "train", help="train a spec on your arrays (--data FILE) or the task that fits it "
        "(sparse coding, CS-MRI, block CS)",
        description="Compile a spec with its task's operators and train it with Adam, evaluating "
        "NMSE per layer on a fixed test set. With --data FILE any spec trains on the arrays in "
        "FILE (a held-out split is the test set). Otherwise the task is picked from what the spec "
        "declares: " + "; ".join(TASKS) + ". Prints the per-layer NMSE table and where checkpoints and logs "
        "are. Exit status 1 if training diverges.")
    add_spec_args(p)
    p.add_argument("--data", metavar="DIR|FILE", help="data directory (default: $UNROLL_DATA, else "
                   "built-in generated data; sparse coding reads DIR/sparse/D.mat, test codes and "
                   "extra operators DIR/sparse/NAME.npy), or a file of arrays (.npz, .pt, .mat) "
                   "named after the spec's inputs and targets, one row per sample, to train any "
                   "spec on (operators may be in the file too)")
    p.add_argument("--operator", action="append", default=[], metavar="NAME=FILE",
                   help="a fixed operator from a file (.npy, .npz, .pt, .mat: its only array, or "
                   "the one named NAME); repeatable, e.g. --operator W=W.npy")
    p.add_argument("--test-fraction", type=float, default=0.1, metavar="F",
                   help="with --data FILE: the fraction of samples held out for testing (default 0.1)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help=f"optimizer steps (default {DEFAULT_STEPS}, or as many as fit --time-budget)")
    p.add_argument("--time-budget", type=duration_arg, default=None, metavar="T",
                   help="stop cleanly after this long, e.g. 600s, 10m, 1h (checkpointed; --resume "
                   "continues); without --steps the step count is fitted to it")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument("--schedule", choices=("cosine", "step", "const"), default="cosine",
                   help="learning-rate schedule (default cosine)")
    p.add_argument("--layerwise", action="store_true",
                   help="layer-wise training (LISTA-CPSS): layer k alone, then layers 1..k, per k")
    p.add_argument("--stage-steps", type=_stage_steps, default=None, metavar="N1,N2,N3",
                   help="--layerwise: steps of the three stages per layer, at lr, lr/5 and lr/50 "
                        "(default 1000,500,500)")
    p.add_argument("--eval-every", type=int, default=100, metavar="N",
                   help="evaluate on the test set every N steps (default 100)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--float64", action="store_true", help="train in float64 (default float32)")
    p.add_argument("--out", metavar="DIR", help="run directory for checkpoints and logs "
                   "(default runs/<spec name>)")
    p.add_argument("--init", metavar="CK", default=None,
                   help="start from these weights: an imported paper checkpoint (unroll import), a "
                   "training checkpoint or a state dict; K defaults to the checkpoint's")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out (same settings needed)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run saved in --out (without it, or --resume, a folder holding "
                   "a run is refused)")
    p.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                   help="write last.pt every N steps (default 100; a kill loses at most N steps)")
    p.add_argument("--seed", type=int, default=0, help="random seed for data, batches and the blocks' initial weights "
                   "(default 0)")
    p.add_argument("--p", type=float, default=0.1,
                   help="sparse coding: probability of a non-zero code entry (default 0.1)")
    p.add_argument("--snr", type=float, default=None, metavar="DB",
                   help="sparse coding: measurement noise SNR in dB (default noiseless)")
    p.add_argument("--mask", type=int, default=None, metavar="PCT",
                   help="CS-MRI: sampling mask DIR/mri/masks/mask_PCT.mat (default 20)")
    p.add_argument("--size", type=int, default=None, metavar="S",
                   help="CS-MRI: block-average the 256x256 images to SxS (S divides 256)")
    p.add_argument("--ratio", type=float, default=None, metavar="PCT",
                   help="block CS: CS ratio in percent (default 25; 1 4 10 25 30 40 read DIR/cs_phi)")
    p.add_argument("--blocks", type=int, default=None, metavar="N",
                   help="block CS: training blocks cut from T91 (default 88912, as ISTA-Net)")
    p.add_argument("--fast", action="store_true",
                   help="run the layers under torch.compile (CUDA graphs on a GPU); prints the "
                        "compilation cost")
    p.add_argument("--grad", type=grad_arg, default="unroll", metavar="MODE",
                   help="how gradients flow through the K layers: unroll (default), checkpoint "
                        "(recompute each layer in backward: same gradients, memory flat in K), "
                        "truncated:T (backpropagate through the last T layers), implicit "
                        "(differentiate the fixed point of a shared map; memory independent of K)")
    p.add_argument("--amp", choices=("bf16",), default=None,
                   help="mixed precision: autocast matrix products to bfloat16")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matrix products on CUDA")
    p.add_argument("--allow-no-grad", action="store_true",
                   help="train even when a learnable gets no gradient (only reached through hard's "
                   "threshold, sign, ||.||_0, ...; `unroll check` names the op)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)
