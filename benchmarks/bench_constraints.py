"""Like-for-like LISTA training: does a constrained learnable train as fast as a free one?

    python -m benchmarks.bench_constraints [--steps 3000] [--batch 64] [--lr 5e-4] [--json PATH]

A hand-written tied LISTA (free theta) against the compiled `zoo:lista` with theta `positive`
(projected: plain loop, and with `model.project_()` after each step as the trainer does) and with
`positive(softplus)`. Same A (sparse/D.mat), same initial weights, same batches (batch s drawn from
seed s), plain Adam at a constant rate, one CPU thread; NMSE (dB) at layer K on the 1000 fixed test
codes. Goal: compiled `positive` within 0.2 dB of the hand-written network at equal steps.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `unroll` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import unroll  # noqa: E402
from benchmarks.bench_lista import HandLISTA  # noqa: E402
from benchmarks.common import data_dir, machine, parser, table, write_json  # noqa: E402
from unroll.data import SparseCodingTask  # noqa: E402
from unroll.train import evaluate_layers  # noqa: E402

GOAL_DB = 0.2
SPEC = unroll.zoo.path("lista").read_text(encoding="utf-8")


def _compiled(constraint: str, A, K: int) -> torch.nn.Module:
    text = SPEC.replace("shared positive", f"shared {constraint}")
    return unroll.compile(text, K=K, A=A)


def run(name: str, model: torch.nn.Module, task: SparseCodingTask, steps: int, batch: int,
        lr: float, project: bool, loss) -> dict:
    """Train with a plain Adam loop; returns final test NMSE (dB) at layer K and seconds per step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    for s in range(steps):
        b = task.sample(batch, torch.Generator().manual_seed(s))
        opt.zero_grad(set_to_none=True)
        loss(model, b).backward()
        opt.step()
        if project:
            model.project_()
    elapsed = time.perf_counter() - t0
    test = task.test_set()
    if isinstance(model, HandLISTA):
        with torch.no_grad():
            x = model(test["y"])
        nmse = 10 * torch.log10(((x.double() - test["x_star"].double()) ** 2).sum()
                                / (test["x_star"].double() ** 2).sum()).item()
    else:
        nmse = evaluate_layers(model, test)[-1]
    print(f"{name}: {nmse:.2f} dB after {steps} steps, {elapsed / steps * 1e3:.1f} ms/step", flush=True)
    return {"nmse_db": nmse, "ms_per_step": elapsed / steps * 1e3, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "bench_constraints")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--K", type=int, default=16)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads or 1)
    task = SparseCodingTask.from_data_dir(data_dir(args.data))
    A = task.A
    print(f"{task.describe()}\nmachine: {machine('cpu')}")
    ref = _compiled("positive", A, args.K).parameter_values()
    hand = HandLISTA(ref["W_e"], ref["S"], ref["theta"], args.K)
    mse = lambda m, b: m.loss(b)  # noqa: E731
    variants = {
        "hand-written, free theta": (hand, False, lambda m, b: torch.mean((m(b["y"]) - b["x_star"]) ** 2)),
        "compiled positive, plain loop": (_compiled("positive", A, args.K), False, mse),
        "compiled positive + project_()": (_compiled("positive", A, args.K), True, mse),
        "compiled positive(softplus)": (_compiled("positive(softplus)", A, args.K), False, mse),
    }
    results = {name: run(name, m, task, args.steps, args.batch, args.lr, proj, loss)
               for name, (m, proj, loss) in variants.items()}
    base = results["hand-written, free theta"]["nmse_db"]
    rows = []
    for name, r in results.items():
        r["minus_hand_db"] = r["nmse_db"] - base
        ok = "" if name.startswith("hand") or "softplus" in name else (
            "ok" if abs(r["minus_hand_db"]) <= GOAL_DB else "MISSED")
        rows.append([name, f"{r['nmse_db']:.2f}", f"{r['minus_hand_db']:+.2f}",
                     f"{r['ms_per_step']:.1f}", ok])
    print(f"\nLISTA K={args.K}, {args.steps} Adam steps, batch {args.batch}, lr {args.lr:g} constant, "
          "1 thread; NMSE at layer K on the fixed test codes")
    print(table(rows, ["network", "NMSE dB", "vs hand dB", "ms/step", f"goal |diff| <= {GOAL_DB}"]))
    path = write_json(args.json, {"benchmark": "bench_constraints", "task": task.describe(),
                                  "K": args.K, "steps": args.steps, "batch": args.batch,
                                  "lr": args.lr, "machine": machine("cpu"), "results": results,
                                  "goal_db": GOAL_DB})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
