"""Feature statistics and adaptive instance normalisation (Huang & Belongie 2017, Eq. 8):

    AdaIN(x, y) = σ(y) · (x − μ(x)) / σ(x) + μ(y)

μ, σ per sample and channel over the spatial positions. σ follows pytorch-AdaIN's
``calc_mean_std`` (unbiased variance + 1e-5, then the square root); the authors' Lua layer used
batch normalisation's biased variance for x and the biased std for y (``unbiased=False`` gives
the variance convention; their eps sits inside the root for x only).

Also the region-wise AdaIN of the Lua test script's spatial control (statistics of x taken over
a mask's positions only) and CORAL colour transfer (``coral``: an image recoloured to another's
colour mean and covariance, used for AdaIN's colour preservation, Sec. 7.2).
"""
from __future__ import annotations

import torch


def _f32(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def mean_std(x: torch.Tensor, eps: float = 1e-5, unbiased: bool = True):
    """(μ, σ) of N×C×H×W features, each N×C×1×1; σ = sqrt(var + eps). Float32 at least."""
    var, mean = torch.var_mean(_f32(x).flatten(2), dim=2, correction=1 if unbiased else 0)
    return mean[..., None, None], (var + eps).sqrt()[..., None, None]


def adain_stats(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-5,
                unbiased: bool = True) -> torch.Tensor:
    """x normalised per channel, then given the target ``mean``/``std`` (N×C×1×1 or 1×C×1×1).
    Folded to one ``x · a + b`` (a, b: N×C×1×1) with the same value as the literal formula."""
    m, s = mean_std(x, eps, unbiased)
    scale = std / s
    shift = mean - m * scale
    return (x * scale.to(x.dtype) + shift.to(x.dtype))


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5, unbiased: bool = True) -> torch.Tensor:
    """AdaIN(content, style): N×C×H×W content features, N×C×h×w (or 1×C×h×w) style features."""
    ms, ss = mean_std(style, eps, unbiased)
    return adain_stats(content, ms, ss, eps, unbiased)


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5):
    """(μ, σ) of x (N×C×H×W) over the positions where ``mask`` (N×1×H×W, 0 or 1) is 1, with the
    unbiased variance; an empty region gives finite values (it is multiplied by 0 after)."""
    xf, m = _f32(x), mask.to(_f32(x).dtype)
    count = m.sum(dim=(2, 3), keepdim=True)
    mean = (xf * m).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
    var = (((xf - mean) ** 2) * m).sum(dim=(2, 3), keepdim=True) / (count - 1).clamp(min=1)
    return mean, (var + eps).sqrt()


def adain_regions(content: torch.Tensor, masks: list[torch.Tensor], style_stats: list[tuple],
                  eps: float = 1e-5) -> torch.Tensor:
    """Spatial control: region r (``masks[r]``, N×1×H×W binary, the regions disjoint) gets
    AdaIN of the content's features *within* that region to style r's (μ, σ)."""
    out = torch.zeros_like(content)
    for m, (ms, ss) in zip(masks, style_stats):
        mc, sc = masked_mean_std(content, m, eps)
        scale = ss / sc
        shift = ms - mc * scale
        out = out + m.to(content.dtype) * (content * scale.to(content.dtype) + shift.to(content.dtype))
    return out


def coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``source`` (3×H×W or 1×3×H×W) recoloured so that its per-channel mean and colour
    covariance are ``target``'s (CORAL, as AdaIN's colour preservation computes it: both images
    standardised per channel, whitened by sqrt(C_s + I)^-1 and coloured by sqrt(C_t + I), with
    C the summed outer products of the standardised colours). Any per-image affine pixel range
    gives the same result, so [-1, 1] images work as [0, 1] ones do."""
    shape = source.shape
    s = source.reshape(3, -1).double()
    t = target.reshape(3, -1).double()

    def standardise(v):
        mean, std = v.mean(1, keepdim=True), v.std(1, keepdim=True)
        return (v - mean) / std, mean, std

    def sqrtm(a, inverse=False):  # symmetric positive definite 3×3
        w, v = torch.linalg.eigh(a)
        w = w.clamp(min=1e-12).sqrt()
        return (v * (1 / w if inverse else w)) @ v.T

    sn, _, _ = standardise(s)
    tn, tmean, tstd = standardise(t)
    eye = torch.eye(3, dtype=s.dtype, device=s.device)
    transfer = sqrtm(tn @ tn.T + eye) @ sqrtm(sn @ sn.T + eye, inverse=True) @ sn
    return (transfer * tstd + tmean).to(source.dtype).reshape(shape)
