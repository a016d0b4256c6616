"""Data-parallel training under `torchrun`: process group set-up, batch sharding, the DDP wrapper.

Every rank draws the same global batch from the step-seeded generator and keeps its own slice, so a
run on N processes follows the same trajectory as one process with the same global batch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["World", "setup", "shard", "LossModule", "all_mean", "any_flag"]


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank, number of processes, and whether it is rank 0."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device: str) -> World:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); one process otherwise."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    return World(dist.get_rank(), dist.get_world_size())


def shard(batch: Mapping[str, Any], world: World) -> dict[str, Any]:
    """This rank's contiguous slice of a global batch (the batch size must divide evenly)."""
    if not world.distributed:
        return dict(batch)
    out = {}
    for k, v in batch.items():
        n = v.shape[0]
        if n % world.size:
            raise ValueError(f"batch size {n} does not divide among {world.size} processes")
        per = n // world.size
        out[k] = v[world.rank * per:(world.rank + 1) * per]
    return out


class LossModule(nn.Module):
    """The model's loss as a forward pass, so DistributedDataParallel can average its gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Mapping[str, torch.Tensor], upto: int | None = None) -> torch.Tensor:
        return self.model.loss(batch, upto=upto)


def all_mean(value: float, world: World) -> float:
    """The mean of a number over all ranks (the number itself on one process)."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world.size


def any_flag(flag: bool, world: World) -> bool:
    """True on every rank if it is true on any rank (to stop together)."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
