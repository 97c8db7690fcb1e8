"""Class activation map (CAM) attention of U-GAT-IT (Kim et al. 2020, Sec. 2.1.1 and 2.1.2).

An auxiliary classifier ``eta`` scores a feature map from its global-average-pooled and its
global-max-pooled vector (``gap_fc``, ``gmp_fc``: bias-free linear layers C -> 1). Their weights
``w`` then re-weight the channels of the features (``a = w * E``, one copy per pooling), the two
copies are concatenated and fused by a 1×1 conv (2C -> C) and an activation (ReLU in the
generator, leaky ReLU 0.2 in the discriminators). The attention heatmap is the channel sum of
the result.

The layers are kept flat on the owning network (``gap_fc``, ``gmp_fc``, ``conv1x1``), as in the
authors' checkpoints; :func:`cam_layers` builds them and :func:`class_activation_map` is the
forward. :class:`CAM` bundles both for networks that want a submodule.

Two details of the official code that outputs depend on:

* With spectral norm (the discriminators) the logits use the normalised weight, but the channel
  re-weighting uses the raw parameter ``weight_orig`` (the code reads the layer's first
  parameter).
* ``conv1x1(cat(x * w_gap, x * w_gmp))`` equals a 1×1 conv of ``x`` with the weight
  ``W[:, :C] * w_gap + W[:, C:] * w_gmp``; that is what is computed here, which never builds the
  2C-channel tensor (half the conv's work and activation memory; same value and gradients).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .norms import spectral_norm


def cam_layers(channels: int, spectral: bool = False) -> tuple[nn.Linear, nn.Linear, nn.Conv2d]:
    """``gap_fc``, ``gmp_fc`` (C -> 1, no bias; spectral norm if asked) and ``conv1x1`` (2C -> C)."""
    def fc():  # built in the official order, so a seed gives the official initial weights
        layer = nn.Linear(channels, 1, bias=False)
        return spectral_norm(layer) if spectral else layer

    gap_fc = fc()
    gmp_fc = fc()
    return gap_fc, gmp_fc, nn.Conv2d(2 * channels, channels, 1, 1, bias=True)


def _raw_weight(fc: nn.Linear) -> torch.Tensor:
    # spectral-norm layers keep the parameter as weight_orig; the official code re-weights by it
    return fc.weight_orig if hasattr(fc, "weight_orig") else fc.weight


def class_activation_map(x: torch.Tensor, gap_fc: nn.Module, gmp_fc: nn.Module,
                         conv1x1: nn.Conv2d, act) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x``: N×C×H×W -> (features N×C×H×W, CAM logits N×2 [gap, gmp], heatmap N×1×H×W)."""
    n, c = x.shape[:2]
    gap_logit = gap_fc(F.adaptive_avg_pool2d(x, 1).view(n, c))
    gmp_logit = gmp_fc(F.adaptive_max_pool2d(x, 1).view(n, c))
    w_gap = _raw_weight(gap_fc).view(1, c, 1, 1)
    w_gmp = _raw_weight(gmp_fc).view(1, c, 1, 1)
    w = conv1x1.weight  # C×2C×1×1
    fused = w[:, :c] * w_gap + w[:, c:] * w_gmp
    out = act(F.conv2d(x, fused, conv1x1.bias))
    heatmap = out.sum(dim=1, keepdim=True)
    return out, torch.cat([gap_logit, gmp_logit], 1), heatmap


class CAM(nn.Module):
    """The CAM block as one submodule (keys ``gap_fc.*``, ``gmp_fc.*``, ``conv1x1.*`` under it)."""

    def __init__(self, channels: int, spectral: bool = False, act: str = "relu"):
        super().__init__()
        self.gap_fc, self.gmp_fc, self.conv1x1 = cam_layers(channels, spectral)
        self.act = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)

    def forward(self, x):
        return class_activation_map(x, self.gap_fc, self.gmp_fc, self.conv1x1, self.act)
