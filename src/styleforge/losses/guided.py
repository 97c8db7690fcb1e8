"""Guided (masked) Gram matrices for spatial control of style: Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", section 4 (eq. 4-5), and the segmented style loss
of Luan et al. 2017, "Deep Photo Style Transfer", section 3.2 (eq. 3).

For a region r with guidance channel T^r (a mask, propagated to layer l as T_l^r) the features
are F_l^r = F_l ∘ T_l^r and the guided Gram is G_l^r = F_l^r F_l^rᵀ. Here it is divided by
C·Σ T_l^r (C·H·W times the mask's mean, as ``StyleLossWithSeg`` of the DPST code divides), which
for an all-ones mask is the plain C·H·W-normalised Gram of ``losses.perceptual.gram_matrix``.

Masks reach each layer by :func:`propagate_mask`:

* ``resize`` (Gatys 2017, section 4.1: the guidance channels downsampled to each layer's size):
  a bilinear resize of the input mask to the layer's height and width;
* ``dpst`` (the DPST code): walking the network, a 3×3 mean filter (stride 1, zero padding,
  padded zeros counted) at each convolution and a bilinear halving at each pooling layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

PROPAGATIONS = ("resize", "dpst")


def guided_gram(f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """N×C×H×W features, N×1×H×W (or 1×1×H×W) mask -> N×C×C Gram of ``f ∘ mask`` divided by
    C·Σ mask (C·H·W without a mask). An empty mask gives a zero matrix."""
    f = f.float() if f.dtype in (torch.float16, torch.bfloat16) else f
    n, c, h, w = f.shape
    if mask is None:
        flat = f.reshape(n, c, h * w)
        return flat @ flat.transpose(1, 2) / (c * h * w)
    if mask.shape[-2:] != f.shape[-2:]:
        raise ConfigError(f"guided_gram: mask of size {tuple(mask.shape[-2:])} for features of size {(h, w)}")
    flat = (f * mask.to(f.dtype)).reshape(n, c, h * w)
    area = mask.to(f.dtype).flatten(1).sum(dim=1).clamp_min(1e-12)  # N (or 1)
    return flat @ flat.transpose(1, 2) / (c * area)[:, None, None]


def propagate_mask(mask: torch.Tensor, layer_sequence, sizes: dict[str, tuple[int, int]],
                   mode: str = "resize") -> dict[str, torch.Tensor]:
    """The mask (N×1×H×W at the input's size) at each layer of ``sizes`` ({layer: (h, w)}).
    ``layer_sequence``: the network's layer names in order (``conv1_1``, ``relu1_1``, ...,
    ``pool1``, ...), walked by the ``dpst`` mode."""
    if mode not in PROPAGATIONS:
        raise ConfigError(f"mask propagation {mode!r}: choose one of {', '.join(PROPAGATIONS)}")
    mask = mask.float()
    if mode == "resize":
        return {name: (mask if tuple(mask.shape[-2:]) == tuple(hw) else
                       F.interpolate(mask, size=tuple(hw), mode="bilinear", align_corners=False))
                for name, hw in sizes.items()}
    out, m = {}, mask
    for name in layer_sequence:
        if name.startswith("conv"):
            m = F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=True)
        elif name.startswith("pool"):
            m = F.interpolate(m, size=(-(-m.shape[-2] // 2), -(-m.shape[-1] // 2)), mode="bilinear",
                              align_corners=False)
        if name in sizes:
            hw = tuple(sizes[name])
            # the encoder may floor where the authors' halving rounds up: crop to its size
            out[name] = m[..., :hw[0], :hw[1]] if tuple(m.shape[-2:]) != hw else m
        if len(out) == len(sizes):
            break
    return out


# colour codes of the DPST segmentation images (``ExtractMask`` of the authors' code), RGB in [0, 1]
DPST_COLORS = {
    "blue": (0, 0, 1), "green": (0, 1, 0), "black": (0, 0, 0), "white": (1, 1, 1), "red": (1, 0, 0),
    "yellow": (1, 1, 0), "grey": (0.5, 0.5, 0.5), "lightblue": (0, 1, 1), "purple": (1, 0, 1),
}


def color_label_masks(seg: torch.Tensor, colors=tuple(DPST_COLORS), tol: float = 0.1) -> torch.Tensor:
    """A colour-coded segmentation image (N×3×H×W in [0, 1]) -> N×K×H×W binary masks, one per
    colour of ``colors``: a pixel belongs to a label when each channel is within ``tol`` of its
    code (0 and 1 codes are one-sided: < 0.1, > 0.9; grey is 0.5 ± 0.1), as the authors test."""
    if seg.ndim != 4 or seg.shape[1] != 3:
        raise ConfigError(f"segmentation image must be N×3×H×W colour-coded labels, got shape {tuple(seg.shape)}")
    masks = []
    for name in colors:
        if name not in DPST_COLORS:
            raise ConfigError(f"unknown segmentation colour {name!r}; known: {', '.join(DPST_COLORS)}")
        code = torch.tensor(DPST_COLORS[name], dtype=seg.dtype, device=seg.device).view(1, 3, 1, 1)
        inside = torch.where(code == 0, seg < tol, torch.where(code == 1, seg > 1 - tol,
                                                               (seg - code).abs() < tol))
        masks.append(inside.all(dim=1, keepdim=True))
    return torch.cat(masks, dim=1).to(seg.dtype)
