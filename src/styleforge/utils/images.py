"""Tensor <-> image helpers for grids and saving."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image


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
    from ..checkpoint import atomic_write_bytes

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    if fmt == "JPEG" and "quality" not in kw:
        kw["quality"] = 95
    img.save(buf, format=fmt, **kw)
    atomic_write_bytes(path, buf.getvalue())
