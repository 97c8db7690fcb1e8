"""MobileNet-v2 (Sandler et al. 2018) as TF-slim's ``nets/mobilenet/mobilenet_v2.py`` lays it out
(``V2_DEF``), batch norm folded into each conv's bias (as inference graphs carry it), TensorFlow's
``SAME`` padding (stride 2: the extra row/column at the bottom/right) and ReLU6.

Layers (slim's scopes): ``Conv`` 3×3/2 32, ``expanded_conv`` (depthwise 3×3 then a 1×1
projection to 16, no expansion), ``expanded_conv_1`` .. ``_16`` (1×1 expansion ×6, depthwise 3×3,
linear 1×1 projection; a residual sum where stride is 1 and the widths agree) to 24, 24, 32 ×3,
64 ×4, 96 ×3, 160 ×3, 320, and ``Conv_1`` 1×1 1280 (``layer_19``, slim's last feature map). Widths
times ``width`` are rounded as slim's depth multiplier does (multiples of 8, at least 8).

``quant`` True: a rounding point (``nn.quant.FakeQuant``) where TF-Lite's int8 conversion rounds
the activations: the input, every conv's output (after its ReLU6) and every residual sum.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from .quant import FakeQuant, maybe

# (expansion t, output channels c, repeats n, first stride s): the inverted residual blocks
V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))
LAST_CHANNELS = 1280


def slim_depth(c: int, width: float, divisible_by: int = 8, min_depth: int = 8) -> int:
    """slim's ``_make_divisible(c * width, 8)``: the nearest multiple of 8, never below 90 % of
    the product nor below ``min_depth``."""
    v = c * width
    new = max(min_depth, int(v + divisible_by / 2) // divisible_by * divisible_by)
    if new < 0.9 * v:
        new += divisible_by
    return new


def same_pad(x, kernel_size: int, stride: int):
    """TensorFlow's ``SAME`` padding of ``x`` (N×C×H×W) for a k×k conv of ``stride``: the output
    is ceil(side / stride); an odd total puts the extra pixel at the bottom/right."""
    pads = []
    for side in (x.shape[-1], x.shape[-2]):  # F.pad's order: W first
        total = max((math.ceil(side / stride) - 1) * stride + kernel_size - side, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


class ConvBias(nn.Module):
    """SAME-padded conv with a bias (the folded batch norm), optional ReLU6."""

    def __init__(self, in_ch, out_ch, kernel_size=1, stride=1, groups=1, relu6=True, quant=False):
        super().__init__()
        self.kernel_size, self.stride, self.relu6 = kernel_size, stride, relu6
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, groups=groups)
        self.q_out = FakeQuant() if quant else None

    def forward(self, x):
        h = self.conv(same_pad(x, self.kernel_size, self.stride))
        return maybe(F.relu6(h) if self.relu6 else h, self.q_out)


class InvertedResidual(nn.Module):
    """slim's ``expanded_conv``: [1×1 ``expand`` ×t, ReLU6], 3×3 ``depthwise`` (stride), ReLU6,
    linear 1×1 ``project``; plus the input when the shapes agree."""

    def __init__(self, in_ch, out_ch, expansion, stride, quant=False):
        super().__init__()
        mid = in_ch * expansion
        self.expand = ConvBias(in_ch, mid, quant=quant) if expansion != 1 else None
        self.depthwise = ConvBias(mid, mid, 3, stride, groups=mid, quant=quant)
        self.project = ConvBias(mid, out_ch, relu6=False, quant=quant)
        self.residual = stride == 1 and in_ch == out_ch
        self.q_add = FakeQuant() if quant and self.residual else None

    def forward(self, x):
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.depthwise(h))
        return maybe(x + h, self.q_add) if self.residual else h


class MobileNetV2(nn.Module):
    """x N×3×H×W -> the ``Conv_1`` feature map N×``out_channels``×H/32×W/32. Module names follow
    slim's scopes: ``Conv``, ``expanded_conv`` (``blocks.0``) .. ``expanded_conv_16``
    (``blocks.16``), ``Conv_1``. Inputs are used as given (the caller's scaling); ``quant``: the
    int8 rounding points, the input's ``q_in`` included."""

    def __init__(self, width: float = 1.0, quant: bool = False):
        super().__init__()
        c0 = slim_depth(32, width)
        self.q_in = FakeQuant() if quant else None
        self.Conv = ConvBias(3, c0, 3, 2, quant=quant)
        blocks, c_in = [], c0
        for t, c, n, s in V2_BLOCKS:
            c_out = slim_depth(c, width)
            for i in range(n):
                blocks.append(InvertedResidual(c_in, c_out, t, s if i == 0 else 1, quant))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = slim_depth(LAST_CHANNELS, width)
        self.Conv_1 = ConvBias(c_in, self.out_channels, quant=quant)

    def forward(self, x):
        x = self.Conv(maybe(x, self.q_in))
        for block in self.blocks:
            x = block(x)
        return self.Conv_1(x)

    def _scopes(self):
        """(slim's scope, block) of each inverted-residual block: expanded_conv, expanded_conv_1, ..."""
        return [("MobilenetV2/expanded_conv" + (f"_{i}" if i else ""), b) for i, b in enumerate(self.blocks)]

    def tf_names(self) -> dict[str, nn.Conv2d]:
        """slim's name of every conv's weights (``MobilenetV2/expanded_conv_3/depthwise``, ...)."""
        out = {"MobilenetV2/Conv": self.Conv.conv}
        for scope, b in self._scopes():
            if b.expand is not None:
                out[f"{scope}/expand"] = b.expand.conv
            out[f"{scope}/depthwise"] = b.depthwise.conv
            out[f"{scope}/project"] = b.project.conv
        out["MobilenetV2/Conv_1"] = self.Conv_1.conv
        return out

    def tf_quant_names(self) -> dict[str, FakeQuant]:
        """The TF-Lite tensor each rounding point rounds, by its name (``MobilenetV2/Conv/Relu6``,
        ``MobilenetV2/expanded_conv_2/project/BatchNorm/FusedBatchNormV3``,
        ``MobilenetV2/expanded_conv_2/add``); the input's is the caller's to name."""
        out = {"MobilenetV2/Conv/Relu6": self.Conv.q_out}
        for scope, b in self._scopes():
            if b.expand is not None:
                out[f"{scope}/expand/Relu6"] = b.expand.q_out
            out[f"{scope}/depthwise/Relu6"] = b.depthwise.q_out
            out[f"{scope}/project/BatchNorm/FusedBatchNormV3"] = b.project.q_out
            if b.residual:
                out[f"{scope}/add"] = b.q_add
        out["MobilenetV2/Conv_1/Relu6"] = self.Conv_1.q_out
        return out
