"""Data parallelism across the processes torchrun starts, and nothing when there is one.

    torchrun --nproc_per_node=2 -m blt_core.train blt ...      # two GPUs (NCCL) or CPU processes (gloo)
    python -m blt_core.train blt ...                            # one plain process

`Distributed.from_env` reads torchrun's RANK, WORLD_SIZE and LOCAL_RANK. With a world of one (no
torchrun, or torchrun with one process) no process group exists and every helper here is a no-op,
so a single process runs exactly the code it ran before data parallelism existed. With more, each
process drives one device (cuda:LOCAL_RANK, or the CPU with gloo), the model is wrapped in
DistributedDataParallel (gradients averaged across ranks in backward), and only rank 0 writes
files.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @classmethod
    def from_env(cls, device: str | None = None) -> "Distributed":
        """This process's place in the run; starts the process group when the world has more than
        one process. device: 'cpu' forces gloo on the CPU; default cuda:LOCAL_RANK when CUDA exists."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = cls.rank_from_env(), int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, local_rank, device)

    @staticmethod
    def rank_from_env() -> int:
        """This process's rank as torchrun set it (0 without torchrun), with no process group."""
        return int(os.environ.get("RANK", "0"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module as DDP with more than one process (parameters broadcast from rank 0)."""
        if not self.parallel:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, gradient_as_bucket_view=True,
                                       broadcast_buffers=False)   # only RoPE tables, made alike on every rank

    def grad_sync(self, module: torch.nn.Module, enabled: bool):
        """Context for one backward: without sync (a micro-batch before the last), DDP only
        accumulates the local gradient and the all-reduce waits for the last micro-batch."""
        if enabled or not isinstance(module, DistributedDataParallel):
            return nullcontext()
        return module.no_sync()

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over ranks (gloo has no AVG, so a sum divided)."""
        if not self.parallel:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor / self.world_size

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.parallel:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, value):
        """Rank 0's value (any picklable object) on every rank."""
        if not self.parallel:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self):
        if self.parallel:
            dist.barrier()

    def close(self):
        if self.parallel and dist.is_initialized():
            dist.destroy_process_group()
