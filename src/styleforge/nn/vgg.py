"""VGG feature encoders (Simonyan & Zisserman 2015) for perceptual losses and style transfer.

``VGGEncoder(arch, layers, ...)`` is the convolutional part of VGG-19 (conv1_1 ... relu5_4) or
VGG-16 (conv1_1 ... relu5_3), built only as deep as the deepest requested layer, and returns the
named layers (``relu1_1``, ``conv4_2``, ``pool3``, ...) as a dict. Inputs are styleforge images,
N×3×H×W in [-1, 1]; each weight format's own preprocessing is applied inside:

=============  ==========================================  =====================================
``fmt``        files (their key names)                     preprocessing of the authors
=============  ==========================================  =====================================
torchvision    ``vgg19-dcbb9e9d.pth``, ``vgg16-397923af``  RGB in [0, 1], minus ImageNet mean
               (``features.N.weight/bias``)                [0.485, 0.456, 0.406], divided by std
                                                           [0.229, 0.224, 0.225]
caffe          ``vgg19-d01eb7cb.pth``, ``vgg16-00b39a1b``  BGR in [0, 255] minus the BGR mean
               of neural-style-pt (same keys)              [103.939, 116.779, 123.68]
adain          ``vgg_normalised.pth`` of AdaIN (a          RGB in [0, 1] into a learned 1×1 conv
               53-module Sequential, keys ``0.*``..        (``0.*``, here ``prep``) that does the
               ``51.*``)                                   BGR / ×255 / mean step; reflection
                                                           padding, ceil-mode max pooling
=============  ==========================================  =====================================

neural-style-pt multiplies its [0, 1] images by 256, not 255 (``pixel_scale=256`` reproduces
it); Caffe's VGG was trained on 0-255 pixels, so 255 is the default.

Nothing is downloaded: :func:`find_vgg_weights` looks for the file in ``$STYLEFORGE_WEIGHTS/vgg``
and ``~/.cache/styleforge/vgg`` (``$XDG_CACHE_HOME``) and otherwise raises a one-line
:class:`CheckpointError` naming the file, its URL and the folder to put it in.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import read_state_dict as read_pth_state_dict
from ..errors import CheckpointError, ConfigError

# convolution widths per block (configurations E and D of the paper, Table 1)
_BLOCKS = {"vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
           "vgg16": ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3)}
FORMATS = ("torchvision", "caffe", "adain")
POOLINGS = ("max", "avg")
PADDINGS = ("zero", "reflect")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# the files users have, where they come from (shown in errors, never fetched)
KNOWN_FILES = {
    "vgg19-dcbb9e9d.pth": ("vgg19", "torchvision", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
    "vgg16-397923af.pth": ("vgg16", "torchvision", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19-d01eb7cb.pth": ("vgg19", "caffe", "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth"),
    "vgg16-00b39a1b.pth": ("vgg16", "caffe", "https://web.eecs.umich.edu/~justincj/models/vgg16-00b39a1b.pth"),
    "vgg_normalised.pth": ("vgg19", "adain",
                           "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/vgg_normalised.pth"),
}
DEFAULT_FILES = {("vgg19", "torchvision"): "vgg19-dcbb9e9d.pth", ("vgg16", "torchvision"): "vgg16-397923af.pth",
                 ("vgg19", "caffe"): "vgg19-d01eb7cb.pth", ("vgg16", "caffe"): "vgg16-00b39a1b.pth",
                 ("vgg19", "adain"): "vgg_normalised.pth"}


def layer_names(arch: str) -> list[str]:
    """Every layer of ``arch`` in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    if arch not in _BLOCKS:
        raise ConfigError(f"unknown VGG arch {arch!r}; choose one of {', '.join(_BLOCKS)}")
    names = []
    for b, widths in enumerate(_BLOCKS[arch], 1):
        for i in range(1, len(widths) + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def conv_names(arch: str) -> list[str]:
    return [n for n in layer_names(arch) if n.startswith("conv")]


def torchvision_indices(arch: str) -> dict[str, int]:
    """Our conv name -> index N in torchvision's ``features`` Sequential (conv, ReLU, ..., pool)."""
    return {n: i for i, n in enumerate(layer_names(arch)) if n.startswith("conv")}


def adain_indices() -> dict[str, int]:
    """Our conv name -> index in AdaIN's ``vgg_normalised`` Sequential: the 1×1 conv (0), then
    per 3×3 conv a ReflectionPad2d, the conv and a ReLU, and a MaxPool2d after each block."""
    out, i = {"prep": 0}, 1
    for n in layer_names("vgg19"):
        if n.startswith("conv"):
            out[n] = i + 1  # after its padding module
            i += 2
        else:
            i += 1
    return out


class VGGEncoder(nn.Module):
    """``forward(x, layers=None) -> {name: N×C×h×w}`` for x N×3×H×W in [-1, 1].

    ``layers``: the names returned by default (the network stops at the deepest one);
    ``fmt``: the weight format whose preprocessing is applied (see the module docstring);
    ``pooling``: ``max`` or ``avg`` (Gatys et al. prefer average pooling); ``padding``: ``zero``
    (torchvision, Caffe) or ``reflect`` (AdaIN); ``ceil_mode``: pooling rounds odd sizes up
    (AdaIN's encoder; None: the format's choice); ``width``: channels of conv1_* (64 in VGG; the
    others scale with it: smaller widths are for tests with random weights, files need 64).
    Parameters are frozen (requires_grad False); gradients still flow to the input.
    """

    def __init__(self, arch: str = "vgg19", layers=("relu4_1",), fmt: str = "torchvision",
                 pooling: str = "max", padding: str | None = None, ceil_mode: bool | None = None,
                 pixel_scale: float = 255.0, width: int = 64):
        super().__init__()
        names = layer_names(arch)
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        if not layers:
            raise ConfigError("VGGEncoder: no layers requested")
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ConfigError(f"VGGEncoder: unknown layer {unknown[0]!r} for {arch}; layers are "
                              f"{names[0]} ... {names[-1]}")
        if fmt not in FORMATS:
            raise ConfigError(f"VGGEncoder: unknown weight format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if fmt == "adain" and arch != "vgg19":
            raise ConfigError("VGGEncoder: the adain format (vgg_normalised.pth) is a VGG-19")
        if pooling not in POOLINGS:
            raise ConfigError(f"VGGEncoder: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        padding = padding or ("reflect" if fmt == "adain" else "zero")
        if padding not in PADDINGS:
            raise ConfigError(f"VGGEncoder: padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        self.arch, self.fmt, self.layers = arch, fmt, layers
        self.ceil_mode = (fmt == "adain") if ceil_mode is None else bool(ceil_mode)
        last = max(names.index(n) for n in layers)
        self.names = names[:last + 1]

        if fmt == "adain":
            self.prep = nn.Conv2d(3, 3, 1)
        # x' = x[:, perm] * scale + shift turns [-1, 1] RGB into the format's input
        if fmt == "torchvision":
            scale = [0.5 / s for s in IMAGENET_STD]
            shift = [(0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        elif fmt == "caffe":  # BGR: the mean is already in BGR order, the image is flipped
            scale = [pixel_scale / 2] * 3
            shift = [pixel_scale / 2 - m for m in CAFFE_MEAN_BGR]
        else:  # [0, 1] RGB into the learned 1×1 conv
            scale, shift = [0.5] * 3, [0.5] * 3
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)

        mods, ch = OrderedDict(), 3
        if width < 1 or width > 64 or 64 % width:
            raise ConfigError(f"VGGEncoder: width must divide 64, got {width}")
        widths = [w * width // 64 for block in _BLOCKS[arch] for w in block]
        convs = iter(widths)
        pad_mode = "reflect" if padding == "reflect" else "zeros"
        for n in self.names:
            if n.startswith("conv"):
                w = next(convs)
                mods[n] = nn.Conv2d(ch, w, 3, padding=1, padding_mode=pad_mode)
                ch = w
            elif n.startswith("relu"):
                mods[n] = nn.ReLU(inplace=True)  # forward copies a requested conv output first
            elif pooling == "max":
                mods[n] = nn.MaxPool2d(2, 2, ceil_mode=self.ceil_mode)
            else:
                mods[n] = nn.AvgPool2d(2, 2, ceil_mode=self.ceil_mode)
        self.features = nn.Sequential(mods)
        self.requires_grad_(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB -> what the format's first convolution expects."""
        if self.fmt == "caffe":
            x = x.flip(1)
        x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        if self.fmt == "adain":
            x = self.prep(x)
        return x

    def forward(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        layers = self.layers if layers is None else ((layers,) if isinstance(layers, str) else tuple(layers))
        missing = [n for n in layers if n not in self.names]
        if missing:
            raise ConfigError(f"VGGEncoder built to {self.names[-1]} cannot return {missing[0]}")
        want, out = set(layers), {}
        x = self.preprocess(x)
        for name, mod in self.features.named_children():
            x = mod(x)
            if name in want:
                # a conv output would be overwritten by the in-place ReLU after it
                out[name] = x.clone() if name.startswith("conv") else x
                if len(out) == len(want):
                    break
        return out

    # ---- weights --------------------------------------------------------------------
    def load_weights(self, path, fmt: str | None = None) -> None:
        """Load a VGG weight file of any of :data:`FORMATS` (``fmt`` None: detected from the keys
        and the file name); the file's format must be this encoder's, its arch too."""
        sd = read_state_dict(path)
        found_arch, found_fmt = detect_format(sd, path, fmt)
        if found_fmt != self.fmt:
            raise CheckpointError(f"{path} holds {found_fmt}-format VGG weights; this encoder was "
                                  f"built for {self.fmt} (its preprocessing differs)")
        if found_arch != self.arch:
            raise CheckpointError(f"{path} holds {found_arch} weights; expected {self.arch}")
        index = adain_indices() if found_fmt == "adain" else torchvision_indices(self.arch)
        prefix = "" if found_fmt == "adain" else "features."
        mine = {}
        targets = [n for n in self.names if n.startswith("conv")] + (["prep"] if self.fmt == "adain" else [])
        for n in targets:
            conv = self.prep if n == "prep" else self.features[self.names.index(n)]
            for p in ("weight", "bias"):
                key = f"{prefix}{index[n]}.{p}"
                if key not in sd:
                    raise CheckpointError(f"{path}: missing {key} ({n}.{p})")
                t = sd[key]
                target = getattr(conv, p)
                if tuple(t.shape) != tuple(target.shape):
                    raise CheckpointError(f"{path}: {key} ({n}.{p}) has shape {tuple(t.shape)}, "
                                          f"expected {tuple(target.shape)}")
                mine[(conv, p)] = t
        with torch.no_grad():
            for (conv, p), t in mine.items():
                getattr(conv, p).copy_(t)


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """A ``.pth`` (read with ``weights_only=True``) or ``.safetensors`` file of tensors."""
    path = Path(path)
    if path.suffix != ".safetensors":
        sd = read_pth_state_dict(path, "VGG weights")
        if not sd:
            raise CheckpointError(f"{path} is an empty state dict, not VGG weights")
        return sd
    if not path.is_file():
        raise CheckpointError(f"VGG weights not found: {path}")
    from safetensors.torch import load_file

    try:
        sd = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"cannot read {path} as VGG weights: {str(e).splitlines()[0]}") from None
    return {k.removeprefix("module."): v for k, v in sd.items()}


def detect_format(sd: dict, path, fmt: str | None = None) -> tuple[str, str]:
    """(arch, format) of a VGG state dict. ``features.N`` files are torchvision's unless their
    name is one of the Caffe conversions or ``fmt="caffe"`` (the keys are the same)."""
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"unknown VGG weight format {fmt!r}; choose one of {', '.join(FORMATS)}")
    first = sd.get("0.weight")
    if first is not None and tuple(first.shape) == (3, 3, 1, 1):
        if fmt not in (None, "adain"):
            raise CheckpointError(f"{path} is AdaIN's vgg_normalised format (keys 0.* ... 51.*), not {fmt}")
        return "vgg19", "adain"
    idx = {int(m.group(1)) for k in sd if (m := re.fullmatch(r"features\.(\d+)\.weight", k))}
    if 0 not in idx:
        raise CheckpointError(f"{path} is not a VGG weight file: expected keys features.N.weight "
                              f"(torchvision, Caffe) or 0.weight of shape 3×3×1×1 (AdaIN)")
    # index 16 is conv3_4 in VGG-19 and pool3 in VGG-16
    arch = "vgg19" if 16 in idx else "vgg16"
    if fmt == "adain":
        raise CheckpointError(f"{path} has torchvision/Caffe keys (features.N), not AdaIN's format")
    if fmt is None:
        known = KNOWN_FILES.get(Path(path).name)
        fmt = known[1] if known else "torchvision"
    return arch, fmt


def weights_dirs() -> list[Path]:
    """Where VGG files are looked for: ``$STYLEFORGE_WEIGHTS/vgg``, then
    ``$XDG_CACHE_HOME/styleforge/vgg`` (``~/.cache/styleforge/vgg``)."""
    dirs = []
    if os.environ.get("STYLEFORGE_WEIGHTS"):
        dirs.append(Path(os.environ["STYLEFORGE_WEIGHTS"]).expanduser() / "vgg")
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    dirs.append(Path(cache).expanduser() / "styleforge" / "vgg")
    return dirs


def find_vgg_weights(arch: str = "vgg19", fmt: str = "torchvision", path=None) -> Path:
    """``path`` if given (it must exist), else the format's standard file in :func:`weights_dirs`;
    a one-line CheckpointError says where to get it and where to put it."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise CheckpointError(f"VGG weights not found: {p}")
        return p
    name = DEFAULT_FILES.get((arch, fmt))
    if name is None:
        raise ConfigError(f"no standard {fmt} weight file for {arch}")
    dirs = weights_dirs()
    # pytorch-AdaIN's README spells its file vgg_normalized.pth
    names = (name, "vgg_normalized.pth") if name == "vgg_normalised.pth" else (name,)
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    raise CheckpointError(f"VGG weights {name} not found: download {KNOWN_FILES[name][2]} and put it in "
                          f"{dirs[0]}/ (or pass its path)")


def vgg_encoder(arch: str = "vgg19", layers=("relu4_1",), weights=None, fmt: str | None = None,
                pooling: str = "max", padding: str | None = None, ceil_mode: bool | None = None,
                pixel_scale: float = 255.0, search: bool = True) -> VGGEncoder:
    """A :class:`VGGEncoder` with weights: ``weights`` a file path (format detected unless
    ``fmt``), or None: the standard file of (arch, fmt or torchvision) from :func:`weights_dirs`
    (``search=False``: random weights, for shape-only uses)."""
    if weights is not None:
        sd = read_state_dict(find_vgg_weights(path=weights))
        arch, fmt = detect_format(sd, weights, fmt)
        enc = VGGEncoder(arch, layers, fmt, pooling, padding, ceil_mode, pixel_scale)
        enc.load_weights(weights, fmt)
        return enc
    fmt = fmt or "torchvision"
    enc = VGGEncoder(arch, layers, fmt, pooling, padding, ceil_mode, pixel_scale)
    if search:
        enc.load_weights(find_vgg_weights(arch, fmt), fmt)
    return enc

