"""Small helpers on modules that several methods use."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable

from torch import nn


def requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Turn gradients of every parameter of ``modules`` on or off (a GAN freezes its
    discriminators while the generators' loss is back-propagated)."""
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


@contextmanager
def frozen(modules: Iterable[nn.Module]):
    """``modules`` without gradients inside the block, turned back on however it ends (around a
    generator's ``yield Phase("G", ...)``: the trainer's backward of G runs while D is frozen)."""
    modules = tuple(modules)
    requires_grad(modules, False)
    try:
        yield
    finally:
        requires_grad(modules, True)
