"""Colour control for style transfer (Gatys et al. 2017, "Controlling Perceptual Factors in
Neural Style Transfer", section 5): recolour the style image to the content's colours before the
transfer, or transfer luminance only.

Colour-histogram matching (section 5.1, "colour histogram matching"): each pixel x of the source
becomes A(x − μ_s) + μ_t so that the result has the target's mean μ_t and covariance Σ_t
(A Σ_s Aᵀ = Σ_t). The variants differ in A:

* ``cholesky``: A = L_t L_s⁻¹ with Σ = L Lᵀ (Cholesky factors);
* ``pca`` (the 3-D colour matching of Image Analogies, Hertzmann et al. 2001):
  A = Σ_t^½ Σ_s^-½, square roots from the eigen-decomposition;
* ``symmetric`` (the symmetric, Monge–Kantorovich linear map):
  A = Σ_s^-½ (Σ_s^½ Σ_t Σ_s^½)^½ Σ_s^-½.

Both covariances get ``eps``·I added (1e-5 for images in [0, 1], as in the authors'
NeuralImageSynthesis ``match_color``) so that flat images stay invertible.

Luminance-only transfer (section 5.1, "luminance-only transfer"): the YIQ luminance Y of both
images is taken; the style's Y is matched to the content's mean and standard deviation
(Y_s' = σ_c/σ_s (Y_s − μ_s) + μ_c); the transfer runs on Y (repeated to three channels for the
network) and the result's Y is joined with the content's I and Q.

Images here are N×3×H×W in [0, 1]; statistics are per image (a batch of 1 broadcasts).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError

HISTOGRAM_MODES = ("pca", "cholesky", "symmetric")

# NTSC RGB -> YIQ
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _mix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return _mix(_RGB_TO_YIQ, x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return _mix(_YIQ_TO_RGB, x)


def color_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image colour mean (N×3) and covariance (N×3×3, population, 1/(H·W))."""
    flat = x.flatten(2)
    mu = flat.mean(dim=2)
    d = flat - mu[:, :, None]
    return mu, d @ d.transpose(1, 2) / flat.shape[2]


def _sym_power(m: torch.Tensor, p: float) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return vecs @ torch.diag_embed(vals.clamp_min(0) ** p) @ vecs.transpose(-1, -2)


def match_color(source: torch.Tensor, target: torch.Tensor, mode: str = "pca",
                eps: float = 1e-5) -> torch.Tensor:
    """``source`` (N×3×h×w in [0, 1]) recoloured to ``target``'s colour mean and covariance.
    Not clamped: a caller clamps to [0, 1] when it needs an image."""
    if mode not in HISTOGRAM_MODES:
        raise ConfigError(f"histogram matching mode {mode!r}: choose one of {', '.join(HISTOGRAM_MODES)}")
    dtype = source.dtype
    s, t = source.double(), target.double()
    mu_s, cov_s = color_stats(s)
    mu_t, cov_t = color_stats(t)
    eye = torch.eye(3, dtype=torch.float64, device=s.device)
    cov_s, cov_t = cov_s + eps * eye, cov_t + eps * eye
    if mode == "cholesky":
        a = torch.linalg.cholesky(cov_t) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
    elif mode == "pca":
        a = _sym_power(cov_t, 0.5) @ _sym_power(cov_s, -0.5)
    else:
        root_s, inv_root_s = _sym_power(cov_s, 0.5), _sym_power(cov_s, -0.5)
        a = inv_root_s @ _sym_power(root_s @ cov_t @ root_s, 0.5) @ inv_root_s
    flat = s.flatten(2) - mu_s[:, :, None]
    out = a @ flat + mu_t[:, :, None]
    return out.reshape(out.shape[0], *s.shape[1:]).to(dtype)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """The YIQ luminance Y of N×3×H×W RGB, N×1×H×W."""
    return rgb_to_yiq(x)[:, :1]


def match_luminance(source_y: torch.Tensor, target_y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``source_y`` (N×1×h×w) shifted and scaled to ``target_y``'s mean and standard deviation."""
    dims = (1, 2, 3)
    mu_s, sd_s = source_y.mean(dim=dims, keepdim=True), source_y.std(dim=dims, keepdim=True, unbiased=False)
    mu_t, sd_t = target_y.mean(dim=dims, keepdim=True), target_y.std(dim=dims, keepdim=True, unbiased=False)
    return (source_y - mu_s) * (sd_t / (sd_s + eps)) + mu_t


def join_luminance(y: torch.Tensor, color_from: torch.Tensor) -> torch.Tensor:
    """RGB from luminance ``y`` (N×1×H×W, or an N×3×H×W RGB image whose luminance is taken) and
    the I, Q chrominance of ``color_from`` (N×3×H×W RGB)."""
    if y.shape[1] == 3:
        y = luminance(y)
    iq = rgb_to_yiq(color_from)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq.expand(y.shape[0], -1, -1, -1)], dim=1))
