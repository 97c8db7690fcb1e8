"""Conv, residual, down- and up-sampling blocks with a small signature.

Factories return plain layer lists where the authors' checkpoints index layers inside one
``nn.Sequential`` (the CycleGAN generator's ``model.N`` keys), so a network can lay its layers
out exactly as theirs and still build them here.
"""
from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .norms import AdaLIN, conv_bias, norm_layer

PADS = ("reflect", "replicate", "zero")
ACTS = ("relu", "lrelu", "tanh", "sigmoid", "none")


def activation(name: str, slope: float = 0.2) -> nn.Module:
    if name == "relu":
        return nn.ReLU(True)
    if name == "lrelu":
        return nn.LeakyReLU(slope, True)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(ACTS)}")


def padding_layers(pad: str, size: int) -> tuple[list[nn.Module], int]:
    """Explicit padding layer(s) and the padding left for the conv itself."""
    if size == 0:
        return [], 0
    if pad == "reflect":
        return [nn.ReflectionPad2d(size)], 0
    if pad == "replicate":
        return [nn.ReplicationPad2d(size)], 0
    if pad == "zero":
        return [], size
    raise ConfigError(f"unknown padding {pad!r}; choose one of {', '.join(PADS)}")


def conv_layers(in_ch, out_ch, k, stride=1, padding=None, norm="instance", act="relu",
                pad="reflect", bias=None) -> list[nn.Module]:
    """[pad] conv [norm] [act]; ``padding`` defaults to k // 2.

    ``norm=None`` adds no norm layer; ``norm="none"`` adds an ``Identity`` in its place, as the
    CycleGAN code does (it keeps the authors' layer indices, hence checkpoint keys)."""
    padding = k // 2 if padding is None else padding
    pre, conv_pad = padding_layers(pad, padding)
    bias = conv_bias(norm or "none") if bias is None else bias
    layers = pre + [nn.Conv2d(in_ch, out_ch, k, stride, conv_pad, bias=bias)]
    if norm is not None:
        layers.append(norm_layer(norm, out_ch))
    if act != "none":
        layers.append(activation(act))
    return layers


def conv_block(in_ch, out_ch, k, stride=1, **kw) -> nn.Sequential:
    return nn.Sequential(*conv_layers(in_ch, out_ch, k, stride, **kw))


def down_layers(in_ch, out_ch, norm="instance", act="relu", bias=None) -> list[nn.Module]:
    """Stride-2 3×3 conv halving H and W (CycleGAN's down-sampling, zero padding 1)."""
    return conv_layers(in_ch, out_ch, 3, 2, padding=1, norm=norm, act=act, pad="zero", bias=bias)


def up_layers(in_ch, out_ch, norm="instance", act="relu", bias=None) -> list[nn.Module]:
    """Stride-2 3×3 transposed conv doubling H and W (CycleGAN's up-sampling)."""
    bias = conv_bias(norm or "none") if bias is None else bias
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=bias)
    ]
    if norm is not None:
        layers.append(norm_layer(norm, out_ch))
    if act != "none":
        layers.append(activation(act))
    return layers


class ResnetBlock(nn.Module):
    """x + F(x), F = [pad conv norm relu (dropout) pad conv norm] (He et al. 2016; CycleGAN).

    The layers live in ``conv_block`` so parameter names match the CycleGAN checkpoints.
    """

    def __init__(self, dim: int, norm="instance", pad="reflect", dropout=0.0, bias=None):
        super().__init__()
        layers = conv_layers(dim, dim, 3, norm=norm, act="relu", pad=pad, bias=bias)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += conv_layers(dim, dim, 3, norm=norm, act="none", pad=pad, bias=bias)
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetAdaLINBlock(nn.Module):
    """x + [pad conv norm relu pad conv norm](x), both norms conditioned on ``*cond``: U-GAT-IT's
    ``ResnetAdaILNBlock`` (``norm=AdaLIN``, cond = gamma, beta from the generator's MLP) and
    Photo2Cartoon's ``ResnetSoftAdaLINBlock`` (``norm=SoftAdaLIN``, cond = content, style).
    Keys conv1, norm1.*, conv2, norm2.*, as the authors name them."""

    def __init__(self, dim: int, norm=AdaLIN):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 0, bias=False)
        self.norm1 = norm(dim)
        self.relu1 = nn.ReLU(True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 0, bias=False)
        self.norm2 = norm(dim)

    def forward(self, x, *cond):
        h = self.relu1(self.norm1(self.conv1(self.pad1(x)), *cond))
        return x + self.norm2(self.conv2(self.pad2(h)), *cond)
