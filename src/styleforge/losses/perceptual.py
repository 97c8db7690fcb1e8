"""Perceptual losses on VGG features (``styleforge.nn.vgg``): content MSE, Gram-matrix style
(Gatys et al. 2016), mean/std style (Huang & Belongie 2017), total variation.

Each takes feature tensors N×C×H×W (the encoder is run by the caller, once per image, so a
feature map serves several terms) and returns a scalar.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.adain import mean_std

GRAM_NORMS = ("chw", "hw", "none")
REDUCTIONS = ("mean", "sum")


def content_loss(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between feature maps (Gatys' content term up to its constant;
    AdaIN's ‖f(g(t)) − t‖² with the mean reduction of both codebases)."""
    return F.mse_loss(input, target)


def gram_matrix(f: torch.Tensor, norm: str = "chw") -> torch.Tensor:
    """N×C×H×W -> N×C×C, ``F Fᵀ`` over positions, divided by C·H·W (``chw``: neural-style-pt,
    Johnson et al.), H·W (``hw``) or not at all (``none``: Gatys' Eq. 3). Float32 at least."""
    if norm not in GRAM_NORMS:
        raise ConfigError(f"gram_matrix: norm must be one of {', '.join(GRAM_NORMS)}, got {norm!r}")
    f = f.float() if f.dtype in (torch.float16, torch.bfloat16) else f
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    g = flat @ flat.transpose(1, 2)
    if norm == "chw":
        g = g / (c * h * w)
    elif norm == "hw":
        g = g / (h * w)
    return g


def gram_loss(input: torch.Tensor, target_gram: torch.Tensor, norm: str = "chw") -> torch.Tensor:
    """MSE between the Gram matrix of ``input`` features and a target Gram (N×C×C or 1×C×C)."""
    g = gram_matrix(input, norm)
    return F.mse_loss(g, target_gram.to(g.dtype).expand_as(g))


def mean_std_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """AdaIN's style term for one layer: distance of per-channel means plus of stds.

    ``mean`` (pytorch-AdaIN): MSE over N×C of μ and of σ, σ = sqrt(unbiased var + 1e-5).
    ``sum`` (the authors' Lua ``StyleINLossModule``): squared differences summed over channels and
    averaged over the batch, σ of the input = sqrt(biased var + 1e-6), σ of the target the biased
    std. Per layer the Lua value is C times the port's (up to the σ conventions), which is why
    their style weights differ (1e-2 against 10).
    """
    if reduction not in REDUCTIONS:
        raise ConfigError(f"mean_std_loss: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if reduction == "mean":
        mi, si = mean_std(input)
        mt, st = mean_std(target)
        return F.mse_loss(mi, mt) + F.mse_loss(si, st)
    mi, si = mean_std(input, eps=1e-6, unbiased=False)
    mt, st = mean_std(target, eps=0.0, unbiased=False)
    n = input.shape[0]
    return (((mi - mt) ** 2).sum() + ((si - st) ** 2).sum()) / n


def total_variation(x: torch.Tensor, exponent: float = 1.0, reduction: str = "sum") -> torch.Tensor:
    """Σ |x[i+1, j] − x[i, j]|^p + |x[i, j+1] − x[i, j]|^p over an N×C×H×W image (``sum``, as
    neural-style-pt with p = 1) or the mean of each direction's terms added (``mean``)."""
    if reduction not in REDUCTIONS:
        raise ConfigError(f"total_variation: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs() ** exponent
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs() ** exponent
    if reduction == "sum":
        return dy.sum() + dx.sum()
    return dy.mean() + dx.mean()
