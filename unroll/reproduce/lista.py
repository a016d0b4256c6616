"""Reproduce LISTA's Table 1 (Gregor & LeCun, ICML 2010): how well LISTA with 1, 3 and 7 layers
approximates the optimal sparse code Z* of natural image patches, against FISTA's iterations.

One spec family does everything: ``zoo:fista`` (λ set by the command) learns the dictionary with an
alternating scheme and gives the targets Z* run to convergence; ``zoo:lista`` with Z* as its target
``x_star`` is trained by ``unroll.train`` for each K; the same compiled FISTA gives the error curve.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import zoo
from ..api import compile as compile_spec
from ..data import resolve_data_dir
from ..data.patches import PatchCodeTask, make_patches
from ..train import TrainConfig, train
from ..train.budget import steps_for_budget
from .lista_codes import (cached, digest, fista_errors, half_sq_error, learn_dictionary, solve_codes,
                          with_consts)

__all__ = ["PAPER", "ListaConfig", "reproduce_lista", "format_table", "plot_curves", "add_arguments",
           "run_command"]

# Gregor & LeCun 2010, Table 1: ½‖Z* − Z‖² averaged over test patches, and FISTA's iterations to match LISTA-1.
PAPER: dict[int, dict[str, Any]] = {
    100: {"fista": {1: 21.0}, "lista": {1: 1.50, 3: 0.98, 7: 0.52}, "fista_iters_to_match_lista1": 18},
    400: {"fista": {1: 22.0}, "lista": {1: 2.45, 3: 2.12, 7: 1.62}, "fista_iters_to_match_lista1": 35},
}
PAPER_NAME = "Gregor & LeCun, Learning Fast Approximations of Sparse Coding, ICML 2010, Table 1"


@dataclass
class ListaConfig:
    """One reproduction; ``budget_s`` is LISTA training time per dictionary size, split over the K in
    proportion to K (deeper networks take longer per step)."""

    atoms: tuple[int, ...] = (100, 400)
    layers: tuple[int, ...] = (1, 3, 7)
    budget_s: float = 600.0
    data_dir: str | None = None
    out_dir: str = "runs/reproduce_lista"
    cache_dir: str | None = None  # default: out_dir/cache
    patch: int = 10
    n_train: int = 10000
    n_test: int = 1000
    lam: float = 0.5
    target_iters: int = 1000
    curve_iters: int = 200
    dict_iters: int = 20
    dict_batch: int = 1024
    dict_fista_iters: int = 100
    batch_size: int = 256
    lr: float = 3e-3
    device: str = "cpu"
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        self.atoms, self.layers = tuple(int(a) for a in self.atoms), tuple(sorted({int(k) for k in self.layers}))
        checks = {"--atoms": min(self.atoms, default=0) >= 1, "--layers": min(self.layers, default=0) >= 1,
                  "--lam": self.lam > 0, "--patch": self.patch >= 2, "--budget": self.budget_s > 0,
                  "--train-patches": self.n_train >= 1, "--test-patches": self.n_test >= 1,
                  "--target-iters": self.target_iters >= 2, "--curve-iters": self.curve_iters >= 1,
                  "--dict-iters": self.dict_iters >= 1, "--batch-size": self.batch_size >= 1, "--lr": self.lr > 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"reproduce lista: {', '.join(bad)} must be positive (atoms and layers at least one "
                             "value of 1 or more, patch at least 2, target iterations at least 2)")


_CACHE_VERSION = 1  # bump when the dictionary learning or the target computation changes


def _fista_spec_key() -> str:
    return digest(_CACHE_VERSION, zoo.path("fista").read_text(encoding="utf-8"))


def _dictionary(cfg: ListaConfig, train: np.ndarray, m: int, log: Callable[[str], None]) -> dict[str, Any]:
    key = digest(train, m, cfg.lam, cfg.dict_iters, cfg.dict_batch, cfg.dict_fista_iters, cfg.seed, _fista_spec_key())

    def compute() -> dict[str, np.ndarray]:
        D, hist = learn_dictionary(train, m, cfg.lam, cfg.dict_iters, cfg.dict_batch, cfg.dict_fista_iters,
                                   seed=cfg.seed + m, log=log)
        return {"D": D, "objective": np.array([h["objective"] for h in hist])}

    arrays, hit = cached(_cache_dir(cfg), "dictionary", key, compute)
    log(f"  dictionary {train.shape[1]}x{m} {'read from the cache' if hit else 'learned'} "
        f"({cfg.dict_iters} iterations of batch {cfg.dict_batch}, FISTA-{cfg.dict_fista_iters} coding); "
        f"last batch objective {arrays['objective'][-1]:.4f}")
    return arrays


def _targets(cfg: ListaConfig, D: np.ndarray, X: np.ndarray, which: str, log: Callable[[str], None]) -> tuple[np.ndarray, dict]:
    key = digest(D, X, cfg.lam, cfg.target_iters, "float64", _fista_spec_key())

    def compute() -> dict[str, np.ndarray]:
        Z, stats = solve_codes(D, X, cfg.lam, cfg.target_iters, torch.float64)
        assert stats is not None
        return {"Z": Z, "stats": np.array([stats.rel_change, stats.max_rel_change, stats.kkt, stats.nonzero_fraction])}

    t0 = time.monotonic()
    arrays, hit = cached(_cache_dir(cfg), f"targets-{which}", key, compute)
    rel, worst, kkt, nnz = (float(v) for v in arrays["stats"])
    info = {"K": cfg.target_iters, "rel_change": rel, "max_rel_change": worst, "kkt_violation": kkt,
            "nonzero_fraction": nnz, "patches": int(X.shape[0]), "cached": hit}
    log(f"  Z* for {X.shape[0]} {which} patches: zoo:fista K={cfg.target_iters} "
        f"({'cache' if hit else f'{time.monotonic() - t0:.0f} s'}), final relative change {rel:.2e} "
        f"(worst patch {worst:.2e}), KKT violation {kkt:.2e}, non-zeros {100 * nnz:.1f}%")
    return arrays["Z"], info


def _cache_dir(cfg: ListaConfig) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.out_dir) / "cache"


def _train_lista(cfg: ListaConfig, D: np.ndarray, task: Any, K: int, budget: float, out: Path,
                 log: Callable[[str], None]) -> tuple[torch.nn.Module, dict[str, Any]]:


    model = compile_spec(with_consts("zoo:lista", lam=cfg.lam), K=K, A=D)
    eval_every = 500
    steps = steps_for_budget(model, task, budget, cfg.batch_size, cfg.lr, eval_every, cfg.device)
    tc = TrainConfig(lr=cfg.lr, schedule="cosine", batch_size=cfg.batch_size, steps=steps, time_budget=budget,
                     eval_every=min(eval_every, steps), checkpoint_every=steps, device=cfg.device,
                     seed=cfg.seed, out_dir=str(out))
    result = train(model, task, tc, progress=cfg.progress)
    model.cpu().eval()
    return model, {"steps": result.steps, "planned_steps": steps, "seconds": round(result.elapsed, 1),
                   "stopped": result.stopped, "checkpoint": str(result.last_checkpoint)}


@torch.no_grad()
def _lista_error(model: torch.nn.Module, X: np.ndarray, Z: np.ndarray) -> float:
    return half_sq_error(model(y=torch.as_tensor(X, dtype=torch.float32)), Z)


def _first_at_or_below(curve: list[float], level: float) -> int | None:
    return next((k + 1 for k, e in enumerate(curve) if e <= level), None)


def _run_atoms(cfg: ListaConfig, patches: Any, m: int, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"m = {m} atoms")
    D = _dictionary(cfg, patches.train, m, log)["D"]
    z_train, info_train = _targets(cfg, D, patches.train, "training", log)
    z_test, info_test = _targets(cfg, D, patches.test, "test", log)
    curve = fista_errors(D, patches.test, z_test, cfg.lam, cfg.curve_iters)
    ref = 0.5 * float(np.mean(np.sum(z_test**2, axis=1)))
    task = PatchCodeTask(patches.train, z_train, patches.test, z_test, source=patches.source)
    lista, lista_train, training = {}, {}, {}
    total_k = sum(cfg.layers)
    probe = np.random.default_rng(cfg.seed).choice(len(patches.train), min(len(patches.train), len(patches.test)),
                                                   replace=False)
    for K in cfg.layers:
        budget = cfg.budget_s * K / total_k
        model, training[str(K)] = _train_lista(cfg, D, task, K, budget, Path(cfg.out_dir) / f"m{m}_lista{K}", log)
        lista[str(K)] = _lista_error(model, patches.test, z_test)
        lista_train[str(K)] = _lista_error(model, patches.train[probe], z_train[probe])
        t = training[str(K)]
        log(f"  LISTA-{K}: test error {lista[str(K)]:.4f} (relative {lista[str(K)] / ref:.4f}; on training "
            f"patches {lista_train[str(K)]:.4f}) after {t['steps']} steps in {t['seconds']:.0f} s")
    first = str(min(cfg.layers))
    match = _first_at_or_below(curve, lista[first]) if first == "1" else None
    return {
        "lista": lista,
        "fista": {str(k + 1): e for k, e in enumerate(curve)},
        "fista_iters_to_match_lista1": match,
        "lista_relative": {k: v / ref for k, v in lista.items()},
        "fista_relative": {str(k + 1): e / ref for k, e in enumerate(curve)},
        "lista_train_error": lista_train,
        "mean_half_sq_zstar": ref,
        "paper": {"lista": {str(k): v for k, v in PAPER.get(m, {}).get("lista", {}).items()},
                  "fista": {str(k): v for k, v in PAPER.get(m, {}).get("fista", {}).items()},
                  "fista_iters_to_match_lista1": PAPER.get(m, {}).get("fista_iters_to_match_lista1")},
        "targets": {"train": info_train, "test": info_test},
        "training": training,
    }


def reproduce_lista(cfg: ListaConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every dictionary size; returns the report (also written to out_dir/results.json, with the plot)."""
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {cfg.device!r} requested but CUDA is not available")
    started = time.monotonic()
    data_dir, where = resolve_data_dir(cfg.data_dir)
    log(where)
    patches = make_patches(data_dir, cfg.patch, cfg.n_train, cfg.n_test, seed=cfg.seed)
    log(patches.source)
    log(f"preprocessing: {patches.preprocessing}")
    log(f"lambda = {cfg.lam:g} (lasso ½‖D z − x‖² + λ‖z‖₁ on the preprocessed patches)")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atoms = {str(m): _run_atoms(cfg, patches, m, log) for m in cfg.atoms}
    report = {
        "atoms": atoms,
        "preprocessing": patches.preprocessing,
        "lambda": cfg.lam,
        "nonzero_fraction": {m: a["targets"]["test"]["nonzero_fraction"] for m, a in atoms.items()},
        "error": "½‖Z* − Z‖² averaged over test patches (relative: divided by the mean ½‖Z*‖²)",
        "data": patches.source,
        "paper": PAPER_NAME,
        "config": asdict(cfg),
        "device": cfg.device if cfg.device != "cpu" else
        f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "seconds": round(time.monotonic() - started, 1),
    }
    report["plot"] = str(plot_curves(report, out / "fista_vs_lista.png"))
    _write_json(out / "results.json", report)
    return report


def _write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _match_words(a: dict[str, Any]) -> str:
    n = a.get("fista_iters_to_match_lista1")
    return str(n) if n else f"> {len(a['fista'])}"


def plot_curves(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """FISTA's test error against its iterations, one panel per dictionary size, LISTA-K as levels."""
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no global backend switch

    atoms = report["atoms"]
    fig = Figure(figsize=(5.2 * len(atoms), 4))
    axes = fig.subplots(1, len(atoms), squeeze=False)
    for ax, (m, a) in zip(axes[0], atoms.items()):
        curve = [a["fista"][str(k)] for k in range(1, len(a["fista"]) + 1)]
        ax.loglog(range(1, len(curve) + 1), curve, color="black", label="FISTA")
        for i, (K, e) in enumerate(sorted(a["lista"].items(), key=lambda kv: int(kv[0]))):
            color = f"C{i}"
            ax.axhline(e, color=color, ls="--", lw=1)
            ax.plot([int(K)], [e], "o", color=color, label=f"LISTA-{K} ({e:.3g})")
            hit = _first_at_or_below(curve, e)
            if hit is not None:
                ax.plot([hit], [curve[hit - 1]], "x", color=color, ms=8)
        ax.set_title(f"m = {m}: FISTA reaches LISTA-1 after {_match_words(a)} iterations" if "1" in a["lista"]
                     else f"m = {m}")
        ax.set_xlabel("FISTA iterations / LISTA layers")
        ax.set_ylabel("test error ½‖Z* − Z‖²")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def format_table(report: dict[str, Any]) -> str:
    """Table 1 side by side: the paper's error and ours (absolute and relative) per dictionary size."""
    atoms = report["atoms"]
    cols = list(atoms)
    head = f"{'':<30}" + "".join(f"{'m = ' + m:^30}" for m in cols)
    sub = f"{'':<30}" + "".join(f"{'paper':>9}{'ours':>10}{'ours rel':>11}" for _ in cols)
    lines = [head, sub, "-" * len(sub)]

    def row(label: str, kind: str, k: str) -> str:
        cells = ""
        for m in cols:
            a = atoms[m]
            ours = a[kind].get(k)
            paper = a["paper"][kind].get(k)
            rel = a[f"{kind}_relative"].get(k)
            cells += (f"{paper if paper is not None else '-':>9}" + (f"{ours:>10.4g}{rel:>11.4f}" if ours is not None
                                                                     else f"{'-':>10}{'-':>11}"))
        return f"{label:<30}{cells}"

    ks = sorted({k for a in atoms.values() for k in a["lista"]}, key=int)
    for k in ks:
        lines.append(row(f"FISTA, {k} iteration{'s' if k != '1' else ''}", "fista", k))
    for k in ks:
        lines.append(row(f"LISTA, {k} layer{'s' if k != '1' else ''}", "lista", k))
    match = "".join(f"{str(a['paper']['fista_iters_to_match_lista1'] or '-'):>9}"
                    f"{_match_words(a) if '1' in a['lista'] else '-':>10}{'':>11}" for a in atoms.values())
    lines.append(f"{'FISTA iterations to LISTA-1':<30}{match}")
    lines.append("-" * len(sub))
    lines.append(f"error: {report['error']}; mean ½‖Z*‖²: "
                 + ", ".join(f"{a['mean_half_sq_zstar']:.4g} (m = {m})" for m, a in atoms.items()))
    lines.append(f"lambda {report['lambda']:g}; non-zeros in Z*: "
                 + ", ".join(f"{100 * v:.1f}% (m = {m})" for m, v in report["nonzero_fraction"].items()))
    t = next(iter(atoms.values()))["targets"]["test"]
    lines.append(f"Z*: zoo:fista, K = {t['K']}; final relative change "
                 + ", ".join(f"{a['targets']['test']['rel_change']:.1e} (m = {m})" for m, a in atoms.items()))
    lines.append(f"preprocessing: {report['preprocessing']}")
    lines.append(f"data: {report['data']}")
    return "\n".join(lines)


def add_arguments(p: Any) -> None:
    """The LISTA options of ``unroll reproduce lista`` (beside the shared --budget, --data, --out, ...)."""
    p.add_argument("--atoms", type=int, nargs="+", default=None, metavar="M",
                   help="lista: dictionary sizes (default 100 400, as the paper)")
    p.add_argument("--layers", type=int, nargs="+", default=None, metavar="K",
                   help="lista: LISTA depths to train (default 1 3 7; FISTA's match is against the depth 1)")
    p.add_argument("--json", default=None, metavar="OUT", help="lista: also write the results JSON to OUT")
    p.add_argument("--lam", type=float, default=None, help="lista: the lasso's lambda (default 0.5)")
    p.add_argument("--train-patches", type=int, default=None, metavar="N", help="lista: training patches "
                   "(default 10000)")
    p.add_argument("--test-patches", type=int, default=None, metavar="N", help="lista: test patches (default 1000)")
    p.add_argument("--target-iters", type=int, default=None, metavar="K", help="lista: FISTA iterations for "
                   "the targets Z* (default 1000)")
    p.add_argument("--curve-iters", type=int, default=None, metavar="K", help="lista: FISTA iterations in the "
                   "error curve (default 200)")
    p.add_argument("--dict-iters", type=int, default=None, metavar="N", help="lista: dictionary-learning "
                   "iterations (default 20)")
    p.add_argument("--cache", default=None, metavar="DIR", help="lista: cache of dictionaries and targets "
                   "(default OUT/cache)")


def run_command(args: Any) -> int:
    """``unroll reproduce lista``: print Table 1 next to the paper's, write results.json, the plot, --json."""
    def given(name: str, default: Any) -> Any:
        value = getattr(args, name, None)
        return default if value is None else value

    if getattr(args, "K", None) is not None:
        raise ValueError("reproduce lista: --K is not used; give the LISTA depths with --layers (default 1 3 7)")
    cfg = ListaConfig(
        atoms=tuple(given("atoms", (100, 400))), layers=tuple(given("layers", (1, 3, 7))),
        budget_s=float(args.budget), data_dir=args.data, out_dir=given("out", "runs/reproduce_lista"),
        cache_dir=args.cache, lam=given("lam", 0.5), n_train=given("train_patches", 10000),
        n_test=given("test_patches", 1000), target_iters=given("target_iters", 1000),
        curve_iters=given("curve_iters", 200), dict_iters=given("dict_iters", 20),
        batch_size=given("batch_size", 256), lr=given("lr", 3e-3), device=args.device, seed=args.seed,
        progress=not args.quiet,
    )
    print(f"budget: {cfg.budget_s:g}s of LISTA training per dictionary size, split over K = "
          f"{', '.join(map(str, cfg.layers))} in proportion to K")
    report = reproduce_lista(cfg)
    print(f"\nTable 1 of {PAPER_NAME}, paper / ours")
    print(format_table(report))
    print(f"plot: {report['plot']}")
    print(f"results: {Path(cfg.out_dir) / 'results.json'}")
    if args.json:
        _write_json(Path(args.json), report)
        print(f"json: {args.json}")
    return 0
