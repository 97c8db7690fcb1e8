"""FUNIT's few-shot evaluation (Liu et al. 2019, "Few-shot unsupervised image-to-image
translation", section 4, "Performance metrics").

* **Translation accuracy**: do the outputs meant for target class c look like class c? Top-1 and
  top-5 accuracy of a classifier over the target classes. FUNIT trains an Inception-v3 on the
  target classes; styleforge takes such a classifier as a TorchScript file
  (:func:`classifier_logits`), or by default uses a **nearest-class-centroid** classifier on the
  shared Inception features: each class's centroid is the mean of its real images' features
  (L2-normalised first), an output is ranked against the centroids by cosine similarity.
* **Content preservation**: the domain-invariant perceptual distance (DIPD) between each input
  and its output: the mean squared difference of instance-normalised feature maps of a VGG
  network (FUNIT/MUNIT use VGG conv5 features). styleforge takes the feature network as a
  TorchScript file returning an N×C×H×W map for N×3×H×W input in [0, 1] (``evaluate
  --content-net``); without one, ``evaluate --metrics content`` scores the VGG-19 relu4_2
  feature MSE instead (:mod:`.perceptual`).
* **mFID**: the FID between the real and the translated images of each target class,
  averaged over the classes (:mod:`.fid`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import EvaluationError
from .fid import fid


def _unit(f: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.where(n > 0, n, 1.0)


def class_centroids(feats_by_class: Sequence[np.ndarray]) -> np.ndarray:
    """K×D unit centroids of the L2-normalised features of each class's real images."""
    if not feats_by_class:
        raise EvaluationError("few-shot accuracy needs real images of at least one class")
    cents = np.stack([_unit(np.asarray(f, np.float64)).mean(axis=0) for f in feats_by_class])
    return _unit(cents)


def centroid_logits(centroids: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """Cosine similarity of each output's features to each class centroid (N×K)."""
    return _unit(np.asarray(feats, np.float64)) @ centroids.T


def topk_accuracy(scores: np.ndarray, labels: Sequence[int], ks=(1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the k highest scores (k capped at the class count)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.int64)
    if scores.shape[0] != labels.shape[0] or scores.shape[0] == 0:
        raise EvaluationError(f"accuracy of {scores.shape[0]} predictions against {labels.shape[0]} labels")
    order = np.argsort(-scores, axis=1, kind="stable")
    out = {}
    for k in ks:
        kk = min(k, scores.shape[1])
        out[k] = float((order[:, :kk] == labels[:, None]).any(axis=1).mean())
    return out


def load_torchscript(path, what: str) -> torch.jit.ScriptModule:
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{what} not found: {path}")
    try:
        from .features import jit_load

        return jit_load(path).eval()
    except Exception as e:
        raise EvaluationError(f"{what} {path} is not a TorchScript module ({type(e).__name__})") from None


@torch.inference_mode()
def classifier_logits(module, images: Sequence[Image.Image], size: int = 299,
                      input_range=(-1.0, 1.0), batch_size: int = 32) -> np.ndarray:
    """Logits of a user TorchScript classifier over the target classes (N×K), images resized as
    the features are (Pillow bicubic to size×size) and scaled to ``input_range``."""
    lo, hi = input_range
    out = []
    for i in range(0, len(images), batch_size):
        arr = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
                                   if im.size != (size, size) else im.convert("RGB"), np.uint8)
                        for im in images[i:i + batch_size]])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() * ((hi - lo) / 255.0) + lo
        y = module(x)
        if isinstance(y, (tuple, list)):
            y = y[-1]
        out.append(y.float().reshape(len(arr), -1).numpy())
    return np.concatenate(out).astype(np.float64)


def instance_norm_distance(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Per pair: mean squared difference of instance-normalised (per sample and channel, no
    affine, eps 1e-5) N×C×H×W feature maps -> N values."""
    if fa.shape != fb.shape or fa.ndim != 4:
        raise EvaluationError(f"content features must be two N×C×H×W maps of one shape, got "
                              f"{tuple(fa.shape)} and {tuple(fb.shape)}")
    na, nb = F.instance_norm(fa.float()), F.instance_norm(fb.float())
    return ((na - nb) ** 2).mean(dim=(1, 2, 3))


@torch.inference_mode()
def content_distance(net, inputs: Sequence[Image.Image], outputs: Sequence[Image.Image],
                     size: int = 224, batch_size: int = 16) -> float:
    """FUNIT's domain-invariant perceptual distance, averaged over (input, output) pairs. ``net``
    maps N×3×size×size in [0, 1] to N×C×H×W features (e.g. VGG conv5_x, ImageNet normalisation
    inside the TorchScript)."""
    if len(inputs) != len(outputs) or not inputs:
        raise EvaluationError(f"content preservation needs matching inputs and outputs, got "
                              f"{len(inputs)} and {len(outputs)}")

    def tensor(ims):
        arr = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC),
                                   np.float32) / 255.0 for im in ims])
        return torch.from_numpy(arr).permute(0, 3, 1, 2)

    vals = []
    for i in range(0, len(inputs), batch_size):
        fa = net(tensor(inputs[i:i + batch_size]))
        fb = net(tensor(outputs[i:i + batch_size]))
        vals.append(instance_norm_distance(fa, fb))
    return float(torch.cat(vals).mean())


def mean_fid(real_by_class: Sequence[np.ndarray], fake_by_class: Sequence[np.ndarray],
             method: str = "sqrtm") -> tuple[float, list[float]]:
    """mFID: FID per class (real vs translated features of that class), averaged."""
    if len(real_by_class) != len(fake_by_class) or not real_by_class:
        raise EvaluationError("mFID needs real and translated images for the same classes")
    per = [fid(r, f, method) for r, f in zip(real_by_class, fake_by_class)]
    return float(np.mean(per)), per
