"""Shipped LISTA weights for the D.mat sparse-coding benchmark: ``unroll.zoo.pretrained("lista")``.

``pretrained/{name}.pt`` holds the learnables only (float16 when the record says so; the dictionary
D.mat is data and stays in the data folder), ``pretrained/{name}.json`` the training record: command,
steps, CPU and wall time, data files with their SHA-256, and the per-layer test NMSE of the shipped
weights with ISTA/FISTA at 16/100/1000 iterations. Loading reads A from ``DIR/sparse/D.mat`` (``data``
or ``$UNROLL_DATA``), checks its hash, and uses ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["sparse_names", "load_sparse", "save_sparse", "sparse_baselines", "sha256"]

_DIR = Path(__file__).parent / "pretrained"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sparse_names() -> list[str]:
    """Zoo names with shipped sparse-coding weights (a record whose task is sparse coding)."""
    out = []
    for p in sorted(_DIR.glob("*.json")):
        if (_DIR / f"{p.stem}.pt").is_file() and json.loads(p.read_text()).get("task") == "sparse":
            out.append(p.stem)
    return out


def _task(data: str | Path | None):
    from ..data import SparseCodingTask, resolve_data_dir
    path, _ = resolve_data_dir(data)
    if path is None or not (path / "sparse" / "D.mat").is_file():
        raise FileNotFoundError("the shipped LISTA weights are for the D.mat benchmark: give the data "
                                "folder holding sparse/D.mat (data=DIR or $UNROLL_DATA)")
    return path, SparseCodingTask.from_data_dir(path)


def load_sparse(name: str, data: str | Path | None = None, device: str | None = None):
    """The compiled zoo network with its shipped weights (float32); `.pretrained_record` holds the
    record and `.pretrained_task` the benchmark task (test set included)."""
    import torch

    from ..api import compile as compile_spec
    record = json.loads((_DIR / f"{name}.json").read_text(encoding="utf-8"))
    path, task = _task(data)
    got = sha256(path / "sparse" / "D.mat")
    if got != record["data"]["D.mat_sha256"]:
        raise ValueError(f"{path / 'sparse' / 'D.mat'} is not the dictionary these weights were "
                         f"trained with (SHA-256 {got[:12]}..., record {record['data']['D.mat_sha256'][:12]}...)")
    state = torch.load(_DIR / f"{name}.pt", map_location="cpu", weights_only=True)
    model = compile_spec(f"zoo:{name}", K=int(record["K"]), **task.operators())
    own = dict(model.named_parameters())
    if set(state) != set(own):
        raise ValueError(f"{name}.pt does not fit zoo:{name}: it has {sorted(set(state) ^ set(own))[:5]}")
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].dtype))
    model.pretrained_record = record
    model.pretrained_task = task
    return model.to(device) if device is not None else model


def save_sparse(checkpoint: str | Path, name: str, record: dict[str, Any], data: str | Path | None,
                half: bool = False, out_dir: Path = _DIR, baseline_iters: int = 1000,
                K: int | None = None, baselines: dict | None = None) -> dict[str, Any]:
    """Ship a training checkpoint's learnables as ``{name}.pt`` (+ ``.json``): evaluate the shipped
    (rounded) weights per layer on the test set and ISTA/FISTA at 16/100/1000 iterations. `K` ships
    the first K layers only (a layer-wise run stopped after training layer K)."""
    import torch

    from ..api import compile as compile_spec
    from ..train import evaluate_layers, load_checkpoint
    ckpt = load_checkpoint(checkpoint)
    path, task = _task(data)
    full = compile_spec(f"zoo:{name}", K=int(ckpt["K"]), **task.operators())
    full.load_state_dict(ckpt["model"])
    K = int(ckpt["K"]) if K is None else int(K)
    model = compile_spec(f"zoo:{name}", K=K, **task.operators())
    trained = dict(full.named_parameters())
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(trained[k])
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to(dtype).clone() for k, v in model.named_parameters()}
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, out_dir / f"{name}.pt")
    test = task.test_set()
    record = dict(record, task="sparse", spec=f"zoo:{name}", K=K, dtype=str(dtype).replace("torch.", ""),
                  data={"D.mat": "sparse/D.mat", "D.mat_sha256": sha256(path / "sparse" / "D.mat"),
                        "test": "sparse/xtest_n500_p10.npy",
                        "test_sha256": sha256(path / "sparse" / "xtest_n500_p10.npy"),
                        "describe": task.describe()},
                  steps=int(ckpt["step"]), config=ckpt["config"])
    (out_dir / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")
    shipped = load_sparse(name, path)
    record["layer_nmse_db"] = [round(v, 4) for v in evaluate_layers(shipped, test)]
    record["baselines_nmse_db"] = baselines or sparse_baselines(task, baseline_iters)
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def sparse_baselines(task, iters: int = 1000) -> dict[str, dict[str, float]]:
    """ISTA and FISTA test NMSE (dB) at 16, 100 and 1000 iterations (those up to `iters`)."""
    from ..api import compile as compile_spec
    from ..train import evaluate_layers
    test = task.test_set()
    base = {}
    for solver in ("ista", "fista"):
        net = compile_spec(f"zoo:{solver}", K=iters, **task.operators())
        curve = evaluate_layers(net, test, batch_size=250)
        base[solver.upper()] = {str(k): round(curve[k - 1], 4) for k in (16, 100, 1000) if k <= len(curve)}
    return base
