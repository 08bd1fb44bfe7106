"""Data-parallel training under ``torchrun``: process group, DDP wrapping, and the few collectives the loop needs.

A single process is the degenerate case (world size 1): every method then returns its input unchanged and no
process group exists, so the loop has one code path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pipeline.errors import InputError

# Fewest samples a rank may normalise by itself: on CPU (gloo) BatchNorm cannot be synchronised across ranks, and
# per-rank statistics of fewer samples than this make DDP a different, noisier model than the one-process run.
MIN_BATCH_NORM_SAMPLES = 16


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (torchrun's RANK / WORLD_SIZE / LOCAL_RANK)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @classmethod
    def from_env(cls) -> World:
        env = os.environ
        try:
            return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)),
                       int(env.get("LOCAL_WORLD_SIZE", 1)))
        except ValueError as error:
            raise InputError(f"torchrun environment: {error}") from None

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, checkpoints and writes outputs."""
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """Rank 0 keeps the cell's seed (a one-process run is unchanged); other ranks get independent streams."""
        return seed if self.rank == 0 else int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def device(self, device: torch.device) -> torch.device:
        """One GPU per local rank, among the GPUs this process sees: where each sees only its own (SLURM
        ``--gpus-per-task=1``, Ray), ``cuda:LOCAL_RANK`` would not exist."""
        if device.type != "cuda" or not self.enabled:
            return device
        return torch.device("cuda", self.local_rank % torch.cuda.device_count())

    def shard(self, batch_size: int) -> slice:
        """This rank's rows of a global batch; the global batch must split evenly."""
        if batch_size % self.size:
            raise InputError(f"train.batch_size: {batch_size} does not split evenly over {self.size} processes "
                             "(WORLD_SIZE); use a multiple of the process count")
        per_rank = batch_size // self.size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def sync_batch_norm(self, module: nn.Module, device: torch.device, per_rank: int, *, what: str) -> nn.Module:
        """BatchNorm over the global batch under DDP: SyncBatchNorm on GPUs. SyncBatchNorm needs a GPU, so on CPU
        every rank normalises its own ``per_rank`` samples: refused below :data:`MIN_BATCH_NORM_SAMPLES`."""
        if not self.enabled or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
            return module
        if device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(module)
        if per_rank < MIN_BATCH_NORM_SAMPLES:
            raise InputError(
                f"train.batch_size: {per_rank * self.size} over {self.size} processes is {per_rank} samples a rank, "
                f"but the {what} uses BatchNorm, which cannot be synchronised across CPU processes: each rank needs "
                f"at least {MIN_BATCH_NORM_SAMPLES} (use a batch of at least {MIN_BATCH_NORM_SAMPLES * self.size}, "
                "fewer processes, or GPUs, where BatchNorm is synchronised)")
        return module

    def wrap(self, module: nn.Module) -> nn.Module:
        """DDP around ``module`` (gradients averaged across ranks during backward, buffers from rank 0)."""
        if not self.enabled:
            return module
        parameter = next(module.parameters())
        device_ids = [parameter.device.index] if parameter.is_cuda else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise mean over ranks (one collective)."""
        if not self.enabled:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor / self.size

    def max_int(self, value: int, device: torch.device) -> int:
        """The largest ``value`` over ranks (e.g. a pending signal number, 0 for none)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


def no_sync(module: nn.Module) -> AbstractContextManager:
    """Skip DDP's gradient all-reduce in this backward (e.g. the critic's gradients of a generator step)."""
    return module.no_sync() if isinstance(module, DistributedDataParallel) else nullcontext()


@contextmanager
def process_group(world: World, device: torch.device) -> Iterator[World]:
    """Join the torchrun process group for the duration (NCCL on GPU, gloo on CPU); nothing for one process."""
    if not world.enabled:
        yield world
        return
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=10))
    try:
        yield world
    finally:
        dist.destroy_process_group()


def set_cpu_threads(world: World, threads: int | None = None) -> int:
    """Intra-op threads: ``threads`` when given; else OMP_NUM_THREADS when set; else the cores this process may use,
    shared among the local ranks. Returns the count in use."""
    if threads is not None:
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, cores // world.local_size))
    return torch.get_num_threads()
