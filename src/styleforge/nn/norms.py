"""Normalisation layers by name: ``norm_layer("instance", 64)``.

``batch``, ``instance`` (no affine, no running stats, as the CycleGAN/pix2pix code uses it),
``layer`` (per-sample over C×H×W with a per-channel affine, as UNIT/MUNIT use it) and ``none``.
Adaptive norms (AdaIN, AdaLIN, CIN) are added beside these by the methods that need them.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

NORMS = ("batch", "instance", "layer", "none")


class LayerNorm2d(nn.Module):
    """Normalise each sample over (C, H, W); learnable per-channel scale and shift."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        # N×C×H×W; statistics over everything but N
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            x = x * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return x


def check_norm(name: str) -> str:
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return name


def norm_layer(name: str, channels: int) -> nn.Module:
    check_norm(name)
    if name == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if name == "layer":
        return LayerNorm2d(channels)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` has a bias, following the CycleGAN/pix2pix code:
    only before instance norm (batch norm's shift makes a bias redundant; their ``none`` norm
    also drops it, and parameter counts depend on this)."""
    return check_norm(norm) == "instance"


def spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of a conv/linear layer's weight.

    Uses the classic hook form, whose state dict keys (``weight_orig``, ``weight_u``,
    ``weight_v``) are those of the authors' checkpoints that use it (U-GAT-IT, FUNIT).
    """
    return nn.utils.spectral_norm(module)
