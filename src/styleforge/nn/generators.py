"""Generators shared by several methods.

``ResnetGenerator`` is the encoder / residual blocks / decoder network of Johnson et al. 2016 as
the CycleGAN code builds it (ResNet-6 for 128 px, ResNet-9 for 256 px). Its layers sit in one
``nn.Sequential`` called ``model`` in the authors' order, so their checkpoints' keys
(``model.1.weight`` ... ``model.10.conv_block.1.weight`` ...) load unchanged.
"""
from __future__ import annotations

from torch import nn

from .blocks import ResnetBlock, conv_layers, down_layers, up_layers
from .norms import conv_bias


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
