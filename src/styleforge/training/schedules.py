"""Learning-rate schedules as multipliers of the base rate, and the optimisers they drive.

Policies (``train.lr_policy``), as multipliers of each group's rate:

* ``constant``: 1.
* ``linear``: CycleGAN's rule: constant for ``n`` units, then down by 1/(n_decay+1) per unit, the
  unit being an epoch (as in the authors' code, where the rate changes at epoch ends) or a step
  when the run is counted in steps.
* ``cosine``: half a cosine from 1 to 0 over the ``n + n_decay`` units.
* ``step``: ``lr_gamma ** (t // lr_step)`` at step t (MUNIT: 0.5 every 100k iterations, the
  authors' StepLR stepped once per iteration).
* ``inverse_time``: ``1 / (1 + lr_decay_rate * t)`` (AdaIN: 5e-5; the authors' adjust_learning_rate
  is called before iteration t, counted from 0).

``step`` and ``inverse_time`` always count steps (iterations), whatever the run is counted in.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError


def lr_multiplier(policy: str, unit: int, n: int, n_decay: int, *, step: int | None = None,
                  lr_step: int = 1, lr_gamma: float = 1.0, lr_decay_rate: float = 0.0) -> float:
    """``unit``: 0-based epoch (or step) index; ``step``: 0-based step index (``unit`` if None)."""
    t = unit if step is None else step
    if policy == "constant" or n_decay <= 0 and policy == "linear":
        return 1.0
    if policy == "linear":
        # the authors' lambda_rule with epoch_count = 1
        return 1.0 - max(0, unit + 1 - n) / float(n_decay + 1)
    if policy == "cosine":
        total = max(1, n + n_decay)
        return 0.5 * (1.0 + math.cos(math.pi * min(unit, total) / total))
    if policy == "step":
        return lr_gamma ** (t // lr_step)
    if policy == "inverse_time":
        return 1.0 / (1.0 + lr_decay_rate * t)
    raise ValueError(policy)


def optimizer_settings(t: dict, group: str) -> dict:
    """The settings of optimizer ``group``: the ``train:`` section's, then ``train.optimizers.<group>``
    (a partial section, e.g. ``{"lr": 1e-4}`` from a benchmark, takes the rest from the defaults)."""
    from ..config import TRAIN_DEFAULTS

    t = {**TRAIN_DEFAULTS, **t}
    spec = {"type": t["optimizer"], "lr": t["lr"], "betas": t["betas"], "weight_decay": t["weight_decay"],
            "eps": t["eps"], "momentum": t["momentum"], "alpha": t["alpha"]}
    spec.update((t.get("optimizers") or {}).get(group, {}))
    return spec


def make_optimizer(params: list, spec: dict) -> torch.optim.Optimizer:
    """One torch optimizer from ``spec`` (see :func:`optimizer_settings`).

    Adam and AdamW use the fused implementation where torch has one for the parameters' device
    (CPU from torch 2.4, CUDA): the same update in one pass over each tensor instead of several;
    on CPU a step of Pix2Pix's 54 M-parameter generator takes a quarter of the time
    (docs/benchmarks.md)."""
    kind = spec["type"]
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        kw = {"lr": spec["lr"], "betas": tuple(spec["betas"]), "weight_decay": spec["weight_decay"],
              "eps": spec["eps"]}
        try:
            return cls(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):  # older torch, or a device without it
            return cls(params, **kw)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=spec["lr"], alpha=spec["alpha"], eps=spec["eps"],
                                   weight_decay=spec["weight_decay"], momentum=spec["momentum"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec["momentum"],
                               weight_decay=spec["weight_decay"])
    raise ConfigError(f"unknown optimizer type {kind!r}")
