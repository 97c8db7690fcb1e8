"""Weight initialisation schemes by name, as the CycleGAN/pix2pix code applies them.

Conv and Linear weights: ``normal`` N(0, gain), ``xavier`` (gain), ``kaiming`` (fan_in, a=0),
``orthogonal`` (gain); their biases 0. BatchNorm weights N(1, gain), biases 0. The names of
NVlabs' UNIT/MUNIT code map onto them (:func:`init_nvlabs`).
"""
from __future__ import annotations

import math

from torch import nn

from ..errors import ConfigError

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    if init_type not in INIT_TYPES:
        raise ConfigError(f"unknown init {init_type!r}; choose one of {', '.join(INIT_TYPES)}")

    def init_fn(m):
        name = type(m).__name__
        weight = getattr(m, "weight_orig", getattr(m, "weight", None))
        if isinstance(weight, nn.Parameter) and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias, 0.0)
        elif "BatchNorm2d" in name and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.constant_(m.bias, 0.0)

    net.apply(init_fn)
    return net


# the authors' init names -> (scheme, gain); their xavier/orthogonal use sqrt(2)
INITS = {"gaussian": ("normal", 0.02), "kaiming": ("kaiming", 0.0),
         "xavier": ("xavier", math.sqrt(2)), "orthogonal": ("orthogonal", math.sqrt(2))}


def init_nvlabs(net: nn.Module, init: str) -> None:
    """NVlabs' UNIT/MUNIT ``weights_init(init)``: conv/linear weights by scheme, biases 0."""
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    scheme, gain = INITS[init]
    init_weights(net, scheme, gain)
