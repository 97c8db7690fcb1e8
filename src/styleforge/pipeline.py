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

    def check_group(self, group: str | None) -> str | None:
        """The few-shot group to translate with (``None``: the model's default), or a one-line
        error for a model without groups or an unknown group."""
        if group is None:
            return None
        check = getattr(self.method, "check_group", None)
        if check is None:
            raise ConfigError(f"--group: this {self.method.method_name} model has no groups (few-shot models, "
                              "method fewshot_groups, have them; an exported file holds only the group "
                              "it was exported with)")
        return check(group)

    def save(self, path) -> Path:
        return save_model(path, self.method)

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, direction=None, return_heatmap: bool = False, **kw):
        """N×C×H×W (or C×H×W) in [-1, 1] -> the same shape in [-1, 1]. ``return_heatmap`` (methods
        with attention maps, ``has_heatmaps``) also returns the map as a jet-coloured image of the
        output's size: ``(y, heatmap)``."""
        if x.ndim == 3:
            out = self.translate_tensor(x[None], direction, return_heatmap, **kw)
            return (out[0][0], out[1][0]) if return_heatmap else out[0]
        if x.ndim != 4:
            raise ConfigError(f"expected an N×C×H×W tensor, got shape {tuple(x.shape)}")
        if return_heatmap:
            if not getattr(self.method, "has_heatmaps", False):
                raise ConfigError(f"{self.method.method_name} has no attention heatmaps "
                                  "(U-GAT-IT and Photo2Cartoon models have)")
            kw["return_heatmap"] = True
        x = x.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        fixed = self.method.fixed_size
        if fixed:
            xin = F.interpolate(x, size=(fixed, fixed), mode="bicubic", align_corners=False).clamp(-1, 1)
            restore = lambda t: F.interpolate(t, size=(h, w), mode="bicubic",  # noqa: E731
                                              align_corners=False).clamp(-1, 1)
        else:
            xin, _ = pad_to_multiple(x, self.method.size_multiple)
            restore = lambda t: t[..., :h, :w]  # noqa: E731
        out = self.method.translate(xin, direction, **kw)
        if not return_heatmap:
            return restore(out)
        from .utils.images import heatmap_image

        y, heat = out
        return restore(y), restore(heatmap_image(heat, y.shape[-2:]))

    def translate_pil(self, img: Image.Image, direction=None, size: int | None = None, **kw) -> Image.Image:
        from .data.transforms import resize_longer_side, to_pil, to_tensor

        orig = img.size
        img = resize_longer_side(img, size)
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
