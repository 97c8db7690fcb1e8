"""Discriminators: PatchGAN (Isola et al. 2017), its 1×1 "pixel" form, and multi-scale.

``NLayerDiscriminator`` with ``n_layers=3`` is the 70×70 PatchGAN; its layers sit in one
``nn.Sequential`` called ``model`` in the CycleGAN/pix2pix code's order and naming.
"""
from __future__ import annotations

import torch
from torch import nn

from .norms import conv_bias, norm_layer


class NLayerDiscriminator(nn.Module):
    def __init__(self, in_ch=3, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1  # the last one keeps the resolution
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))  # one logit per patch
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1×1 PatchGAN: classifies every pixel on its own."""

    def __init__(self, in_ch=3, ndf=64, norm="batch"):
        super().__init__()
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x):
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the input down-sampled by 2 each time (pix2pixHD, MUNIT).

    Returns a list of patch-logit maps, finest first.
    """

    def __init__(self, in_ch=3, ndf=64, n_layers=3, norm="instance", num_scales=3):
        super().__init__()
        self.scales = nn.ModuleList(
            NLayerDiscriminator(in_ch, ndf, n_layers, norm) for _ in range(num_scales)
        )
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x) -> list[torch.Tensor]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.down(x)
            out.append(d(x))
        return out
