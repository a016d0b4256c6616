"""Generic training loop for compiled unrolled networks: schedules, layer-wise stages,
per-layer evaluation, CSV/JSON logs, atomic checkpoints and bit-identical resume.

The model is any module with the compiled-model contract (``input_names``, ``target_names``,
``K``, ``loss(batch, upto)``, ``forward(**inputs, return_layers, upto)``, ``layer_parameters(k)``,
``shared_parameters()``); the task provides ``sample(batch, generator)`` and ``test_set()``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import torch
from torch import nn

from .checkpoint import (BEST, LAST, CheckpointError, capture_rng_state, load_checkpoint, restore_rng_state,
                         save_checkpoint)
from .distributed import LossModule, World, all_mean, any_flag, setup, shard
from .logs import write_logs

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Stage",
    "TrainingDiverged",
    "plan_stages",
    "evaluate_layers",
    "load_model_state",
    "train",
]

SCHEDULES = ("cosine", "step", "const")
SEED_STRIDE = 1_000_003  # batch at global step s is drawn from torch.Generator(seed * SEED_STRIDE + s)
# Fields that determine the parameter trajectory: a resumed run must agree on all of them.
_TRAJECTORY_FIELDS = (
    "lr", "schedule", "step_every", "gamma", "batch_size", "steps", "epochs", "layerwise",
    "stage_steps", "stage_lr_factors", "grad_clip", "seed",
)


class TrainingDiverged(RuntimeError):
    """The loss or gradient became NaN/Inf; the model holds the last good checkpoint's weights."""

    def __init__(self, message: str, step: int, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class TrainConfig:
    """Everything that defines a training run; ``epochs`` (if set) overrides ``steps``.

    Layer-wise mode (LISTA-CPSS): for k = 1..K, train with the loss at layer k (``upto=k``) for
    ``stage_steps[i]`` steps at ``lr * stage_lr_factors[i]``: first layer k's own parameters
    (all of layers 1..k if layer k has none), then all parameters of layers 1..k, twice, at
    constant learning rates. ``schedule`` applies to the single stage of ordinary training.
    """

    lr: float = 1e-3
    schedule: str = "cosine"
    step_every: int | None = None  # 'step' schedule: decay period (default: a third of the stage)
    gamma: float = 0.1  # 'step' schedule: decay factor
    batch_size: int = 64
    steps: int = 1000
    epochs: int | None = None  # needs task.train_size; steps = epochs * ceil(train_size / batch_size)
    time_budget: float | None = None  # seconds for this invocation; stops cleanly and checkpoints
    eval_every: int = 100
    checkpoint_every: int = 500
    layerwise: bool = False
    stage_steps: tuple[int, int, int] = (1000, 500, 500)
    stage_lr_factors: tuple[float, float, float] = (1.0, 0.2, 0.02)
    grad_clip: float | None = None
    eval_batch_size: int = 1000
    device: str = "cpu"
    amp: str | None = None  # 'bf16': autocast matrix products to bfloat16 (loss of accuracy is logged)
    tf32: bool = False  # allow TF32 matrix products on CUDA
    seed: int = 0
    out_dir: str = "runs/train"
    resume: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for name in ("batch_size", "eval_every", "checkpoint_every", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.steps < 0 or (self.epochs is not None and self.epochs < 0):
            raise ValueError("steps and epochs must be non-negative")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        self.stage_steps = tuple(int(s) for s in self.stage_steps)  # type: ignore[assignment]
        self.stage_lr_factors = tuple(float(f) for f in self.stage_lr_factors)  # type: ignore[assignment]
        if len(self.stage_steps) != len(self.stage_lr_factors):
            raise ValueError("stage_steps and stage_lr_factors must have the same length")
        self.out_dir = str(self.out_dir)
        if self.amp not in (None, "bf16"):
            raise ValueError(f"amp must be None or 'bf16', got {self.amp!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (for checkpoints and JSON logs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(sorted(unknown))}")
        return cls(**dict(d))


@dataclass(frozen=True)
class Stage:
    """A run of ``steps`` optimizer steps with its own optimizer, loss depth and parameter scope."""

    name: str
    steps: int
    lr: float
    upto: int | None  # loss/forward depth; None = all K layers
    scope: str  # 'all' | 'layer' (layer `upto`'s own) | 'upto' (shared + layers 1..upto)
    schedule: str


@dataclass
class TrainResult:
    """What a run produced: where it stopped, the final per-layer test NMSE and the files."""

    steps: int
    total_steps: int
    stopped: str  # 'completed' | 'time_budget'
    final_loss: float | None
    layer_nmse_db: list[float]
    best_nmse_db: float
    best_step: int
    out_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    elapsed: float
    resumed_from: int | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    initial_nmse_db: list[float] = field(default_factory=list)  # per layer, before training


def plan_stages(config: TrainConfig, K: int, train_size: int | None = None) -> list[Stage]:
    """The run as a list of stages (one for ordinary training, 3·K for layer-wise)."""
    if config.layerwise:
        stages = []
        for k in range(1, K + 1):
            for i, (n, f) in enumerate(zip(config.stage_steps, config.stage_lr_factors)):
                if n > 0:
                    scope = "layer" if i == 0 else "upto"
                    stages.append(Stage(f"layer {k}/{K} stage {i + 1}", n, config.lr * f, k, scope, "const"))
        return stages
    steps = config.steps
    if config.epochs is not None:
        if not train_size:
            raise ValueError("epochs needs a task with a finite train_size; give steps instead")
        steps = config.epochs * math.ceil(train_size / config.batch_size)
    return [Stage("train", steps, config.lr, None, "all", config.schedule)]


def _dedupe(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            out.append(p)
    return out


def _stage_parameters(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    """Parameters a stage optimizes, following the per-layer tying the model reports."""
    if stage.scope == "all":
        return _dedupe(model.parameters())
    assert stage.upto is not None
    if stage.scope == "layer":
        own = _dedupe(model.layer_parameters(stage.upto))
        if own:
            return own
    params = list(model.shared_parameters())
    for j in range(1, stage.upto + 1):
        params.extend(model.layer_parameters(j))
    return _dedupe(params)


def _make_optimizer(model: nn.Module, stage: Stage, config: TrainConfig):
    params = _stage_parameters(model, stage)
    if not params:
        raise ValueError(f"{stage.name}: the model has no trainable parameters to optimize")
    opt = torch.optim.Adam(params, lr=stage.lr)
    sched: torch.optim.lr_scheduler.LRScheduler
    if stage.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(stage.steps, 1))
    elif stage.schedule == "step":
        every = config.step_every or max(stage.steps // 3, 1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=every, gamma=config.gamma)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return params, opt, sched


def _float_dtype(model: nn.Module) -> torch.dtype | None:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def _to_device(batch: Mapping[str, Any], device: torch.device, dtype: torch.dtype | None) -> dict[str, Any]:
    """Move tensors to ``device``; real floating tensors take the model's parameter dtype and
    complex ones its complex counterpart (complex128 for a float64 model)."""
    cdtype = {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(dtype)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device=device, dtype=dtype if v.is_floating_point() else
                     cdtype if v.is_complex() else None)
        out[k] = v
    return out


@torch.no_grad()
def evaluate_layers(model: nn.Module, test_set: Mapping[str, torch.Tensor], batch_size: int = 1000) -> list[float]:
    """NMSE (dB) of the output after each layer 1..K against the first target, over the test set."""
    target_name = model.target_names[0]
    missing = [n for n in (*model.input_names, target_name) if n not in test_set]
    if missing:
        raise KeyError(f"test set lacks {', '.join(missing)} (has {', '.join(test_set)})")
    target = test_set[target_name]
    was_training = model.training
    model.eval()
    try:
        err: list[torch.Tensor] | None = None
        ref = torch.zeros((), dtype=torch.float64)
        for i in range(0, target.shape[0], batch_size):
            inputs = {n: test_set[n][i : i + batch_size] for n in model.input_names}
            t = target[i : i + batch_size]
            _, layers = model(**inputs, return_layers=True)
            chunk = [(l.reshape(t.shape) - t).abs().double().pow(2).sum().cpu() for l in layers]
            err = chunk if err is None else [a + b for a, b in zip(err, chunk)]
            ref = ref + t.abs().double().pow(2).sum().cpu()
    finally:
        model.train(was_training)
    if err is None or not ref.item() > 0:
        raise ValueError("the test set is empty or its targets are all zero: NMSE is undefined")
    return [_db(e.item() / ref.item()) for e in err]


def _db(ratio: float) -> float:
    """10·log10(ratio): NaN for a non-finite ratio (never a perfect score), −inf only for exactly 0."""
    if not math.isfinite(ratio):
        return float("nan")
    return 10.0 * math.log10(ratio) if ratio > 0 else float("-inf")


def _finite_weights(model: nn.Module) -> bool:
    """Whether every parameter and buffer of the model is finite."""
    return all(bool(torch.isfinite(t).all()) for t in (*model.parameters(), *model.buffers())
               if t.is_floating_point() or t.is_complex())


def load_model_state(model: nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model`` (weights_only) and return the checkpoint."""
    ckpt = load_checkpoint(path)
    model.load_state_dict(ckpt["model"])
    return ckpt


def _check_resumable(saved: Mapping[str, Any], config: TrainConfig, K: int, saved_K: int) -> None:
    now = config.to_dict()
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}"
        for k in _TRAJECTORY_FIELDS
        if _norm(saved.get(k)) != _norm(now[k])
    ]
    if saved_K != K:
        diffs.append(f"K: checkpoint {saved_K}, now {K}")
    if diffs:
        raise ValueError(
            "cannot resume: the run in this out_dir used different settings ("
            + "; ".join(diffs)
            + "). Use the same settings, another out_dir, or resume=False to start over."
        )


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, (list, tuple)) else v


def train(model: nn.Module, task: Any, config: TrainConfig, progress: bool = True) -> TrainResult:
    """Train ``model`` on ``task`` per ``config``; logs and checkpoints go to ``config.out_dir``.

    Raises TrainingDiverged on NaN/Inf (weights restored from the last good checkpoint). TF32
    (``config.tf32``, CUDA only) is allowed for this run and switched back afterwards.
    """
    started = time.monotonic()
    if config.layerwise and getattr(getattr(model, "_run", None), "mode", None) == "implicit":
        raise ValueError("layer-wise training needs the loss at each layer (upto=k), but grad='implicit' "
                         "differentiates the fixed point of the whole iteration: use grad='unroll' or "
                         "'checkpoint'")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} requested but CUDA is not available")
    world = setup(config.device)
    if world.distributed and config.device == "cuda":  # one GPU per process
        config = dataclasses.replace(config, device=f"cuda:{int(os.environ.get('LOCAL_RANK', world.rank))}")
    with _tf32(config.tf32 and torch.device(config.device).type == "cuda"):
        run = _Run(model, task, config, world, started)
        run.resume()
        return run.loop(progress)


@contextlib.contextmanager
def _tf32(allowed: bool) -> Iterator[None]:
    """TF32 matrix products allowed inside the block (when ``allowed``); the flags restored after."""
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    before = [f.allow_tf32 for f in flags]
    if allowed:
        for f in flags:
            f.allow_tf32 = True
    try:
        yield
    finally:
        for f, b in zip(flags, before):
            f.allow_tf32 = b


class _Run:
    """One training run's state (position, stage and optimizer, log rows, best score) and its
    parts: ``resume``, ``step``, ``evaluate``, ``checkpoint``; ``loop`` drives them."""

    def __init__(self, model: nn.Module, task: Any, cfg: TrainConfig, world: World, started: float) -> None:
        self.cfg, self.world, self.started = cfg, world, started
        self.device = torch.device(cfg.device)
        self.task = task.bind(model) if hasattr(task, "bind") else task
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.last_path, self.best_path = self.out / LAST, self.out / BEST
        model.to(self.device)
        self.model, self.dtype = model, _float_dtype(model)
        self.project = getattr(model, "project_", None)
        self.runner: nn.Module = LossModule(model)
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel
            self.runner = DistributedDataParallel(self.runner, find_unused_parameters=cfg.layerwise)
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if cfg.amp == "bf16"
                         else contextlib.nullcontext())
        self.K = int(model.K)
        self.stages = plan_stages(cfg, self.K, getattr(self.task, "train_size", None))
        self.ends = [sum(s.steps for s in self.stages[: i + 1]) for i in range(len(self.stages))]
        self.total = self.ends[-1] if self.ends else 0
        self.test = _to_device(self.task.test_set(), self.device, self.dtype)
        self.describe = self.task.describe() if hasattr(self.task, "describe") else type(self.task).__name__
        self.done, self.rows, self.best, self.best_step = 0, [], math.inf, -1
        self.loss_sum, self.loss_count, self.last_loss = 0.0, 0, None
        self.resumed_from: int | None = None
        self.stage_idx, self.params, self.opt, self.sched = 0, [], None, None
        self.layer_nmse: list[float] = []
        self.initial: list[float] = []  # per-layer test NMSE before the first step

    def resume(self) -> None:
        """Continue from last.pt when ``resume`` is set and it exists (same settings required), else
        save a fresh last.pt, so a known-good state exists from the start; open the current stage."""
        ckpt = self._load_last() if self.cfg.resume and self.last_path.exists() else None
        self.stage_idx = self._stage_at(self.done)
        if self.stage_idx < len(self.stages):
            self._open_stage(self.stage_idx)
            if ckpt is not None and ckpt.get("stage") == self.stage_idx and ckpt.get("optimizer") is not None:
                self.opt.load_state_dict(ckpt["optimizer"])
                self.sched.load_state_dict(ckpt["scheduler"])
        if ckpt is None:
            if self.world.main:  # where training starts from, for "before -> after"
                self.initial = evaluate_layers(self.model, self.test, self.cfg.eval_batch_size)
            self.checkpoint(self.last_path)
        if self.world.distributed:
            torch.distributed.barrier()
        self.layer_nmse = list(self.rows[-1]["layer_nmse_db"]) if self.rows else []

    def _load_last(self) -> dict[str, Any]:
        """Restore weights, RNG, position, log and scores from last.pt; CheckpointError if unusable."""
        ckpt = load_checkpoint(self.last_path)
        try:
            _check_resumable(ckpt["config"], self.cfg, self.K, int(ckpt["K"]))
            self.model.load_state_dict(ckpt["model"])
            restore_rng_state(ckpt["rng"])
            self.done, self.rows = int(ckpt["step"]), list(ckpt["log"])
            self.best, self.best_step = float(ckpt["best_nmse_db"]), int(ckpt["best_step"])
            self.loss_sum, self.loss_count = float(ckpt["loss_sum"]), int(ckpt["loss_count"])
            self.last_loss = ckpt["last_loss"]
            self.initial = list(ckpt.get("initial_nmse_db") or [])  # absent in older checkpoints
        except (KeyError, TypeError, RuntimeError, IndexError, AttributeError) as e:
            what = f"lacks the entry {e.args[0]!r}" if isinstance(e, KeyError) else (
                f"does not fit this model or run ({str(e).splitlines()[0][:200]})")
            raise CheckpointError(f"{self.last_path}: cannot resume: the checkpoint {what}") from None
        if not 0 <= self.done <= self.total:
            raise CheckpointError(f"{self.last_path}: cannot resume: it claims step {self.done} of a "
                                  f"{self.total}-step run")
        if not _finite_weights(self.model):
            raise CheckpointError(f"{self.last_path}: cannot resume: the saved weights are not finite")
        self.resumed_from = self.done
        return ckpt

    def _stage_at(self, s: int) -> int:
        return next((i for i, e in enumerate(self.ends) if s < e), len(self.stages))

    def _open_stage(self, i: int) -> None:
        self.params, self.opt, self.sched = _make_optimizer(self.model, self.stages[i], self.cfg)

    def loop(self, progress: bool) -> TrainResult:
        """Step until done or out of time, evaluating and checkpointing on their schedules."""
        from tqdm.auto import tqdm

        cfg, stopped = self.cfg, "completed"
        bar = tqdm(total=self.total, initial=self.done, disable=not (progress and self.world.main),
                   dynamic_ncols=True, desc="train")
        try:
            while self.done < self.total:
                over_time = self.step(bar)
                if (self.done % cfg.eval_every == 0 or self.done == self.total) and self.world.main:
                    self.evaluate(bar)
                if self.done % cfg.checkpoint_every == 0 or self.done == self.total or over_time:
                    self.checkpoint(self.last_path)
                if over_time and self.done < self.total:
                    stopped = "time_budget"  # evaluated in result(), off the logging cycle
                    self.layer_nmse = []
                    break
        finally:
            bar.close()
        return self.result(stopped)

    def step(self, bar: Any) -> bool:
        """One optimizer step (opening the next stage when due); returns whether time is up."""
        cfg = self.cfg
        if self.done >= self.ends[self.stage_idx]:
            self.stage_idx = self._stage_at(self.done)
            self._open_stage(self.stage_idx)
        stage = self.stages[self.stage_idx]
        if len(self.stages) > 1:
            bar.set_description(stage.name)
        gen = torch.Generator().manual_seed(cfg.seed * SEED_STRIDE + self.done)
        batch = _to_device(shard(self.task.sample(cfg.batch_size, gen), self.world), self.device, self.dtype)
        self.model.train()
        with self.autocast:
            loss = self.runner(batch, upto=stage.upto)
        loss_value = all_mean(float(loss.detach()), self.world)
        if not math.isfinite(loss_value):
            self._diverge(self.done, f"loss is {loss_value}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip if cfg.grad_clip else math.inf)
        if not math.isfinite(float(gnorm)):
            self._diverge(self.done, f"gradient norm is {float(gnorm)}")
        self.opt.step()
        if self.project is not None:
            self.project()  # projected constraints (positive, unit) back into their sets
        self.sched.step()
        self.done += 1
        self.loss_sum, self.loss_count, self.last_loss = self.loss_sum + loss_value, self.loss_count + 1, loss_value
        bar.update(1)
        over_time = any_flag(cfg.time_budget is not None
                             and time.monotonic() - self.started > cfg.time_budget, self.world)
        if ((self.done % cfg.eval_every == 0 or self.done == self.total or over_time)
                and not _finite_weights(self.model)):
            self._diverge(self.done - 1, "the weights are not finite after the update", updated=True)
        return over_time

    def evaluate(self, bar: Any) -> None:
        """Per-layer test NMSE now: a log row, best.pt when it improves, the logs rewritten."""
        self.layer_nmse = nmse = evaluate_layers(self.model, self.test, self.cfg.eval_batch_size)
        if not math.isfinite(nmse[-1]) and nmse[-1] != float("-inf"):
            self._diverge(self.done - 1, f"the test NMSE is {nmse[-1]} (the outputs are not finite)",
                          updated=True)
        self.rows.append({
            "step": self.done,
            "stage": self.stages[self.stage_idx].name,
            "lr": self.opt.param_groups[0]["lr"],
            "train_loss": self.loss_sum / max(self.loss_count, 1),
            "test_nmse_db": nmse[-1],
            "layer_nmse_db": nmse,
            **{f"nmse_db_L{k + 1}": v for k, v in enumerate(nmse)},
        })
        self.loss_sum, self.loss_count = 0.0, 0
        bar.set_postfix(loss=f"{self.rows[-1]['train_loss']:.3g}", nmse_db=f"{nmse[-1]:.2f}")
        self._keep_if_best(nmse[-1])
        write_logs(self.out, self.rows, self.meta("running"))

    def _keep_if_best(self, score: float) -> None:
        """Record a final-layer NMSE that beats the best so far, and save it as best.pt."""
        if score < self.best:
            self.best, self.best_step = score, self.done
            self.checkpoint(self.best_path)

    def checkpoint(self, path: Path) -> None:
        """Save the whole run state to ``path``: one writer (rank 0), every rank reads the file."""
        if self.world.main:
            save_checkpoint(path, self.payload())

    def payload(self) -> dict[str, Any]:
        """What a checkpoint holds: enough to resume bit-identically."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict() if self.opt is not None else None,
            "scheduler": self.sched.state_dict() if self.sched is not None else None,
            "stage": self.stage_idx,
            "step": self.done,
            "K": self.K,
            "rng": capture_rng_state(),
            "log": self.rows,
            "config": self.cfg.to_dict(),
            "best_nmse_db": self.best,
            "best_step": self.best_step,
            "loss_sum": self.loss_sum,
            "loss_count": self.loss_count,
            "last_loss": self.last_loss,
            "initial_nmse_db": self.initial,
        }

    def meta(self, status: str) -> dict[str, Any]:
        """The header of log.json."""
        return {"config": self.cfg.to_dict(), "task": self.describe, "K": self.K, "total_steps": self.total,
                "status": status, "initial_layer_nmse_db": self.initial}

    def result(self, stopped: str) -> TrainResult:
        """The final per-layer NMSE (evaluated now if the last step did not), final logs, the result."""
        if not self.layer_nmse:
            self.layer_nmse = evaluate_layers(self.model, self.test, self.cfg.eval_batch_size)
            self._keep_if_best(self.layer_nmse[-1])  # a stop may come before any scheduled evaluation
        status = ("completed" if stopped == "completed"
                  else f"stopped by time budget at step {self.done}/{self.total}")
        if self.world.main:
            write_logs(self.out, self.rows, self.meta(status))
        if self.world.distributed:
            torch.distributed.barrier()
        return TrainResult(
            steps=self.done,
            total_steps=self.total,
            stopped=stopped,
            final_loss=self.last_loss,
            layer_nmse_db=self.layer_nmse,
            best_nmse_db=self.best,
            best_step=self.best_step,
            out_dir=self.out,
            last_checkpoint=self.last_path,
            best_checkpoint=self.best_path if self.best_path.exists() else None,
            elapsed=time.monotonic() - self.started,
            resumed_from=self.resumed_from,
            log=self.rows,
            initial_nmse_db=self.initial,
        )

    def _diverge(self, step: int, what: str, updated: bool = False) -> None:
        """Restore the last good weights, record the failure in the logs and raise TrainingDiverged."""
        stage = self.stages[self.stage_idx]
        good = load_model_state(self.model, self.last_path)
        advice = ("Try a smaller learning rate (--lr), gradient clipping, or float64." if step > 0 or updated
                  else "This happened before any update, so the learning rate is not the cause: check "
                  "the data and operators for NaN/Inf or zeros, and the options (e.g. --snr).")
        message = (
            f"training diverged at step {step + 1} ({stage.name}, lr {stage.lr:g}): {what}. "
            f"The model was restored from the last good checkpoint {self.last_path} (step {int(good['step'])}), "
            f"which is kept. {advice}"
        )
        write_logs(self.out, self.rows, self.meta(f"diverged: {message}"))
        raise TrainingDiverged(message, step=step + 1, checkpoint=self.last_path)
