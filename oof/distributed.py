"""DDP under torchrun: one fold trained by N processes (`torchrun --nproc_per_node=N -m oof run ...`).

Each rank draws its share of the epoch's rows (`shard`: every N-th row, padded so that every rank
steps the same number of batches), with batch_size / N rows per step, so the global batch stays the
recipe's. DistributedDataParallel all-reduces the gradients, so the weights stay equal on every rank.
Rank 0 alone validates, predicts the test set, writes checkpoints, shards and logs; the others wait
at barriers. Not bitwise equal to one process: BatchNorm statistics are per rank (batch / N rows)
and each rank augments with its own generator.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.distributed as torch_dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch_dist.barrier()

    def share(self, obj):
        """Rank 0's `obj` on every rank (a collective: every rank calls it)."""
        if not self.active:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """[rank 0's obj, rank 1's, ...] on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        torch_dist.all_gather_object(out, obj)
        return out

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.active:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, rows: pd.DataFrame) -> pd.DataFrame:
        """This rank's rows: every world-th, from the start, wrapping round so that all ranks get as many."""
        if not self.active or rows.empty:
            return rows
        per_rank = -(-len(rows) // self.world)
        return rows.iloc[np.arange(self.rank, per_rank * self.world, self.world) % len(rows)]

    def batch_size(self, global_batch: int) -> int:
        if global_batch % self.world:
            log.warning("batch_size=%d is not a multiple of %d processes: %d rows per process per step",
                        global_batch, self.world, max(1, global_batch // self.world))
        return max(1, global_batch // self.world)


SINGLE = Dist()


def from_env(device: torch.device) -> tuple[Dist, torch.device]:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo on the CPU) and
    move a CUDA device to this process's GPU (LOCAL_RANK); elsewhere (SINGLE, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    dist = Dist(torch_dist.get_rank(), torch_dist.get_world_size())
    if not dist.is_main:  # rank 0 alone logs
        logging.getLogger().setLevel(logging.WARNING)
    return dist, device


def close(dist: Dist) -> None:
    if dist.active and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
