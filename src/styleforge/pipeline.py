"""The ready-to-call object that ``styleforge.load`` returns.

``pipe = styleforge.load("runs/h2z/model")``; ``pipe("horse.jpg")`` -> PIL image;
``pipe(pil_image, direction="BtoA")``; ``pipe(tensor)`` for N×C×H×W in [-1, 1] -> tensor.

Any input size works: fully convolutional networks get the image padded (reflection) to the
multiple of their down-sampling factor and the result cropped back; networks with a fixed input
size (``method.fixed_size``) get it resized and the result resized back. ``size`` optionally
resizes the longer side first (the output is brought back to the original size).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .checkpoint import load_model, save_model
from .errors import ConfigError
from .utils.device import pick_device


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return x, (h, w)
    # reflection needs the pad smaller than the side; tiny images fall back to replication
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class Pipeline:
    def __init__(self, method, device=None):
        self.device = pick_device(device)
        self.method = method.to(self.device).eval()

    @classmethod
    def from_dir(cls, path, device=None) -> "Pipeline":
        return cls(load_model(path), device)

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self.method.directions)

    def save(self, path) -> Path:
        return save_model(path, self.method)

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, direction=None, **kw) -> torch.Tensor:
        if x.ndim == 3:
            return self.translate_tensor(x[None], direction, **kw)[0]
        if x.ndim != 4:
            raise ConfigError(f"expected an N×C×H×W tensor, got shape {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        fixed = self.method.fixed_size
        if fixed:
            y = self.method.translate(F.interpolate(x, size=(fixed, fixed), mode="bicubic",
                                                    align_corners=False).clamp(-1, 1), direction, **kw)
            return F.interpolate(y, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)
        xp, _ = pad_to_multiple(x, self.method.size_multiple)
        y = self.method.translate(xp, direction, **kw)
        return y[..., :h, :w]

    def translate_pil(self, img: Image.Image, direction=None, size: int | None = None, **kw) -> Image.Image:
        from .data.transforms import to_pil, to_tensor

        orig = img.size
        if size and max(orig) != size:
            s = size / max(orig)
            img = img.resize((max(1, round(orig[0] * s)), max(1, round(orig[1] * s))), Image.BICUBIC)
        out = to_pil(self.translate_tensor(to_tensor(img), direction, **kw).cpu())
        if out.size != orig:
            out = out.resize(orig, Image.BICUBIC)
        return out

    def __call__(self, image, direction=None, **kw):
        if isinstance(image, torch.Tensor):
            return self.translate_tensor(image, direction, **kw)
        if isinstance(image, (str, Path)):
            from .data.images import load_rgb

            image = load_rgb(image)
        if isinstance(image, Image.Image):
            return self.translate_pil(image.convert("RGB"), direction, **kw)
        raise ConfigError(f"cannot translate a {type(image).__name__}: give a PIL image, a path or a tensor")
