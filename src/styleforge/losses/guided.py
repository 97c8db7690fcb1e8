"""Guided (masked) Gram matrices for spatial control of style: Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", section 4 (eq. 4-5), and the segmented style loss
of Luan et al. 2017, "Deep Photo Style Transfer", section 3.2 (eq. 3).

For a region r with guidance channel T^r (a mask, propagated to layer l as T_l^r) the features
are F_l^r = F_l ∘ T_l^r and the guided Gram is G_l^r = F_l^r F_l^rᵀ. Here it is divided by
C·Σ T_l^r (C·H·W times the mask's mean, as ``StyleLossWithSeg`` of the DPST code divides), which
for an all-ones mask is the plain C·H·W-normalised Gram of ``losses.perceptual.gram_matrix``.

Masks reach each layer by :func:`propagate_mask`:

* ``inside`` (Gatys 2017, their released code's ``get_fm_guides`` mode ``inside``, the default of
  the ``gatys`` method): the input mask is binarised (``threshold`` 0.5: a value ≥ 0.5 is in the
  region) and a layer's neuron is in the region when its receptive field, within the image,
  lies inside it; the authors probe this with noise outside the region, here it is walked
  through VGG's layers (each 3×3 convolution widens the outside by one neuron, each 2×2 pooling
  keeps a neuron outside if any of its four inputs is; zero padding is never outside). Each
  layer's guide is then grown by ``extend`` neurons (3: a (2k+1)² window, their ``k``);
* ``all`` (their mode ``all``): as ``inside`` but a neuron is in the region when its receptive
  field touches it;
* ``resize`` (close to their mode ``simple``, which zooms the guide with a cubic spline): a
  bilinear resize of the input mask to the layer's height and width, not binarised;
* ``dpst`` (the DPST code): walking the network, a 3×3 mean filter (stride 1, zero padding,
  padded zeros counted) at each convolution and a bilinear halving at each pooling layer.

``inside``, ``all`` and ``dpst`` assume VGG's geometry (3×3 stride-1 convolutions padded by one,
2×2 stride-2 pooling).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

PROPAGATIONS = ("inside", "all", "resize", "dpst")


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
                   mode: str = "inside", threshold: float = 0.5, extend: int = 3,
                   ceil_mode: bool = False) -> dict[str, torch.Tensor]:
    """The mask (N×1×H×W at the input's size) at each layer of ``sizes`` ({layer: (h, w)}).
    ``layer_sequence``: the network's layer names in order (``conv1_1``, ``relu1_1``, ...,
    ``pool1``, ...), walked by the ``inside``, ``all`` and ``dpst`` modes; ``threshold`` and
    ``extend`` apply to ``inside`` and ``all``; ``ceil_mode``: the network's pooling rounds odd
    sizes up."""
    if mode not in PROPAGATIONS:
        raise ConfigError(f"mask propagation {mode!r}: choose one of {', '.join(PROPAGATIONS)}")
    if int(extend) < 0:
        raise ConfigError(f"mask propagation: guide extension must be ≥ 0 neurons, got {extend}")
    mask = mask.float()
    if mode == "resize":
        return {name: (mask if tuple(mask.shape[-2:]) == tuple(hw) else
                       F.interpolate(mask, size=tuple(hw), mode="bilinear", align_corners=False))
                for name, hw in sizes.items()}
    if mode in ("inside", "all"):
        return _receptive_field_guides(mask >= threshold, layer_sequence, sizes, mode, int(extend), ceil_mode)
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


def _receptive_field_guides(region: torch.Tensor, layer_sequence, sizes, mode: str, extend: int,
                            ceil_mode: bool) -> dict[str, torch.Tensor]:
    """Binary guides by receptive field. ``inside`` tracks the neurons that see some pixel
    outside the region (their field is not inside it), ``all`` the neurons that see some pixel
    of it; max pooling's padding is -inf, so the zero padding of the convolutions counts as
    neither (it is constant, as in the authors' probe)."""
    m = (~region if mode == "inside" else region).float()  # N×1×H×W: the set that spreads
    out = {}
    for name in layer_sequence:
        if name.startswith("conv"):
            m = F.max_pool2d(m, 3, stride=1, padding=1)
        elif name.startswith("pool"):
            m = F.max_pool2d(m, 2, stride=2, ceil_mode=ceil_mode)
        if name in sizes:
            hw = tuple(sizes[name])
            if tuple(m.shape[-2:]) != hw:
                raise ConfigError(f"mask propagation {mode}: the walk reaches {name} at "
                                  f"{tuple(m.shape[-2:])}, the network's features are {hw}")
            g = 1 - m if mode == "inside" else m
            if extend:  # their k: grow by k neurons (a (2k+1)² window)
                g = F.max_pool2d(g, 2 * extend + 1, stride=1, padding=extend)
            out[name] = g
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
