"""Discriminators: PatchGAN (Isola et al. 2017), its 1×1 "pixel" form, and multi-scale.

``NLayerDiscriminator`` with ``n_layers=3`` is the 70×70 PatchGAN; its layers sit in one
``nn.Sequential`` called ``model`` in the CycleGAN/pix2pix code's order and naming.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import cam_layers, class_activation_map
from .init import init_nvlabs
from .norms import conv_bias, norm_layer, spectral_norm


def patchgan_min_side(netD: str = "basic", n_layers_D: int = 3) -> int:
    """The smallest input side of the PatchGAN named as CycleGAN/pix2pix name it (``basic``: 3
    layers, ``n_layers``: ``n_layers_D``, ``pixel``: 1×1 convs). :class:`NLayerDiscriminator`'s
    ``n`` stride-2 4×4 convs leave ``side / 2**n``; the stride-1 conv after them takes 1 off, and
    its norm needs more than one value per channel (2×2), so that map needs 3 px. The pixel one's
    norm needs 2 px."""
    if netD == "pixel":
        return 2
    n = 3 if netD == "basic" else n_layers_D
    return 3 * 2 ** n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 1


def ugatit_discriminator_min_side(n_layers: int) -> int:
    """The smallest input side :class:`UGATITDiscriminator` takes: its ``n_layers - 2`` stride-2
    convs leave ``side / 2**(n_layers-2)``, and the two stride-1 4×4 convs after them (reflection
    pad 1, which needs a side of 2) need 3 px there: 96 for the global ``n_layers=7``."""
    return 3 * 2 ** (n_layers - 2)


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


class UGATITDiscriminator(nn.Module):
    """U-GAT-IT's discriminator (Kim et al. 2020, Sec. 2.2), laid out as the authors' code.

    ``n_layers - 2`` stride-2 4×4 convs (reflection pad 1), one stride-1 conv, then the CAM block
    (:mod:`styleforge.nn.attention`) and a final 4×4 conv to one channel of patch logits. Every
    conv and the CAM classifiers carry spectral norm, except the CAM's 1×1 fusion conv; leaky
    ReLU 0.2. U-GAT-IT uses ``n_layers=7`` for the global discriminator (receptive field 286
    px, features at 1/32) and ``n_layers=5`` for the local one (70 px, 1/8). Keys match the
    released checkpoints (``model.1.weight_orig``, ``gap_fc.weight_orig``, ``conv.weight_orig``,
    ...). Returns (patch logits N×1×h×w, CAM logits N×2, heatmap N×1×h'×w').
    """

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 5):
        super().__init__()
        if n_layers < 3:
            raise ValueError(f"UGATITDiscriminator needs n_layers >= 3, got {n_layers}")

        def conv(cin, cout, stride, bias=True):
            return [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(cin, cout, 4, stride, 0, bias=bias)),
                    nn.LeakyReLU(0.2, True)]

        layers = conv(in_ch, ndf, 2)
        for i in range(1, n_layers - 2):
            layers += conv(ndf * 2 ** (i - 1), ndf * 2 ** i, 2)
        ch = ndf * 2 ** (n_layers - 2)
        layers += conv(ch // 2, ch, 1)
        self.gap_fc, self.gmp_fc, self.conv1x1 = cam_layers(ch, spectral=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = spectral_norm(nn.Conv2d(ch, 1, 4, 1, 0, bias=False))
        self.model = nn.Sequential(*layers)  # registered last: the official key order

    def forward(self, x):
        x, cam_logit, heatmap = class_activation_map(self.model(x), self.gap_fc, self.gmp_fc,
                                                     self.conv1x1, self.leaky_relu)
        return self.conv(self.pad(x)), cam_logit, heatmap


class MsImageDiscriminator(nn.Module):
    """The UNIT/MUNIT multi-scale discriminator (their ``MsImageDis``), keys ``cnns.<s>.<i>``.

    Per scale: a 4×4 stride-2 conv without norm, ``n_layer - 1`` more doubling the width (with
    ``norm``), a 1×1 conv to one patch logit; explicit padding (``pad``), leaky ReLU 0.2. Scale
    ``s`` sees the input average-pooled (3×3, stride 2, padding not counted) ``s`` times.
    Returns the ``num_scales`` logit maps, finest first.
    """

    def __init__(self, in_ch=3, dim=64, n_layer=4, norm="none", act="lrelu", num_scales=3,
                 pad="reflect"):
        super().__init__()
        from .munit_blocks import ConvBlock

        def net():
            d = dim
            layers: list[nn.Module] = [ConvBlock(in_ch, d, 4, 2, 1, "none", act, pad)]
            for _ in range(n_layer - 1):
                layers.append(ConvBlock(d, 2 * d, 4, 2, 1, norm, act, pad))
                d *= 2
            layers.append(nn.Conv2d(d, 1, 1, 1, 0))
            return nn.Sequential(*layers)

        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(net() for _ in range(num_scales))

    def forward(self, x) -> list[torch.Tensor]:
        out = []
        for i, net in enumerate(self.cnns):
            if i:
                x = self.downsample(x)
            out.append(net(x))
        return out


def build_ms_discriminator(in_ch, dis_dim, dis_norm, dis_activ, dis_n_layer, num_scales, dis_pad_type):
    """One domain's multi-scale discriminator as UNIT/MUNIT build it (their ``MsImageDis`` with
    N(0, 0.02) weights), from their config's ``dis`` options."""
    net = MsImageDiscriminator(in_ch, dis_dim, dis_n_layer, dis_norm, dis_activ, num_scales,
                               dis_pad_type)
    init_nvlabs(net, "gaussian")
    return net
