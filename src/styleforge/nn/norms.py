"""Normalisation layers by name: ``norm_layer("instance", 64)``.

``batch``, ``instance`` (no affine, no running stats, as the CycleGAN/pix2pix code uses it),
``instance_affine`` (the same with a learned per-channel weight and bias,
``InstanceNorm2d(affine=True)``, as CycleGAN ports such as vintagify's train it), ``layer``
(per-sample over C×H×W with a per-channel affine, as UNIT/MUNIT use it) and ``none``.
Adaptive norms (AdaIN, AdaLIN, conditional instance norm) follow below.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .quant import FakeQuant

NORMS = ("batch", "instance", "instance_affine", "layer", "none")
INSTANCE_NORMS = ("instance", "instance_affine")


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


class LayerNormStd(nn.Module):
    """Layer norm as the UNIT/MUNIT code computes it: per sample over (C, H, W),
    ``(x - mean) / (std + eps)`` with the *unbiased* std (eps added to the std, not the variance),
    then a per-channel ``gamma``/``beta`` (their key names; ``gamma`` starts U(0, 1) as theirs)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        flat = x.reshape(x.shape[0], -1)
        shape = (-1,) + (1,) * (x.dim() - 1)
        std, mean = torch.std_mean(flat, dim=1)
        x = (x - mean.view(shape)) / (std.view(shape) + self.eps)
        affine = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.gamma.view(affine) + self.beta.view(affine)


def adaptive_instance_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                           eps: float = 1e-5) -> torch.Tensor:
    """AdaIN (Huang & Belongie 2017): instance-normalise ``x`` (N×C×H×W; biased variance, eps
    inside the square root) and apply per-sample ``weight``/``bias`` of shape N×C."""
    return torch.addcmul(bias[:, :, None, None], F.instance_norm(x, eps=eps),
                         weight[:, :, None, None])


class AdaIN(nn.Module):
    """Adaptive instance norm whose N×C weight and bias the caller passes (MUNIT's MLP output,
    FUNIT's class code); no parameters or buffers of its own."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps

    def forward(self, x, weight, bias):
        if weight is None or bias is None:
            raise ValueError("AdaIN needs its weight and bias (N×C) from the caller")
        return adaptive_instance_norm(x, weight, bias, self.eps)

    def extra_repr(self):
        return str(self.num_features)


def check_norm(name: str) -> str:
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return name


def norm_layer(name: str, channels: int) -> nn.Module:
    check_norm(name)
    if name == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if name in INSTANCE_NORMS:
        return nn.InstanceNorm2d(channels, affine=name == "instance_affine", track_running_stats=False)
    if name == "layer":
        return LayerNorm2d(channels)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` has a bias, following the CycleGAN/pix2pix code:
    only before instance norm, affine or not (their ``use_bias`` test is on the layer's class;
    batch norm's shift makes a bias redundant; their ``none`` norm also drops it, and parameter
    counts depend on this)."""
    return check_norm(norm) in INSTANCE_NORMS


def spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of a conv/linear layer's weight.

    Uses the classic hook form, whose state dict keys (``weight_orig``, ``weight_u``,
    ``weight_v``) are those of the authors' checkpoints that use it (U-GAT-IT, FUNIT).
    """
    return nn.utils.spectral_norm(module)


# ---- layer-instance normalisation (U-GAT-IT, Kim et al. 2020, Sec. 2.1.1; Photo2Cartoon) ----
def layer_instance_norm(x: torch.Tensor, rho: torch.Tensor, gamma=None, beta=None,
                        eps: float = 1e-5) -> torch.Tensor:
    """``rho * IN(x) + (1 - rho) * LN(x)``, then ``* gamma + beta``.

    ``x``: N×C×H×W; ``rho``: 1×C×1×1; ``gamma``/``beta``: broadcastable to N×C×1×1 (or None).
    As in the authors' code both variances are the *unbiased* ones (``torch.var``'s default);
    released checkpoints were trained with them. Both normalisations are affine in ``x`` with
    per-sample, per-channel coefficients, so the whole layer is folded into one
    ``x * scale + shift`` (scale, shift: N×C×1×1): one full-size product instead of the half
    dozen full-size temporaries of the literal formula, with the same value and gradients.
    Statistics are taken in float32 at least (under bf16 autocast too; float64 stays float64);
    the output keeps ``x``'s dtype.
    """
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    in_var, in_mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=1)
    ln_var, ln_mean = torch.var_mean(xf, dim=(1, 2, 3), keepdim=True, correction=1)
    a_in, a_ln = torch.rsqrt(in_var + eps), torch.rsqrt(ln_var + eps)
    rho = rho.to(xf.dtype)
    scale = rho * a_in + (1 - rho) * a_ln
    shift = -(rho * a_in * in_mean + (1 - rho) * a_ln * ln_mean)
    if gamma is not None:
        scale, shift = scale * gamma, shift * gamma
    if beta is not None:
        shift = shift + beta
    return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


class LIN(nn.Module):
    """Layer-Instance Normalisation with a learned per-channel affine (the authors' ``ILN``).

    Parameters ``rho``, ``gamma``, ``beta`` of shape 1×C×1×1 (the checkpoints' shapes);
    ``rho`` starts at 0 (pure layer norm), ``gamma`` at 1, ``beta`` at 0, as in the official code.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x):
        return layer_instance_norm(x, self.rho, self.gamma, self.beta, self.eps)


ILN = LIN  # the name in the authors' code


class AdaLIN(nn.Module):
    """Adaptive Layer-Instance Normalisation: ``gamma``/``beta`` (N×C) come from the caller
    (U-GAT-IT's FC layers); ``rho`` (1×C×1×1) is learned, starting at 0.9 as in the official
    code (``adaILN``), and kept in [0, 1] by :func:`clip_rho_` after every generator update."""

    def __init__(self, num_features: int, eps: float = 1e-5, rho_init: float = 0.9):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), float(rho_init)))

    def forward(self, x, gamma, beta):
        return layer_instance_norm(x, self.rho, gamma[:, :, None, None], beta[:, :, None, None],
                                   self.eps)


@torch.no_grad()
def clip_rho_(module: nn.Module, lo: float = 0.0, hi: float = 1.0) -> None:
    """Clamp every ``rho`` parameter under ``module`` into [lo, hi] in place (the authors'
    ``RhoClipper``, applied after each generator step)."""
    for m in module.modules():
        rho = getattr(m, "rho", None)
        if isinstance(rho, torch.Tensor):
            rho.clamp_(lo, hi)


# ---- conditional instance normalisation (Dumoulin et al. 2017, Sec. 2.2) -------------------
class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one (gamma, beta) pair per style: ``gamma``, ``beta`` are S×C
    (Magenta's ``InstanceNorm/gamma`` and ``beta`` variables, initialised to 1 and 0).

    ``forward(x, weights)``: ``x`` N×C×H×W, ``weights`` N×S rows of style weights. A one-hot
    row selects one style (``weights @ gamma`` is then exactly that style's row); a convex row
    mixes the styles' parameters (their ``weighted_instance_norm``, Sec. 4 interpolation).
    Statistics are the biased ones with eps 1e-5 (``tf.nn.moments`` + ``batch_normalization``).
    """

    def __init__(self, num_features: int, num_styles: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(num_styles, num_features))
        self.beta = nn.Parameter(torch.zeros(num_styles, num_features))

    def forward(self, x, weights):
        gamma = (weights @ self.gamma)[:, :, None, None]
        beta = (weights @ self.beta)[:, :, None, None]
        return torch.nn.functional.instance_norm(x, eps=self.eps) * gamma + beta


class PredictedInstanceNorm(nn.Module):
    """Instance norm whose per-channel γ and β a linear map predicts from a style vector ``S``
    (Ghiasi et al. 2017, Sec. 3: the conditional instance norm of Dumoulin et al. with its
    γ_s, β_s computed from S instead of looked up; Magenta's ``style_params/.../StyleNorm``: a
    1×1 conv ``Conv`` -> β and ``Conv_1`` -> γ per normalised layer, Xavier weights, zero biases).

    ``forward(x, code)``: ``x`` N×C×H×W; ``code`` an N×D style vector, or a pair
    ``(codes, masks)`` of N×K×D vectors and N×K×h×w weights: γ and β of each vector, mixed per
    pixel by the weights (resized to x's size: spatial control). Biased variance, eps 1e-5.

    ``quant`` True: computed as TF-Lite's int8 conversion of Magenta's ``StyleNorm`` computes it
    (``tf.nn.moments`` then ``tf.nn.batch_normalization``), every intermediate rounded at its
    own point (``q``, by the TF op's name): γ and β (``gamma``, ``beta``), the mean, (x − mean)²
    (``sqdiff``), its mean (``var``), var + eps (``add``), 1/√· (``rsqrt``), γ/σ (``mul``),
    mean γ/σ (``mul_2``), β − mean γ/σ (``sub``), x γ/σ (``mul_1``); the sum x γ/σ + β − mean γ/σ
    is the caller's to round."""

    QUANT_POINTS = ("gamma", "beta", "mean", "sqdiff", "var", "add", "rsqrt", "mul", "mul_2", "sub", "mul_1")

    def __init__(self, num_features: int, code_dim: int, eps: float = 1e-5, quant: bool = False):
        super().__init__()
        self.eps = eps
        self.beta = nn.Linear(code_dim, num_features)
        self.gamma = nn.Linear(code_dim, num_features)
        for lin in (self.beta, self.gamma):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.q = nn.ModuleDict({k: FakeQuant() for k in self.QUANT_POINTS}) if quant else None

    def forward(self, x, code):
        if self.q is not None:
            return self._forward_int8(x, code)
        if isinstance(code, (tuple, list)):
            codes, masks = code  # N×K×D, N×K×h×w
            w = F.interpolate(masks.to(x.dtype), size=x.shape[-2:], mode="nearest")[:, :, None]  # N×K×1×H×W
            gamma = (self.gamma(codes)[..., None, None] * w).sum(1)  # N×C×H×W
            beta = (self.beta(codes)[..., None, None] * w).sum(1)
            return F.instance_norm(x, eps=self.eps) * gamma + beta
        return adaptive_instance_norm(x, self.gamma(code), self.beta(code), self.eps)

    def _forward_int8(self, x, code):
        q = self.q
        if isinstance(code, (tuple, list)):
            codes, masks = code  # N×K×D, N×K×h×w
            w = F.interpolate(masks.to(x.dtype), size=x.shape[-2:], mode="nearest")[:, :, None]  # N×K×1×H×W
            gamma = (q.gamma(self.gamma(codes))[..., None, None] * w).sum(1)  # N×C×H×W
            beta = (q.beta(self.beta(codes))[..., None, None] * w).sum(1)
        else:
            gamma, beta = q.gamma(self.gamma(code))[..., None, None], q.beta(self.beta(code))[..., None, None]
        mean = q.mean(x.mean(dim=(2, 3), keepdim=True))  # N×C×1×1
        d = x - mean
        var = q.var(q.sqdiff(d * d).mean(dim=(2, 3), keepdim=True))
        v = q.add(var + self.eps)  # 0 where the rounded variance is: 1/√0 = inf saturates the rsqrt point
        if v.requires_grad:  # training: the same saturation from 1/√eps, and no inf · 0 gradient
            v = v.clamp_min(self.eps)
        mul = q.mul(q.rsqrt(1 / torch.sqrt(v)) * gamma)  # Sqrt, Reciprocal: the file's ops
        return q.mul_1(x * mul) + q.sub(beta - q.mul_2(mean * mul))
