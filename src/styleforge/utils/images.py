"""Tensor <-> image helpers for grids and saving."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .atomic import atomic_write_bytes


def make_grid(rows: list[torch.Tensor], pad: int = 2, value: float = 1.0) -> torch.Tensor:
    """``rows``: tensors N×C×H×W in [-1, 1] (one per column) -> C×H'×W' grid in [0, 1], with
    row i holding image i of every column. Columns of other sizes are resized to the first's."""
    cols = []
    h, w = rows[0].shape[-2:]
    for t in rows:
        t = t.detach().float().cpu()
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        if t.shape[-2:] != (h, w):
            t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
        cols.append(((t + 1) / 2).clamp(0, 1))
    n = min(c.shape[0] for c in cols)
    grid = torch.full((3, n * (h + pad) + pad, len(cols) * (w + pad) + pad), value)
    for j, c in enumerate(cols):
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y:y + h, x:x + w] = c[i, :3]
    return grid


def chw_to_pil(chw01: torch.Tensor) -> Image.Image:
    arr = (chw01.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def save_image_atomic(img: Image.Image, path: Path, **kw) -> None:
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    if fmt == "JPEG" and "quality" not in kw:
        kw["quality"] = 95
    img.save(buf, format=fmt, **kw)
    atomic_write_bytes(path, buf.getvalue())


def heatmap_image(heatmap: torch.Tensor, size=None) -> torch.Tensor:
    """CAM heatmaps N×1×h×w -> colour images N×3×H×W in [-1, 1], as the authors' ``cam()``
    draws them: each map scaled to [0, 1] by its own min and max, bilinearly resized to ``size``
    (H, W), then coloured with the jet map (blue = low, red = high)."""
    t = heatmap.detach().float()
    lo = t.amin(dim=(1, 2, 3), keepdim=True)
    t = t - lo
    t = t / t.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    if size is not None:
        t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
    # jet: piecewise-linear ramps of r, g, b centred at 3/4, 1/2, 1/4
    rgb = torch.cat([(1.5 - (4 * t - c).abs()).clamp(0, 1) for c in (3, 2, 1)], dim=1)
    return rgb * 2 - 1
