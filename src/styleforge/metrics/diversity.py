"""Diversity of a multimodal translator's outputs (MUNIT, Huang et al. 2018, section 5.1).

* **Feature diversity** (always available, offline): the mean pairwise cosine distance
  1 − cos(fᵢ, fⱼ) over all pairs i < j of Inception features of the outputs.
* **LPIPS diversity** (MUNIT's measure): the mean LPIPS distance between pairs of outputs,
  through the ``lpips`` package (Zhang et al. 2018) only when it imports and its backbone's
  torchvision weights are already on disk (``lpips`` would otherwise download them, and
  styleforge never downloads at run time); otherwise :class:`EvaluationError` says what is
  missing and where it is expected.

Both come in two forms. **Conditional**: for each input, the diversity of its outputs under
different random styles, averaged over the inputs (the basis of MUNIT's conditional scores).
**Unconditional**: the diversity of all outputs taken together, whatever their input.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import EvaluationError, first_line

# torchvision's weight files that lpips.LPIPS(net=...) loads through torch.hub
LPIPS_BACKBONES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


def feature_diversity(feats: np.ndarray) -> float:
    """Mean of 1 − cos(fᵢ, fⱼ) over all pairs i < j."""
    f = np.asarray(feats, np.float64)
    n = f.shape[0]
    if n < 2:
        raise EvaluationError(f"diversity needs at least 2 outputs, got {n}")
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    u = f / np.where(norm > 0, norm, 1.0)
    cos = u @ u.T
    iu = np.triu_indices(n, k=1)
    return float((1.0 - cos[iu]).mean())


def conditional_feature_diversity(groups: Sequence[np.ndarray]) -> float:
    """Per input (one feature array per input, its outputs as rows), averaged over inputs."""
    vals = [feature_diversity(g) for g in groups if len(g) >= 2]
    if not vals:
        raise EvaluationError("conditional diversity needs at least 2 outputs per input")
    return float(np.mean(vals))


def lpips_weights_path(net: str = "alex") -> Path:
    if net not in LPIPS_BACKBONES:
        raise EvaluationError(f"unknown LPIPS network {net!r}; choose one of {', '.join(LPIPS_BACKBONES)}")
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[net]


def load_lpips(net: str = "alex", device=None):
    """``lpips.LPIPS(net=net)`` if the package imports and its backbone weights are on disk."""
    weights = lpips_weights_path(net)
    try:
        import lpips  # noqa: F401  (needs torchvision)
    except Exception as e:  # ImportError, or torchvision failing to load its operators
        raise EvaluationError(
            f"LPIPS diversity needs the lpips package and a working torchvision; importing lpips "
            f"failed ({type(e).__name__}: {first_line(e)}). Use the "
            "feature diversity (always available) instead") from None
    if not weights.is_file():
        raise EvaluationError(
            f"LPIPS-{net} needs torchvision's {net} backbone weights at {weights}, which are not there; "
            "styleforge never downloads at run time: put the file there (or point TORCH_HOME at a "
            "folder holding hub/checkpoints/" + LPIPS_BACKBONES[net] + ")")
    import lpips

    model = lpips.LPIPS(net=net, verbose=False).eval()
    return model.to(torch.device(device or "cpu"))


@torch.inference_mode()
def _pair_mean(model, images: torch.Tensor, pairs) -> float:
    pairs = list(pairs)
    a = images[[i for i, _ in pairs]]
    b = images[[j for _, j in pairs]]
    dev = next(model.parameters()).device
    d = model(a.to(dev), b.to(dev))  # N×1×1×1, inputs in [-1, 1]
    return float(d.reshape(-1).mean())


def lpips_diversity(model, groups: Sequence[torch.Tensor]) -> float:
    """Conditional LPIPS diversity: per input (a K×3×H×W tensor of its outputs in [-1, 1]) the
    mean LPIPS over all pairs of its outputs, averaged over the inputs."""
    vals = [_pair_mean(model, g, itertools.combinations(range(len(g)), 2)) for g in groups if len(g) >= 2]
    if not vals:
        raise EvaluationError("LPIPS diversity needs at least 2 outputs per input")
    return float(np.mean(vals))


def lpips_unconditional(model, images: torch.Tensor, num_pairs: int = 100, seed: int = 0) -> float:
    """Mean LPIPS over ``num_pairs`` random pairs of distinct outputs of the whole set."""
    n = len(images)
    if n < 2:
        raise EvaluationError("LPIPS diversity needs at least 2 outputs")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(num_pairs):
        i, j = rng.choice(n, 2, replace=False)
        pairs.append((int(i), int(j)))
    return _pair_mean(model, images, pairs)
