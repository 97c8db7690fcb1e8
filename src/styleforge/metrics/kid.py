"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", section 4).

The unbiased estimate of the squared MMD between the two feature distributions with the cubic
polynomial kernel k(x, y) = (xᵀy / d + 1)³. For subsets X (m×d) and Y (n×d)::

    MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ) / (n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / (mn)

As in the authors' code, it is averaged over ``num_subsets`` random subsets of
``subset_size`` images drawn without replacement from each set (100 × 1000 by default, as in
torch-fidelity; the subset size shrinks to the smaller set when a set is smaller, and when
both sets are that size every subset is the whole set, so it is computed once, std 0); the
result is mean ± std over the subsets. U-GAT-IT reports KID × 100, and so does styleforge's output
(``kid`` in tables and JSON is ×100; :func:`kid` returns the raw values).

The estimate is unbiased, so two samples of one distribution give values around 0, negative
ones included.
"""
from __future__ import annotations

import numpy as np

from ..errors import EvaluationError

KID_SCALE = 100.0
MIN_IMAGES = 50  # fewer than this per set: a warning (the estimate still is unbiased, but noisy)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k  # half the time of k ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise EvaluationError(f"KID needs at least 2 images per set, got {m} and {n}")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(f1: np.ndarray, f2: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float, int]:
    """Raw KID (mean, std over subsets) and the subset size used."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise EvaluationError(f"KID of features of different shapes: {f1.shape} and {f2.shape}")
    if num_subsets < 1 or subset_size < 2:
        raise EvaluationError(f"KID needs num_subsets >= 1 and subset_size >= 2, got {num_subsets}, {subset_size}")
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise EvaluationError(f"KID needs at least 2 images per set, got {f1.shape[0]} and {f2.shape[0]}")
    if m == f1.shape[0] == f2.shape[0]:
        # every subset would be the whole of both sets: one value, std 0
        return mmd2_unbiased(f1, f2), 0.0, m
    rng = np.random.default_rng(seed)
    vals = np.empty(num_subsets)
    for i in range(num_subsets):
        a = f1[rng.choice(f1.shape[0], m, replace=False)]
        b = f2[rng.choice(f2.shape[0], m, replace=False)]
        vals[i] = mmd2_unbiased(a, b)
    return float(vals.mean()), float(vals.std()), m


def kid_warnings(n1: int, n2: int, subset_size: int) -> list[str]:
    out = []
    if min(n1, n2) < MIN_IMAGES:
        out.append(f"KID from {n1} and {n2} images: fewer than {MIN_IMAGES} per set, the estimate is "
                   "unbiased but noisy (see its ± std)")
    if min(n1, n2) < subset_size:
        out.append(f"KID subsets of {min(n1, n2, subset_size)} images instead of {subset_size} "
                   "(a set is smaller)")
    return out
