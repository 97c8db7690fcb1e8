"""The matting Laplacian of Levin, Lischinski & Weiss 2008 ("A Closed-Form Solution to Natural
Image Matting", eq. 12) and the photorealism term of Luan et al. 2017 ("Deep Photo Style
Transfer", section 3.1, eq. 2) built on it.

For a window w_k (3×3, ``win_rad`` 1) of the content image I (values in [0, 1]) with colour mean
μ_k (3) and covariance Σ_k (3×3)::

    L_ij = Σ_{k: i,j ∈ w_k} ( δ_ij − (1 + (I_i − μ_k)ᵀ (Σ_k + ε/|w_k| · I₃)⁻¹ (I_j − μ_k)) / |w_k| )

Only windows lying wholly inside the image count, as in the authors' ``getLaplacian1.m``
(deep-photo-styletransfer/gen_laplacian); ε = 1e-7 there. L is symmetric positive semi-definite
and L·1 = 0 (a constant image costs nothing). Pixels are numbered row-major (``y * W + x``); the
MATLAB code numbers them column-major, which permutes L but not VᵀLV.

Photorealism term: L_m = λ Σ_c V_c[O]ᵀ L V_c[O] for each colour channel c of the output O in
[0, 1]; its gradient is 2λ·L·V_c, which is what the authors' CUDA kernel
(``matting_laplacian_kernel``) computes. λ = 1e4 in their ``deepmatting_seg.lua``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from ..errors import DataError

_CHUNK = 32768


def matting_laplacian(image, eps: float = 1e-7, win_rad: int = 1) -> sp.csr_matrix:
    """The (H·W)×(H·W) matting Laplacian of ``image`` (H×W×3, values in [0, 1]; a numpy array,
    or a 3×H×W / 1×3×H×W tensor), float64 CSR."""
    img = _as_hwc(image)
    h, w, c = img.shape
    size = 2 * win_rad + 1
    if h < size or w < size:
        raise DataError(f"matting Laplacian: the image is {w}×{h}; it needs at least {size}×{size} pixels")
    n = size * size
    # K windows (centres away from the border), n pixels each: K×n×c values, K×n indices
    win = sliding_window_view(img, (size, size), axis=(0, 1)).reshape(-1, c, n).transpose(0, 2, 1)
    idx = sliding_window_view(np.arange(h * w, dtype=np.int32).reshape(h, w), (size, size)).reshape(-1, n)
    affinity = sp.csr_matrix((h * w, h * w))
    # windows in chunks: the K×n×n values of a 700 px image would take ~1 GB at once
    for k0 in range(0, win.shape[0], _CHUNK):
        wk, ik = win[k0:k0 + _CHUNK], idx[k0:k0 + _CHUNK]
        mu = wk.mean(axis=1)
        d = wk - mu[:, None, :]
        cov = np.einsum("kni,knj->kij", d, d) / n
        inv = np.linalg.inv(cov + (eps / n) * np.eye(c))
        vals = (1.0 + np.einsum("kni,kij,kmj->knm", d, inv, d, optimize=True)) / n  # K×n×n
        rows = np.broadcast_to(ik[:, :, None], vals.shape).ravel()
        cols = np.broadcast_to(ik[:, None, :], vals.shape).ravel()
        affinity = affinity + sp.coo_matrix((vals.ravel(), (rows, cols)), shape=(h * w, h * w)).tocsr()
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    return (sp.diags(degree) - affinity).tocsr()


def _as_hwc(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu().double()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise DataError(f"matting Laplacian: one image at a time, got a batch of {t.shape[0]}")
            t = t[0]
        image = t.permute(1, 2, 0).numpy()
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"matting Laplacian: expected an H×W×3 colour image, got shape {img.shape}")
    return img


def to_torch_sparse(matrix: sp.spmatrix, dtype=torch.float32, device=None) -> torch.Tensor:
    """A scipy sparse matrix as a coalesced torch sparse COO tensor (sparse × dense products run
    on any device)."""
    m = matrix.tocoo()
    idx = torch.from_numpy(np.vstack([m.row, m.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(m.data), size=m.shape, dtype=dtype,
                                   device=device, check_invariants=True).coalesce()


class _QuadraticForm(torch.autograd.Function):
    """Σ_c V_cᵀ L V_c for a symmetric sparse L and V of shape N×C; backward 2·L·V (one sparse
    product serves both)."""

    @staticmethod
    def forward(ctx, v, lap):
        lv = torch.sparse.mm(lap, v)
        ctx.save_for_backward(lv)
        return (v * lv).sum()

    @staticmethod
    def backward(ctx, grad):
        (lv,) = ctx.saved_tensors
        return 2.0 * grad * lv, None


class MattingLoss(nn.Module):
    """λ Σ_c V_cᵀ L V_c for images in [-1, 1] (1×3×H×W, the size of the image ``L`` was built
    from); V = (x + 1) / 2 is the image in [0, 1] as in the authors' code. ``laplacian``: a scipy
    sparse matrix (see :func:`matting_laplacian`)."""

    def __init__(self, laplacian: sp.spmatrix, weight: float = 1e4, dtype=torch.float32):
        super().__init__()
        self.weight = weight
        self.size = laplacian.shape[0]
        self.register_buffer("lap", to_torch_sparse(laplacian, dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[2] * x.shape[3] != self.size:
            raise DataError(f"matting loss: the Laplacian is for an image of {self.size} pixels; "
                            f"got shape {tuple(x.shape)}")
        v = ((x[0] + 1) / 2).flatten(1).t()  # (H·W)×3
        lap = self.lap if self.lap.dtype == v.dtype else self.lap.to(v.dtype)
        return self.weight * _QuadraticForm.apply(v, lap)
