"""Exponential moving averages of networks (``train.ema_decay`` over ``method.ema_modules``).

FUNIT's test-time generator ``gen_test`` follows ``gen`` with the authors' ``update_average``:
after each generator step, for every parameter ``target = decay * target + (1 - decay) * source``;
buffers (batch-norm statistics) are copied. The target is a submodule of the method, so it is in
the training checkpoints (exact resume) and, when listed in ``inference_modules``, it is what a
model directory holds.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


@torch.no_grad()
def update_average(target: nn.Module, source: nn.Module, decay: float) -> None:
    for pt, ps in zip(target.parameters(), source.parameters()):
        pt.copy_(decay * pt + (1.0 - decay) * ps)
    for bt, bs in zip(target.buffers(), source.buffers()):
        bt.copy_(bs)


class ModuleEMA:
    """The averages of one method, each updated after the optimizer that moves its source steps."""

    def __init__(self, method, optimizers: dict, decay: float):
        self.decay = float(decay)
        self.by_optimizer: dict[str, list[tuple[nn.Module, nn.Module]]] = {}
        owner = {id(p): name for name, o in optimizers.items() for g in o.param_groups for p in g["params"]}
        for tgt_name, src_name in method.ema_modules.items():
            target, source = (_submodule(method, n) for n in (tgt_name, src_name))
            t_shapes = [(k, v.shape) for k, v in target.state_dict().items()]
            s_shapes = [(k, v.shape) for k, v in source.state_dict().items()]
            if t_shapes != s_shapes:
                raise ConfigError(f"{method.method_name}: ema_modules {tgt_name} and {src_name} "
                                  "are not the same network (their state dicts differ)")
            opts = {owner.get(id(p)) for p in source.parameters()} - {None}
            if len(opts) != 1:
                raise ConfigError(f"{method.method_name}: the EMA source {src_name} must be trained by one "
                                  f"optimizer; found {sorted(opts) or 'none'}")
            self.by_optimizer.setdefault(opts.pop(), []).append((target, source))

    def after_step(self, optimizer: str) -> None:
        for target, source in self.by_optimizer.get(optimizer, ()):
            update_average(target, source, self.decay)


def _submodule(method, name: str) -> nn.Module:
    m = getattr(method, name, None)
    if not isinstance(m, nn.Module):
        raise ConfigError(f"{method.method_name}: ema_modules names {name!r}, which is not a submodule")
    return m
