"""Deterministic image transforms (Pillow + numpy + torch; no torchvision).

A :class:`Transform` takes its randomness only from the ``numpy.random.Generator`` passed to
each call, so the same generator state gives bit-identical tensors, whichever process or
DataLoader worker runs it. Given a list of images (paired data), it draws one crop and one
flip and applies them to every image of the list.

Preprocess options (the names and geometry of the CycleGAN/pix2pix code):

=========================  ===================================================================
``resize_and_crop``        resize to ``load_size`` x ``load_size`` (bicubic), random crop
                           ``crop_size`` x ``crop_size``
``scale_width_and_crop``   scale the width to ``load_size`` keeping the aspect ratio (height at
                           least ``crop_size``), random crop ``crop_size`` x ``crop_size``
``crop``                   random crop ``crop_size`` x ``crop_size`` from the image as it is
``resize``                 resize to ``crop_size`` x ``crop_size``, no crop
``none``                   keep the size, rounded to a multiple of 4 (bicubic resize if needed)
=========================  ===================================================================

Random crops of an image smaller than ``crop_size`` first scale it up (bicubic, aspect ratio
kept) until the crop fits. With ``flip`` the images are mirrored left-right with probability
1/2. Outputs are float32 C x H x W tensors in [-1, 1] (``normalize=False``: [0, 1]).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from .images import to_rgb

PREPROCESS_OPTIONS = ("resize_and_crop", "scale_width_and_crop", "crop", "none", "resize")
SIZE_MULTIPLE = 4  # preprocess="none" rounds sizes to this (as CycleGAN's __make_power_2)
BICUBIC = Image.Resampling.BICUBIC


def to_tensor(img: Image.Image, normalize: bool = True) -> torch.Tensor:
    """PIL image -> float32 C x H x W in [-1, 1] (``normalize=False``: [0, 1]).

    ``L`` images give one channel, ``RGB`` three; other modes are converted to RGB first.
    """
    if img.mode not in ("RGB", "L"):
        img = to_rgb(img)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    arr = arr / np.float32(127.5) - np.float32(1.0) if normalize else arr / np.float32(255.0)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def resize_longer_side(img: Image.Image, size: int | None) -> Image.Image:
    """``img`` with its longer side ``size`` (bicubic, aspect kept); unchanged for ``None``/0.
    The one resize of ``translate --size`` and the API's ``size=`` (batch outputs equal the API's)."""
    if size is not None and size < 0:
        raise ConfigError(f"size must be a positive number of pixels, got {size}")
    w, h = img.size
    if not size or max(w, h) == size:
        return img
    s = size / max(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)


def to_pil(t: torch.Tensor) -> Image.Image:
    """C x H x W or 1 x C x H x W tensor in [-1, 1] (1 or 3 channels) -> PIL ``L``/``RGB``.

    Values are clamped to [-1, 1] (NaN counts as 0) and rounded to the nearest 8-bit level, so
    ``to_pil(to_tensor(img))`` gives ``img`` back exactly.
    """
    if not isinstance(t, torch.Tensor):
        raise ConfigError(f"to_pil expects a torch tensor, got a {type(t).__name__}")
    x = t.detach()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ConfigError(f"to_pil expects a C×H×W or 1×C×H×W tensor with 1 or 3 channels, "
                          f"got shape {tuple(t.shape)}")
    x = torch.nan_to_num(x.float().cpu(), nan=0.0).clamp(-1.0, 1.0)
    arr = ((x + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


class Transform:
    """Resize / crop / flip / to-tensor, with all randomness from the ``rng`` of each call.

    ``t(image, rng)`` -> tensor; ``t([img_a, img_b], rng)`` -> list of tensors with the same
    crop and flip (images of other sizes than the first are first resized to the first's size).
    """

    def __init__(self, load_size: int, crop_size: int, preprocess: str = "resize_and_crop",
                 flip: bool = True, normalize: bool = True):
        if preprocess not in PREPROCESS_OPTIONS:
            raise ConfigError(f"unknown preprocess {preprocess!r}; choose one of: "
                              f"{', '.join(PREPROCESS_OPTIONS)}")
        self.load_size = _positive_int("load_size", load_size)
        self.crop_size = _positive_int("crop_size", crop_size)
        if preprocess in ("resize_and_crop", "scale_width_and_crop") and self.load_size < self.crop_size:
            raise ConfigError(f"load_size ({self.load_size}) must be at least crop_size "
                              f"({self.crop_size}) with preprocess={preprocess}")
        self.preprocess = preprocess
        self.flip = bool(flip)
        self.normalize = bool(normalize)

    def __repr__(self) -> str:
        return (f"Transform(load_size={self.load_size}, crop_size={self.crop_size}, "
                f"preprocess={self.preprocess!r}, flip={self.flip}, normalize={self.normalize})")

    # ---- geometry ----------------------------------------------------------------------
    def _resize_target(self, w: int, h: int) -> tuple[int, int] | None:
        """Size to resize to before cropping (None: keep)."""
        p, L, C = self.preprocess, self.load_size, self.crop_size
        if p == "resize_and_crop":
            target = (L, L)
        elif p == "resize":
            target = (C, C)
        elif p == "scale_width_and_crop":
            target = (w, h) if (w == L and h >= C) else (L, int(max(L * h / w, C)))
        elif p == "none":
            m = SIZE_MULTIPLE
            target = (max(m, round(w / m) * m), max(m, round(h / m) * m))
        else:  # crop
            target = (w, h)
        if p in ("resize_and_crop", "scale_width_and_crop", "crop"):
            tw, th = target
            if tw < C or th < C:  # too small for the crop: scale up, keeping the aspect ratio
                s = max(C / tw, C / th)
                target = (max(C, math.ceil(tw * s)), max(C, math.ceil(th * s)))
        return None if target == (w, h) else target

    def params(self, size: tuple[int, int], rng: np.random.Generator) -> dict:
        """Draw the random parameters for an image of ``size`` (w, h): resize target, crop
        box (left, top, right, bottom) or None, flip. Draw order: crop x, crop y, flip."""
        w, h = size
        resize = self._resize_target(w, h)
        rw, rh = resize or (w, h)
        box = None
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop", "crop"):
            C = self.crop_size
            x = int(rng.integers(0, rw - C + 1))
            y = int(rng.integers(0, rh - C + 1))
            box = (x, y, x + C, y + C)
        flip = bool(self.flip and rng.random() < 0.5)
        return {"resize": resize, "box": box, "flip": flip}

    def apply(self, img: Image.Image, params: dict) -> torch.Tensor:
        """Apply parameters from :meth:`params` to one image."""
        if params["resize"] is not None:
            img = img.resize(params["resize"], BICUBIC)
        if params["box"] is not None and params["box"] != (0, 0) + img.size:
            img = img.crop(params["box"])
        if params["flip"]:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(img, self.normalize)

    def __call__(self, images: Image.Image | Sequence[Image.Image], rng: np.random.Generator):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        single = isinstance(images, Image.Image)
        imgs = [images] if single else list(images)
        if not imgs:
            raise ValueError("Transform got an empty list of images")
        ref = imgs[0].size
        imgs = [im if im.size == ref else im.resize(ref, BICUBIC) for im in imgs]
        p = self.params(ref, rng)
        out = [self.apply(im, p) for im in imgs]
        return out[0] if single else out
