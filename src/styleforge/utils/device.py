"""Which device and which torchrun rank this process has, decided in one place: the pipeline's
loader, the trainer and the batch job's shards all ask here."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import ConfigError


def pick_device(name: str | None = "auto") -> torch.device:
    """``auto``: the ``STYLEFORGE_DEVICE`` environment variable if set, else CUDA when there is
    one, else CPU. ``cuda`` without a GPU is an error."""
    if name in (None, "auto"):
        name = os.environ.get("STYLEFORGE_DEVICE") or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return dev


@dataclass(frozen=True)
class Rank:
    """This process's place under ``torchrun`` (its ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
    one process alone is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def torchrun_rank() -> Rank:
    """The rank torchrun gave this process (environment variables), before any process group."""
    def env(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        try:
            return int(value) if value else default
        except ValueError:
            raise ConfigError(f"environment variable {name}={value!r}: expected an integer") from None

    world = env("WORLD_SIZE", 1)
    if world <= 1:
        return Rank()
    return Rank(env("RANK", 0), world, env("LOCAL_RANK", 0))


def process_device(name: str | None = "auto") -> torch.device:
    """The device of this process: :func:`pick_device`, and under ``torchrun`` with a CUDA
    device whose index is not given (``auto`` on a GPU machine, ``cuda``) one GPU per process on
    the machine, ``cuda:LOCAL_RANK`` (modulo the GPUs there are). An explicit ``cuda:N`` is kept."""
    dev = pick_device(name)
    place = torchrun_rank()
    if dev.type == "cuda" and dev.index is None and place.distributed:
        dev = torch.device("cuda", place.local_rank % torch.cuda.device_count())
    return dev
