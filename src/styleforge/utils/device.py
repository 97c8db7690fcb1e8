from __future__ import annotations

import os

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
