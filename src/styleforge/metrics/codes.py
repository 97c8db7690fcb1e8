"""Latent codes of a model: export, a t-SNE map coloured by class, and interpolation between two
codes. Knows no method: the codes come from the caller (FUNIT's class codes, a MUNIT style code).

* :func:`save_codes` writes codes, labels and class names to one ``.npz`` (atomic).
* :func:`tsne_embedding` maps N×D codes to N×2 with scikit-learn's exact/Barnes-Hut t-SNE
  (seeded, PCA initialisation; the perplexity is lowered to below N when N is small, as t-SNE
  requires perplexity < N).
* :func:`plot_embedding` draws it, one colour per class (tab10/tab20, then a hue wheel).
* :func:`interpolate_codes` gives the points of the straight line between two codes.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..utils.atomic import atomic_write_bytes


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def save_codes(path, codes, labels, class_names) -> Path:
    """``codes`` N×D, ``labels`` N ints indexing ``class_names`` -> ``path`` (.npz with arrays
    ``codes``, ``labels``, ``class_names``)."""
    codes, labels = _as_numpy(codes).astype(np.float32), _as_numpy(labels).astype(np.int64)
    if codes.ndim != 2 or labels.shape != (codes.shape[0],):
        raise DataError(f"codes must be N×D with N labels; got codes {codes.shape}, labels {labels.shape}")
    buf = io.BytesIO()
    np.savez(buf, codes=codes, labels=labels, class_names=np.asarray(list(class_names), dtype=str))
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_codes(path):
    """-> (codes N×D float32, labels N int64, class names) from :func:`save_codes`'s file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"codes file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return f["codes"], f["labels"], [str(s) for s in f["class_names"]]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: not a codes file written by save_codes ({e})") from None


def tsne_embedding(codes, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """N×D codes -> N×2 t-SNE embedding (deterministic for a given seed)."""
    from sklearn.manifold import TSNE

    x = _as_numpy(codes).astype(np.float32)
    if x.ndim != 2:
        raise DataError(f"codes must be N×D, got shape {x.shape}")
    n = x.shape[0]
    if n < 3:
        raise DataError(f"t-SNE needs at least 3 codes, got {n}")
    if perplexity <= 0:
        raise ConfigError(f"perplexity must be > 0, got {perplexity}")
    perp = min(float(perplexity), (n - 1) / 3.0)  # the neighbourhood must fit in the data
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                method="exact" if n < 200 else "barnes_hut")
    return tsne.fit_transform(x).astype(np.float32)


def class_colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinct RGB colours in [0, 1] (tab10 up to 10 classes, tab20 up to 20, else hues)."""
    import matplotlib

    if n <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [tuple(cmap(i)[:3]) for i in range(n)]
    if n <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [tuple(cmap(i)[:3]) for i in range(n)]
    import colorsys

    return [colorsys.hsv_to_rgb(i / n, 0.75, 0.9) for i in range(n)]


def plot_embedding(path, embedding, labels, class_names, title: str = "class codes (t-SNE)") -> dict:
    """Scatter plot of the N×2 ``embedding``, one colour per class, legend with the class names,
    saved as PNG at ``path`` (atomic). Returns ``{class name: (r, g, b)}`` of the colours used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    emb, labels = _as_numpy(embedding), _as_numpy(labels).astype(np.int64)
    if emb.ndim != 2 or emb.shape[1] != 2 or labels.shape != (emb.shape[0],):
        raise DataError(f"embedding must be N×2 with N labels; got {emb.shape} and {labels.shape}")
    names = list(class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"labels must index the {len(names)} class names; found {labels.min()}..{labels.max()}")
    colors = class_colors(len(names))
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    used = {}
    for k, name in enumerate(names):
        sel = labels == k
        if sel.any():
            ax.scatter(emb[sel, 0], emb[sel, 1], s=18, color=colors[k], label=name)
            used[name] = colors[k]
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(used) <= 30:
        ax.legend(loc="best", fontsize=7, markerscale=1.2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return used


def tsne_plot(path, codes, labels, class_names, seed: int = 0, perplexity: float = 30.0):
    """t-SNE of ``codes`` drawn per class to ``path``; returns (embedding N×2, colours)."""
    emb = tsne_embedding(codes, seed=seed, perplexity=perplexity)
    return emb, plot_embedding(path, emb, labels, class_names)


def interpolate_codes(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` codes on the segment from ``a`` to ``b`` (both D, or 1×D), ends included:
    steps×D, row t = (1 - t/(steps-1))·a + t/(steps-1)·b."""
    if steps < 2:
        raise ConfigError(f"interpolation needs at least 2 steps, got {steps}")
    a, b = a.reshape(-1), b.reshape(-1)
    if a.shape != b.shape:
        raise ConfigError(f"codes to interpolate differ in size: {a.numel()} and {b.numel()}")
    w = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device)[:, None]
    return (1 - w) * a[None] + w * b[None]


__all__ = ["save_codes", "load_codes", "tsne_embedding", "class_colors", "plot_embedding", "tsne_plot",
           "interpolate_codes"]
