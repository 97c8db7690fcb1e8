"""Data-parallel training under ``torchrun``: one process per device, gradients averaged.

Every method's networks are wrapped by nothing: the trainer all-reduces each optimizer's
gradients (one flat buffer per optimizer) right before it steps. That is what
``DistributedDataParallel`` does, done at the one place every method shares, so methods that
freeze networks between phases, split a loss over several backward passes or run a network
several times per step need no care; DDP reduces at every backward (2.5x the bytes on CycleGAN,
``benchmarks/ddp.py``, docs/training.md). Frozen modules are in no optimizer, so in no traffic.
gloo on CPU, nccl on CUDA.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def teardown(info: DistInfo, wait: bool = True) -> None:
    """Leave the process group. ``wait``: first meet the other ranks (rank 0 may still be writing
    the final checkpoint and model; a rank that tears gloo down alone can abort at exit)."""
    if info.enabled and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params, world_size: int) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n
