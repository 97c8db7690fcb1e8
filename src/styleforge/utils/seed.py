"""Seeding, decided in one place (a leaf, beside utils/device.py).

* :func:`seed_everything`: the global streams of Python's ``random``, NumPy and torch (CUDA
  included), set by the trainer before it builds a model, so every rank starts from the same
  weights and a run folder's seed reproduces the run.
* :func:`seeded_generator`: a CPU ``torch.Generator`` of its own, for the draws at inference
  (the pipeline's random codes, Pix2Pix's test-time dropout, Gatys' and photo's noise start)
  and the fixed draws elsewhere (random stand-in VGG weights, export's example inputs, the
  image pool, the loader's worker seeds): they are a function of the seed alone, not of the
  global stream, the batch or the device (CPU draws, then moved).
* :func:`output_seed`: the seed of output k of a call's ``num_outputs``: seed + k.

Nothing outside utils/ calls ``torch.manual_seed``, ``np.random.seed`` or ``random.seed``, nor
seeds a ``torch.Generator`` itself (tests/utils/test_seed.py checks the source).
"""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global stream and torch's (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` alone (draw on it, then move the result)."""
    return torch.Generator().manual_seed(int(seed))


def output_seed(base: int | None, k: int, num_outputs: int) -> int | None:
    """The seed of output ``k`` of ``num_outputs``: ``base + k`` (base None: 0), so a call's
    outputs are repeatable and output k of N is output 0 of a call with seed base + k. None
    for a single output asked for with no seed: each input's own default applies (a code's
    draw uses seed 0, Pix2Pix's dropout fresh noise)."""
    if num_outputs > 1 or base is not None:
        return (base or 0) + k
    return None


__all__ = ["output_seed", "seed_everything", "seeded_generator"]
