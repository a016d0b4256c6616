"""`unroll demo`: the LISTA benchmark end to end, in a few minutes on a CPU.

Trains LISTA (zoo:lista, K=16) on sparse coding with A = D.mat from the data directory (or a
generated 250x500 Gaussian A), then compares its NMSE per layer with ISTA and FISTA (compiled from
the zoo, run 1000 iterations) on the same fixed test set; prints a table, saves a plot and JSON.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .api import compile as compile_spec
from .data import SparseCodingTask, resolve_data_dir
from .train import TrainConfig, evaluate_layers, train
from .train.budget import fastest_threads, steps_for_budget, torch_threads
from .zoo import pretrained

__all__ = ["DemoConfig", "run_demo", "demo_table", "plot_curves", "objective_curve"]

CHECKPOINTS = (16, 100, 1000)  # ISTA/FISTA iteration counts reported beside LISTA


@dataclass
class DemoConfig:
    """Settings of the demo; the defaults are the benchmark (K=16, p=0.1, noiseless)."""

    data: str | None = None
    time_budget: float = 180.0   # seconds of LISTA training (the baselines take extra)
    device: str = "cpu"
    out: str = "runs/demo"
    K: int = 16
    lr: float = 5e-4
    batch_size: int = 512
    steps: int | None = None       # default: as many as fit the time budget
    baseline_iters: int = 1000
    n_test: int | None = None      # generated test codes (default 1000; a file's codes are all used)
    seed: int = 0
    progress: bool = True
    pretrained: bool = False       # start from the shipped weights (unroll.zoo.pretrained) instead


def demo_table(lista: list[float], ista: list[float], fista: list[float]) -> str:
    """Per-layer NMSE (dB) of LISTA beside ISTA and FISTA, then the baselines at 16/100/1000."""
    lines = ["NMSE (dB) on the test set, lower is better",
             f"{'layer':>5} {'LISTA':>9} {'ISTA':>9} {'FISTA':>9}", "-" * 35]
    for k in range(1, len(lista) + 1):
        row = [lista[k - 1]] + [v[k - 1] if k <= len(v) else math.nan for v in (ista, fista)]
        lines.append(f"{k:>5} " + " ".join(f"{x:>9.2f}" for x in row))
    lines.append("")
    lines.append(f"{'iterations':>10} {'ISTA':>9} {'FISTA':>9}")
    for it in CHECKPOINTS:
        if it <= len(ista):
            lines.append(f"{it:>10} {ista[it - 1]:>9.2f} {fista[it - 1]:>9.2f}")
    lines.append(f"LISTA with {len(lista)} layers: {lista[-1]:.2f} dB")
    return "\n".join(lines)


@torch.no_grad()
def objective_curve(model, test: dict, batch_size: int = 100) -> list[float]:
    """Mean over the test set of the spec's cost terms (f + g) after every layer."""
    total = None
    n = next(iter(test.values())).shape[0]
    for i in range(0, n, batch_size):
        inputs = {k: test[k][i:i + batch_size] for k in model.input_names}
        chunk = model.objective(**inputs).double().sum(dim=1)
        total = chunk if total is None else total + chunk
    return [float(v) / n for v in total]


def plot_curves(curves: dict[str, list[float]], path: Path, title: str,
                ylabel: str = "NMSE (dB)", logy: bool = False) -> Path:
    """A metric against layer / iteration (log x axis), one line per method."""
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no global backend switch

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    styles = {"LISTA": dict(marker="o", ms=3, lw=2, color="#c0392b")}
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name, **styles.get(name, dict(lw=1.3)))
    ax.set_xscale("log")
    ax.set_xlabel("layer (LISTA) / iteration (ISTA, FISTA)")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path


def _fingerprint(task, test: dict, iters: int) -> str:
    """Hash of what the baseline curves depend on: A, the test set and the iteration count."""
    h = hashlib.sha256(task.A.tobytes())
    for k in sorted(test):
        h.update(k.encode() + test[k].double().numpy().tobytes())
    h.update(str(iters).encode())
    return h.hexdigest()


def _baselines(cfg: "DemoConfig", task, test: dict, cache: Path
               ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """ISTA and FISTA NMSE and objective per iteration on the test set (reused from `cache`)."""
    key = _fingerprint(task, test, cfg.baseline_iters)
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key and "objective" in saved:
            _say(f"ISTA, FISTA: reusing {cfg.baseline_iters}-iteration curves from {cache}")
            return saved["nmse_db"], saved["objective"]
    curves: dict[str, list[float]] = {}
    objective: dict[str, list[float]] = {}
    dev_test = {k: v.to(cfg.device) for k, v in test.items()}
    for name in ("ista", "fista"):
        t0 = time.monotonic()
        solver = compile_spec(f"zoo:{name}", K=cfg.baseline_iters, device=cfg.device, **task.operators())
        curves[name.upper()] = [float(v) for v in evaluate_layers(solver, dev_test, batch_size=100)]
        objective[name.upper()] = objective_curve(solver, dev_test)
        _say(f"{name.upper()}: {cfg.baseline_iters} iterations on the test set in "
             f"{time.monotonic() - t0:.0f}s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "nmse_db": curves, "objective": objective}),
                     encoding="utf-8")
    return curves, objective


def _say(text: str) -> None:
    print(text, flush=True)


def _train(cfg: DemoConfig, task, out: Path):
    """Train zoo:lista for the budget; returns the model and the TrainResult."""
    model = compile_spec("zoo:lista", K=cfg.K, device=cfg.device, **task.operators())
    steps = cfg.steps
    if steps is None:
        steps = steps_for_budget(model, task, cfg.time_budget, cfg.batch_size, cfg.lr, 100, cfg.device)
    _say(f"training LISTA (K={cfg.K}) on {cfg.device} for {steps} steps "
         f"(batch {cfg.batch_size}, Adam lr {cfg.lr:g}, cosine; budget {cfg.time_budget:.0f}s)")
    tc = TrainConfig(lr=cfg.lr, batch_size=cfg.batch_size, steps=steps, time_budget=cfg.time_budget,
                     eval_every=100, checkpoint_every=max(steps, 1), device=cfg.device,
                     seed=cfg.seed, out_dir=str(out / "lista"))
    result = train(model, task, tc, progress=cfg.progress)
    _say(f"trained {result.steps} steps in {result.elapsed:.0f}s")
    return model, result


def _pretrained(cfg: DemoConfig, data_dir, task):
    """The shipped LISTA weights (no training); a stand-in result with their per-layer NMSE."""
    from types import SimpleNamespace

    model = pretrained("lista", data=data_dir, device=cfg.device)
    rec = model.pretrained_record
    nmse = evaluate_layers(model, {k: v.to(cfg.device) for k, v in task.test_set().items()})
    _say(f"LISTA: shipped weights, K={rec['K']} ({rec['steps']} steps, "
         f"{rec.get('cpu_minutes', '?')} CPU-minutes of `{rec.get('command', 'unroll train')}`), "
         "no training")
    return model, SimpleNamespace(layer_nmse_db=nmse, steps=0, elapsed=0.0)


def run_demo(cfg: DemoConfig) -> dict:
    """Run the demo; returns the numbers it saved to `<out>/nmse.json`. On a CPU it runs with the
    faster of torch's thread count and 1 (a busy machine), and restores the count afterwards."""
    started = time.monotonic()
    data_dir, where = resolve_data_dir(cfg.data)
    _say(where)
    before = torch.get_num_threads()
    with torch_threads(fastest_threads() if cfg.device == "cpu" else before) as threads:
        if threads != before:
            _say(f"this CPU is busy: using {threads} torch thread (faster here than {before})")
        return _run(cfg, data_dir, started)


def _run(cfg: DemoConfig, data_dir: Path | None, started: float) -> dict:
    """The demo after the data directory is known: train (or load), baselines, table, plots, JSON."""
    out = Path(cfg.out)
    extra = {} if cfg.n_test is None else {"n_test": cfg.n_test}
    task = SparseCodingTask.from_data_dir(data_dir, p=0.1, seed=cfg.seed, **extra)
    _say(f"data: {task.describe()}")
    names = {"operator_names": ("A",), "input_names": ("y",), "target_names": ("x_star",)}
    task = task.bind(names)
    if cfg.pretrained:
        model, result = _pretrained(cfg, data_dir, task)
    else:
        model, result = _train(cfg, task, out)
    lista = [float(v) for v in result.layer_nmse_db]

    test = task.test_set()
    baselines, objectives = _baselines(cfg, task, test, out / "baselines.json")
    objectives = {"LISTA": objective_curve(model, {k: v.to(cfg.device) for k, v in test.items()}),
                  **objectives}
    n_test = next(iter(test.values())).shape[0]
    table = demo_table(lista, baselines["ISTA"], baselines["FISTA"])
    _say(table)
    plot = plot_curves({"LISTA": lista, **baselines}, out / "nmse.png",
                       f"sparse coding {task.n}x{task.m}, p={task.p:g}, {n_test} test codes")
    objective_plot = plot_curves(objectives, out / "objective.png",
                                 "objective 1/2 ||A x - y||^2 + lam ||x||_1 (test-set mean)",
                                 ylabel="objective", logy=True)
    numbers = {
        "data": task.describe(), "n_test": n_test, "K": cfg.K, "train_steps": result.steps,
        "train_seconds": round(result.elapsed, 1), "lr": cfg.lr, "batch_size": cfg.batch_size,
        "device": cfg.device, "nmse_db": {"LISTA": lista, **baselines}, "objective": objectives,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (out / "nmse.json").write_text(json.dumps(numbers, indent=1), encoding="utf-8")
    _say(f"plots: {plot}, {objective_plot}; numbers: {out / 'nmse.json'}; "
         f"LISTA checkpoints and logs: {out / 'lista'}")
    _say(f"demo took {numbers['total_seconds']:.0f}s")
    return numbers

