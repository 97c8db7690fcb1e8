"""Small helpers on modules that several methods use."""
from __future__ import annotations

from typing import Iterable

from torch import nn


def requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Turn gradients of every parameter of ``modules`` on or off (a GAN freezes its
    discriminators while the generators' loss is back-propagated)."""
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)
