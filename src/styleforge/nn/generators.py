"""Generators shared by several methods.

``ResnetGenerator`` is the encoder / residual blocks / decoder network of Johnson et al. 2016 as
the CycleGAN code builds it (ResNet-6 for 128 px, ResNet-9 for 256 px). Its layers sit in one
``nn.Sequential`` called ``model`` in the authors' order, so their checkpoints' keys
(``model.1.weight`` ... ``model.10.conv_block.1.weight`` ...) load unchanged.

``UnetGenerator`` is pix2pix's U-Net (``unet_256``, ``unet_128``), nested as the authors nest it
(``model.model.1.model.3...``), with the test-time switches pix2pix needs (dropout kept on,
batch norm with each test image's statistics).
"""
from __future__ import annotations

from itertools import islice

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..utils.seed import seeded_generator
from .blocks import ResnetBlock, conv_layers, down_layers, up_layers
from .norms import conv_bias, norm_layer


class ResnetGenerator(nn.Module):
    n_down = 2  # input H, W must be multiples of 2**n_down

    def __init__(self, in_ch=3, out_ch=3, ngf=64, n_blocks=9, norm="instance", dropout=0.0,
                 pad="reflect"):
        super().__init__()
        bias = conv_bias(norm)
        layers = conv_layers(in_ch, ngf, 7, norm=norm, pad="reflect", padding=3, bias=bias)
        ch = ngf
        for _ in range(self.n_down):
            layers += down_layers(ch, ch * 2, norm=norm, bias=bias)
            ch *= 2
        layers += [ResnetBlock(ch, norm=norm, pad=pad, dropout=dropout, bias=bias)
                   for _ in range(n_blocks)]
        for _ in range(self.n_down):
            layers += up_layers(ch, ch // 2, norm=norm, bias=bias)
            ch //= 2
        layers += conv_layers(ngf, out_ch, 7, norm=None, act="tanh", pad="reflect", padding=3,
                              bias=True)
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


# ---- U-Net (Ronneberger et al. 2015) as pix2pix builds it (Isola et al. 2017, Sec. 3.2.1) ------
class TestTimeBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` (same parameters and buffers) that can, in eval mode, normalise each
    sample with its own statistics (``sample_stats = True``).

    pix2pix applies batch norm at test time "using the statistics of the test batch" (Sec. 3.3;
    the authors' ``test.py`` keeps the network in training mode, batch size 1). With one image
    per batch that is instance normalisation followed by the batch-norm affine, which is what
    this computes for every sample of any batch, without touching the running averages.
    """

    sample_stats = False

    def forward(self, x):
        if self.training or not self.sample_stats:
            return super().forward(x)
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class TestTimeDropout(nn.Dropout):
    """``Dropout`` that stays on in eval mode when ``active`` is set (pix2pix's noise source).

    ``keep`` (forward's second argument, from :meth:`UnetGenerator.dropout_masks`): the N×C×H×W
    boolean mask to apply in eval mode, drawn beforehand from each sample's own CPU generator,
    so a sample's noise depends on its seed alone — not on the batch it is in, its place there,
    or the device — and a compiled graph takes it as an input. None: ``F.dropout`` on the
    global RNG. Set by the U-Net: ``order``, the layer's place among its dropout layers in the
    order they run (its mask's index in the list of masks); ``channels``, the mask's C;
    ``depth``, its H, W are the input's after ``depth`` down-samplings."""

    active = False
    order = channels = depth = 0

    def forward(self, x, keep=None):
        if keep is None or self.training or not self.active or self.p == 0:
            return F.dropout(x, self.p, self.training or self.active, self.inplace)
        if keep.shape != x.shape:
            raise ValueError(f"seeded dropout: a mask of shape {tuple(keep.shape)} for an input of {tuple(x.shape)}")
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


def _unet_norm(norm: str, ch: int) -> nn.Module:
    return TestTimeBatchNorm2d(ch) if norm == "batch" else norm_layer(norm, ch)


class UnetBlock(nn.Module):
    """One level of the U-Net: down-sample, the inner levels, up-sample, then concatenate the
    skip. Layers live in ``model`` (a Sequential) in the authors' order, so their checkpoints'
    keys load unchanged (outermost ``model.{0 conv, 1 inner, 3 upconv}``; innermost
    ``model.{1 conv, 3 upconv, 4 norm}``; others ``model.{1 conv, 2 norm, 3 inner, 5 upconv,
    6 norm}`` and ``7`` dropout). Convs are 4×4 stride 2, padding 1; leaky ReLU 0.2 before each
    down conv, ReLU before each up conv.

    The skip carries the leaky-ReLU'd input, not the input itself: the authors' leaky ReLU is
    in place and runs on ``x`` before ``torch.cat([x, model(x)])`` reads it. Outputs of their
    checkpoints depend on this, so it is reproduced here (without the in-place write).
    """

    def __init__(self, outer_ch, inner_ch, in_ch=None, inner: "UnetBlock | None" = None,
                 outermost=False, norm="batch", dropout=0.0):
        super().__init__()
        self.outermost = outermost
        in_ch = outer_ch if in_ch is None else in_ch
        bias = conv_bias(norm)
        down = nn.Conv2d(in_ch, inner_ch, 4, 2, 1, bias=bias)
        if outermost:  # image in, image out: no norm, tanh
            layers = [down, inner, nn.ReLU(True), nn.ConvTranspose2d(inner_ch * 2, outer_ch, 4, 2, 1),
                      nn.Tanh()]
        elif inner is None:  # innermost: 1×1 at the bottleneck of unet_256, no norm after its conv
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_ch, outer_ch, 4, 2, 1, bias=bias), _unet_norm(norm, outer_ch)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, _unet_norm(norm, inner_ch), inner, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_ch * 2, outer_ch, 4, 2, 1, bias=bias), _unet_norm(norm, outer_ch)]
            if dropout > 0:
                layers.append(TestTimeDropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x, noise: list | None = None):
        """``noise``: the dropout masks of :meth:`UnetGenerator.dropout_masks`, passed down."""
        if self.outermost:
            h = x
            layers = self.model
        else:
            x = h = F.leaky_relu(x, 0.2)  # model[0], applied out of place
            layers = islice(self.model, 1, None)
        for layer in layers:
            if isinstance(layer, UnetBlock):
                h = layer(h, noise)
            elif isinstance(layer, TestTimeDropout) and noise is not None:
                h = layer(h, noise[layer.order])
            else:
                h = layer(h)
        return h if self.outermost else torch.cat([x, h], 1)  # N×C×H×W, N×C'×H×W -> N×(C+C')×H×W


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (8 for ``unet_256``: 256 px -> 1×1 at the
    bottleneck). Channels ngf, 2ngf, 4ngf, then 8ngf for every deeper level; the
    ``num_downs - 5`` levels just above the innermost one carry dropout (the first three
    decoder blocks of unet_256, Sec. 6.1.1 of the paper). Input H and W must be multiples of
    ``2 ** num_downs``. Keys: ``model.model.0.weight``, ``model.model.1.model.1.weight``, ...
    """

    def __init__(self, in_ch=3, out_ch=3, num_downs=8, ngf=64, norm="batch", dropout=0.5):
        super().__init__()
        if num_downs < 5:
            raise ConfigError(f"a U-Net needs at least 5 down-samplings, got {num_downs}")
        self.num_downs = num_downs
        block = UnetBlock(ngf * 8, ngf * 8, norm=norm)  # innermost
        for k in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, inner=block, norm=norm, dropout=dropout)
            if dropout > 0:  # built in the order they run: the deepest first, after its inner level
                drop = block.model[7]
                drop.order, drop.channels, drop.depth = k, ngf * 8, num_downs - 2 - k
        for mult in (4, 2, 1):
            block = UnetBlock(ngf * mult, ngf * mult * 2, inner=block, norm=norm)
        self.model = UnetBlock(out_ch, ngf, in_ch, inner=block, outermost=True, norm=norm)

    def set_test_mode(self, dropout: bool, sample_stats: bool) -> None:
        """What eval mode does: dropout on or off, batch norm with each sample's statistics or
        the running averages (training mode is unaffected)."""
        for m in self.modules():
            if isinstance(m, TestTimeDropout):
                m.active = dropout
            elif isinstance(m, TestTimeBatchNorm2d):
                m.sample_stats = sample_stats

    def dropout_masks(self, x: torch.Tensor, seed: int) -> list[torch.Tensor]:
        """The test-time dropout's keep masks for the batch ``x`` (N×C×H×W), drawn before the
        network runs so that a compiled graph takes them as inputs: sample i's from a CPU
        generator of its own seeded with ``seed`` (every sample the same seed: an image's noise
        is a function of the seed alone, in any batch, at any place, on any device), one
        ``torch.rand`` per layer in the order the layers run, of the shape each layer's input
        has (C×h×w), kept where ≥ p; moved to ``x``'s device. One N×C×h×w bool tensor per
        layer, in that order (``TestTimeDropout.order``)."""
        drops = sorted((m for m in self.modules() if isinstance(m, TestTimeDropout)), key=lambda m: m.order)
        gens = [seeded_generator(seed) for _ in range(x.shape[0])]
        masks = []
        for m in drops:
            h, w = x.shape[-2:]
            for _ in range(m.depth):  # each down conv: 4×4, stride 2, padding 1
                h, w = (h - 2) // 2 + 1, (w - 2) // 2 + 1
            masks.append(torch.stack([torch.rand(m.channels, h, w, generator=g) >= m.p for g in gens]).to(x.device))
        return masks

    def forward(self, x, noise: list | None = None):
        """``noise``: :meth:`dropout_masks`' masks for ``x`` (eval mode, dropout on); None: the
        global RNG's."""
        return self.model(x, noise)
