"""vintagify 0.1.2's own inference code, without torchvision (which does not import beside the
CPU torch; scripts/setup.sh unpacks the wheel's ``vintagify/`` folder, it does not install it).

* :func:`their_generator`: their ``vintagify/generator.py`` ``ResnetGenerator`` (the module
  itself, loaded from its file: ``import vintagify`` would run the package's ``__init__``, which
  imports ``inference`` -> torchvision and matplotlib) with ``G_A2B_epoch33.pth`` loaded as
  their ``inference_image`` loads it (``load_state_dict`` strict), in eval mode.
* :func:`their_input`: the tensor of their ``preprocess.py``: ``Resize(size + 30)``,
  ``CenterCrop(size)``, ``ToTensor()``, ``Normalize(0.5, 0.5)``, reproduced with PIL and numpy
  from torchvision's definitions for a PIL input (``transforms.functional``): ``resize`` with an
  int scales the shorter side to it and the longer to ``int(size * long / short)``, with PIL's
  bilinear filter (``Image.resize``; no resize when the size is already right);
  ``center_crop`` cuts at ``top = int(round((h - ch) / 2))``, ``left`` likewise;
  ``to_tensor`` is uint8 HWC -> float CHW ``/ 255``; ``normalize`` is ``(x - 0.5) / 0.5``.
  ``size`` may also be ``(h, w)`` (their CenterCrop takes one; the Resize then uses the
  longer of the two, plus 30, so that the crop fits any photo), for non-square inputs, which
  their fully convolutional network takes as well.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from styleforge.weights import find_packaged


def vintagify_pth() -> Path | None:
    return find_packaged("cyclegan-vintagify")


def their_generator(pth: Path) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("vintagify_generator", pth.parent.parent / "generator.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    g = mod.ResnetGenerator()
    g.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
    return g.eval()


def their_crop(path, size) -> Image.Image:
    """The PIL image their preprocess makes before ``ToTensor``."""
    ch, cw = (size, size) if isinstance(size, int) else size
    img = Image.open(path).convert("RGB")
    w, h = img.size
    n = max(ch, cw) + 30
    short, long = (w, h) if w <= h else (h, w)
    nw, nh = (n, int(n * long / short)) if w <= h else (int(n * long / short), n)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    if ch > nh or cw > nw:
        raise ValueError(f"crop {ch}×{cw} larger than the resized {nh}×{nw} image")
    top, left = int(round((nh - ch) / 2.0)), int(round((nw - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))


def their_input(path, size) -> torch.Tensor:
    """1×3×H×W in [-1, 1], as their ``preprocess(path, size)`` returns it."""
    arr = np.array(their_crop(path, size), dtype=np.uint8, copy=True)
    t = torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div(255)
    mean = torch.tensor([0.5, 0.5, 0.5])[:, None, None]
    return t.sub_(mean).div_(mean)[None]
