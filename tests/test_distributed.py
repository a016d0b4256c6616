"""Data-parallel training: 2 CPU processes (gloo) follow the same loss curve as one process with
the same global batch, and only rank 0 writes checkpoints."""
import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import unroll
from unroll.data import SparseCodingTask
from unroll.train import TrainConfig, train


def _problem():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20, 40))
    return A / np.linalg.norm(A, axis=0)


def _config(out):
    return TrainConfig(lr=1e-3, batch_size=16, steps=12, eval_every=4, checkpoint_every=6,
                       eval_batch_size=200, out_dir=str(out), seed=3, schedule="const")


def _run(out) -> None:
    torch.manual_seed(0)
    A = _problem()
    task = SparseCodingTask(A, p=0.1, seed=1, n_test=200)
    model = unroll.compile("zoo:lista", K=3, A=A)
    train(model, task, _config(out), progress=False)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        _run(out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    single, double = tmp_path / "one", tmp_path / "two"
    _run(single)
    mp.spawn(_worker, args=(2, _free_port(), str(double)), nprocs=2, join=True)
    a = json.loads((single / "log.json").read_text())["rows"]
    b = json.loads((double / "log.json").read_text())["rows"]
    assert [r["step"] for r in a] == [r["step"] for r in b] == [4, 8, 12]
    np.testing.assert_allclose([r["train_loss"] for r in a], [r["train_loss"] for r in b],
                               rtol=1e-4)
    np.testing.assert_allclose(a[-1]["layer_nmse_db"], b[-1]["layer_nmse_db"], atol=1e-3)
    wa = torch.load(single / "last.pt", weights_only=True)["model"]
    wb = torch.load(double / "last.pt", weights_only=True)["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-6)
