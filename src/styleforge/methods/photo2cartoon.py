"""Photo2Cartoon (minivision-ai, 2020): U-GAT-IT with hourglass blocks, Soft-AdaLIN and a face-ID
loss, laid out as the authors' PyTorch code (minivision-ai/photo2cartoon, ``models/networks.py``
and ``models/UGATIT_sadalin_hourglass.py``) so that their checkpoints load unchanged.

Their symbols -> code names:
  G: photo -> cartoon, cartoon -> photo   genA2B, genB2A (:class:`Photo2CartoonGenerator`)
  D global / local (from U-GAT-IT)        disGA, disGB (7 layers), disLA, disLB (5 layers):
                                           ``nn.discriminators.UGATITDiscriminator``
  hourglass modules                       HourGlass1, HourGlass2 (after the stem, before the
                                           down-sampling) and HourGlass3, HourGlass4 (after the
                                           up-sampling; the last one maps to 3 channels)
  CAM                                     gap_fc, gmp_fc (with bias here), conv1x1
                                           (``nn.attention.class_activation_map``)
  style features                          FC(CAM features) (light: of their average pool)
  content features                        average pools of EncodeBlock1..4's outputs
  Soft-AdaLIN                             :class:`SoftAdaLIN` in DecodeBlock1..4: gamma =
                                           (1 - w_gamma) s_gamma(style) + w_gamma c_gamma(content),
                                           same for beta, then AdaLIN (rho); DecodeBlock k takes
                                           the content features of EncodeBlock 5 - k
  rho, w clipping                         after every generator step rho (AdaLIN and LIN) is
                                           clamped to [0, rho_clip] and w_gamma, w_beta to
                                           [0, w_clip] (their RhoClipper / WClipper, both 1)
  losses                                  U-GAT-IT's (LSGAN on patch and CAM logits, cycle L1,
                                           identity L1, CAM BCE) + face-ID: 1 - cos of
                                           MobileFaceNet embeddings of photo and its translation
                                           (``nn.mobilefacenet``), in both directions
  defaults (their train.py)               light, ch 32, img_size 256, adv 1, cycle 50,
                                           identity 10, cam 1000, faceid 1, Adam 1e-4 (0.5, 0.999)
                                           weight decay 1e-4, batch 1, 1M iterations with linear
                                           decay over the second half

The face-recognition network is frozen and held outside the module tree: it is not a parameter
of the method, is not in any optimizer, and is not saved in a model directory or a training
checkpoint. It is read from ``facenet_weights`` (the authors' ``model_mobilefacenet.pth``) the
first time training needs it; inference never does.

The training step is U-GAT-IT's (:class:`~styleforge.methods.ugatit.UGATIT`, whose loss helpers
this class inherits) with the face-ID term added to each direction's generator phase.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict, read_state_dicts
from ..errors import CheckpointError, ConfigError
from ..nn.attention import class_activation_map
from ..nn.blocks import ResnetAdaLINBlock, ResnetBlock, conv_layers
from ..nn.mobilefacenet import face_id_distance, load_mobilefacenet
from ..nn.norms import LIN, AdaLIN, clip_rho_
from ..registry import register_importer, register_method
from .base import Method
from .ugatit import DIRECTIONS, NETWORKS, UGATIT, discriminator_layers

N_ENC = 4  # encoder and decoder bottleneck blocks (fixed in the authors' code)
HOURGLASS_DEPTH = 4  # average-pool levels in an hourglass: sides must be multiples of 16
FACENET_HINT = ("get model_mobilefacenet.pth (the MobileFaceNet of TreB1eN/InsightFace_Pytorch, "
                "linked from the minivision-ai/photo2cartoon README) and set "
                "model.facenet_weights=PATH, or set model.faceid_weight=0")


# ---- hourglass -------------------------------------------------------------------------
def _pre_act_conv(cin, cout, k):
    """IN -> ReLU -> [reflection pad] -> conv (no bias): keys ``1`` or ``3`` for the conv."""
    layers = [nn.InstanceNorm2d(cin), nn.ReLU(True)]
    if k == 3:
        layers.append(nn.ReflectionPad2d(1))
    return nn.Sequential(*layers, nn.Conv2d(cin, cout, k, 1, 0, bias=False))


class HourglassConvBlock(nn.Module):
    """Pre-activation residual block of the hourglass (Bulat & Tzimiropoulos' multi-scale block;
    the authors' ``ConvBlock``): three 3x3 convs giving C/2, C/4, C/4 channels, concatenated,
    plus the input (through a 1x1 projection, ``ConvBlock4``, when the widths differ; the
    projection is built either way, as in their code, so parameter counts match)."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.dim_out = dim_out
        self.ConvBlock1 = _pre_act_conv(dim_in, dim_out // 2, 3)
        self.ConvBlock2 = _pre_act_conv(dim_out // 2, dim_out // 4, 3)
        self.ConvBlock3 = _pre_act_conv(dim_out // 4, dim_out // 4, 3)
        self.ConvBlock4 = _pre_act_conv(dim_in, dim_out, 1)

    def forward(self, x):
        x1 = self.ConvBlock1(x)
        x2 = self.ConvBlock2(x1)
        x3 = self.ConvBlock3(x2)
        res = x if x.shape[1] == self.dim_out else self.ConvBlock4(x)
        return res + torch.cat((x1, x2, x3), 1)


class HourglassBlock(nn.Module):
    """Four-level hourglass (Newell et al. 2016): at each level a skip branch
    (``ConvBlock{k}_1``) and a 2x average-pooled branch (``ConvBlock{k}_2``); a centre block
    (``ConvBlock5``); on the way up each level's block (``ConvBlock6..9``), nearest 2x
    up-sampling, plus the skip."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        for k in range(1, HOURGLASS_DEPTH + 1):
            setattr(self, f"ConvBlock{k}_1", HourglassConvBlock(dim_in if k == 1 else dim_out, dim_out))
            setattr(self, f"ConvBlock{k}_2", HourglassConvBlock(dim_in if k == 1 else dim_out, dim_out))
        for k in range(5, 10):
            setattr(self, f"ConvBlock{k}", HourglassConvBlock(dim_out, dim_out))

    def forward(self, x):
        skips = []
        for k in range(1, HOURGLASS_DEPTH + 1):
            skips.append(getattr(self, f"ConvBlock{k}_1")(x))
            x = getattr(self, f"ConvBlock{k}_2")(F.avg_pool2d(x, 2))
        x = self.ConvBlock5(x)
        for k, skip in zip(range(6, 10), reversed(skips)):
            x = skip + F.interpolate(getattr(self, f"ConvBlock{k}")(x), scale_factor=2, mode="nearest")
        return x


class HourGlass(nn.Module):
    """Hourglass module with an intermediate 3-channel output (``Conv1``), as in stacked
    hourglass networks: with ``use_res`` it returns x + Conv2(features) + Conv3(Conv1(features));
    without it (the generator's last hourglass) it returns the 3-channel map itself."""

    def __init__(self, dim_in, dim_out, use_res=True):
        super().__init__()
        self.use_res = use_res
        self.HG = nn.Sequential(HourglassBlock(dim_in, dim_out), HourglassConvBlock(dim_out, dim_out),
                                nn.Conv2d(dim_out, dim_out, 1, 1, bias=False), nn.InstanceNorm2d(dim_out),
                                nn.ReLU(True))
        self.Conv1 = nn.Conv2d(dim_out, 3, 1, 1)
        if use_res:
            self.Conv2 = nn.Conv2d(dim_out, dim_out, 1, 1)
            self.Conv3 = nn.Conv2d(3, dim_out, 1, 1)

    def forward(self, x):
        h = self.HG(x)
        out = self.Conv1(h)
        if not self.use_res:
            return out
        return x + self.Conv2(h) + self.Conv3(out)


# ---- Soft-AdaLIN -------------------------------------------------------------------------
class SoftAdaLIN(nn.Module):
    """AdaLIN whose gamma/beta blend a style-derived and a content-derived estimate with learned
    per-channel weights ``w_gamma``, ``w_beta`` (1 x C, starting at 0: pure style, i.e. plain
    U-GAT-IT at initialisation). Content: a 2-layer MLP (``c_gamma``, ``c_beta``) of the pooled
    encoder features; style: one linear layer (``s_gamma``, ``s_beta``) of the FC output."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        c = num_features
        self.norm = AdaLIN(c, eps)
        self.w_gamma = nn.Parameter(torch.zeros(1, c))
        self.w_beta = nn.Parameter(torch.zeros(1, c))
        self.c_gamma = nn.Sequential(nn.Linear(c, c), nn.ReLU(True), nn.Linear(c, c))
        self.c_beta = nn.Sequential(nn.Linear(c, c), nn.ReLU(True), nn.Linear(c, c))
        self.s_gamma = nn.Linear(c, c)
        self.s_beta = nn.Linear(c, c)

    def forward(self, x, content, style):
        # content, style: N x C; the blend weights (1 x C) broadcast over the batch. Written as
        # (1 - w) s + w c, the authors' expression, rather than lerp: the same rounding as theirs
        wg, wb = self.w_gamma, self.w_beta
        gamma = (1 - wg) * self.s_gamma(style) + wg * self.c_gamma(content)
        beta = (1 - wb) * self.s_beta(style) + wb * self.c_beta(content)
        return self.norm(x, gamma, beta)


@torch.no_grad()
def clip_soft_weights_(module: nn.Module, lo: float = 0.0, hi: float = 1.0) -> None:
    """Clamp every Soft-AdaLIN blend weight under ``module`` into [lo, hi] (their WClipper)."""
    for m in module.modules():
        if isinstance(m, SoftAdaLIN):
            m.w_gamma.clamp_(lo, hi)
            m.w_beta.clamp_(lo, hi)


# ---- generator -----------------------------------------------------------------------------
# the generator's parts (top-level children with weights), in forward order; the few-shot
# method gives each group its own copy of some of them (by default the stem and the tail)
PARTS = ("ConvBlock1", "HourGlass1", "HourGlass2", "DownBlock1", "DownBlock2",
         *(f"EncodeBlock{k}" for k in range(1, N_ENC + 1)), "gap_fc", "gmp_fc", "conv1x1", "FC",
         *(f"DecodeBlock{k}" for k in range(1, N_ENC + 1)), "UpBlock1", "UpBlock2", "HourGlass3",
         "HourGlass4", "ConvBlock2")
STEM_TAIL = ("ConvBlock1", "HourGlass1", "HourGlass4", "ConvBlock2")


class Photo2CartoonGenerator(nn.Module):
    """Stem (7x7 conv, IN, ReLU) -> HourGlass1, HourGlass2 -> two stride-2 convs -> EncodeBlock1..4
    (residual, IN) -> CAM -> FC (style) -> DecodeBlock1..4 (Soft-AdaLIN) -> UpBlock1, UpBlock2
    (nearest x2, conv, LIN, ReLU) -> HourGlass3, HourGlass4 (to 3 channels) -> 7x7 conv, tanh.

    Keys and registration order are the authors' (``ResnetGenerator`` of their networks.py).
    ``forward(x, parts=None)``: ``parts`` maps some top-level child names to replacement modules
    of the same shape (the few-shot group branches). Returns (image, CAM logits N x 2, heatmap
    N x 1 x H/4 x W/4). H and W must be multiples of 16 (the hourglasses pool four times);
    without ``light`` they must equal ``img_size``.
    """

    def __init__(self, ngf: int = 32, img_size: int = 256, light: bool = True):
        super().__init__()
        self.light, self.img_size = light, img_size
        c = ngf * 4
        self.ConvBlock1 = nn.Sequential(*conv_layers(3, ngf, 7, padding=3, norm="instance", bias=False))
        self.HourGlass1 = HourGlass(ngf, ngf)
        self.HourGlass2 = HourGlass(ngf, ngf)
        self.DownBlock1 = nn.Sequential(*conv_layers(ngf, 2 * ngf, 3, 2, padding=1, norm="instance", bias=False))
        self.DownBlock2 = nn.Sequential(*conv_layers(2 * ngf, c, 3, 2, padding=1, norm="instance", bias=False))
        for k in range(1, N_ENC + 1):
            setattr(self, f"EncodeBlock{k}", ResnetBlock(c, norm="instance", pad="reflect", bias=False))
        self.gap_fc = nn.Linear(c, 1)
        self.gmp_fc = nn.Linear(c, 1)
        self.conv1x1 = nn.Conv2d(2 * c, c, 1, 1)
        self.relu = nn.ReLU(True)
        fc_in = c if light else (img_size // 4) ** 2 * c
        self.FC = nn.Sequential(nn.Linear(fc_in, c), nn.ReLU(True), nn.Linear(c, c), nn.ReLU(True))
        for k in range(1, N_ENC + 1):
            setattr(self, f"DecodeBlock{k}", ResnetAdaLINBlock(c, norm=SoftAdaLIN))
        self.UpBlock1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                                      nn.Conv2d(c, 2 * ngf, 3, 1, 0, bias=False), LIN(2 * ngf), nn.ReLU(True))
        self.UpBlock2 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                                      nn.Conv2d(2 * ngf, ngf, 3, 1, 0, bias=False), LIN(ngf), nn.ReLU(True))
        self.HourGlass3 = HourGlass(ngf, ngf)
        self.HourGlass4 = HourGlass(ngf, ngf, use_res=False)
        self.ConvBlock2 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 3, 7, 1, 0, bias=False), nn.Tanh())

    def check_size(self, x):
        h, w = x.shape[-2:]
        if h % 16 or w % 16:
            raise ConfigError(f"photo2cartoon takes sides that are multiples of 16; got {h}×{w}")
        if not self.light and (h, w) != (self.img_size, self.img_size):
            raise ConfigError(
                f"photo2cartoon (full) takes {self.img_size}×{self.img_size} inputs (its FC layer sees "
                f"the whole feature map); got {h}×{w}")

    def forward(self, x, parts: dict | None = None):
        self.check_size(x)

        def m(name):
            return parts[name] if parts and name in parts else getattr(self, name)

        x = m("HourGlass2")(m("HourGlass1")(m("ConvBlock1")(x)))
        x = m("DownBlock2")(m("DownBlock1")(x))
        content = []  # pooled features after each encoder block: N x C
        for k in range(1, N_ENC + 1):
            x = m(f"EncodeBlock{k}")(x)
            content.append(F.adaptive_avg_pool2d(x, 1).flatten(1))
        x, cam_logit, heatmap = class_activation_map(x, m("gap_fc"), m("gmp_fc"), m("conv1x1"), self.relu)
        style = m("FC")((F.adaptive_avg_pool2d(x, 1) if self.light else x).flatten(1))
        for k in range(1, N_ENC + 1):  # deepest content features first
            x = m(f"DecodeBlock{k}")(x, content[N_ENC - k], style)
        x = m("HourGlass3")(m("UpBlock2")(m("UpBlock1")(x)))
        return m("ConvBlock2")(m("HourGlass4")(x)), cam_logit, heatmap


# ---- the method --------------------------------------------------------------------------------
def _positive_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"photo2cartoon: {name} must be an integer >= {lo}, got {v!r}")


class FaceIDMixin:
    """The frozen face-recognition network, kept out of the module tree (not a parameter, not
    saved, not moved by ``.to``: it follows the input's device when used)."""

    def _facenet_for(self, x: torch.Tensor):
        net = self.__dict__.get("_facenet")
        if net is None:
            path = self.config.get("facenet_weights")
            if not path:
                raise ConfigError(
                    f"{self.method_name}: model.faceid_weight is {self.w_faceid:g} but "
                    f"model.facenet_weights is not set: {FACENET_HINT}")
            net = load_mobilefacenet(Path(path).expanduser())
            self.__dict__["_facenet"] = net
        if next(net.parameters()).device != x.device:
            net.to(x.device)
        return net

    def check_facenet(self):
        """Fail early (at optimizer set-up) rather than at the first step."""
        if self.w_faceid > 0:
            self._facenet_for(torch.empty(0))

    def face_id_loss(self, photo, translated):
        return self.w_faceid * face_id_distance(self._facenet_for(photo), photo, translated)


@register_method("photo2cartoon")
class Photo2Cartoon(FaceIDMixin, UGATIT):
    """``directions``: both (training needs both); an import of a genA2B-only checkpoint keeps
    ``["AtoB"]`` and its model directory stores only genA2B."""

    data_kind = "unpaired"
    size_multiple = 16

    def __init__(self, light=True, img_size=256, ch=32, n_dis_global=7, n_dis_local=5,
                 adv_weight=1.0, cycle_weight=50.0, identity_weight=10.0, cam_weight=1000.0,
                 faceid_weight=1.0, facenet_weights=None, rho_clip=1.0, w_clip=1.0,
                 directions=("AtoB", "BtoA")):
        Method.__init__(self)
        _positive_int("img_size", img_size, 16)
        if img_size % 16:
            raise ConfigError(f"photo2cartoon: img_size must be a multiple of 16, got {img_size}")
        _positive_int("ch", ch, 4)
        if ch % 4:
            raise ConfigError(f"photo2cartoon: ch must be a multiple of 4 (the hourglass blocks split "
                              f"it in 1/2, 1/4, 1/4), got {ch}")
        _positive_int("n_dis_global", n_dis_global, 3)
        _positive_int("n_dis_local", n_dis_local, 3)
        dirs = tuple(directions)
        if not dirs or any(d not in DIRECTIONS for d in dirs) or len(set(dirs)) != len(dirs):
            raise ConfigError(f"photo2cartoon: directions must be AtoB and/or BtoA, got {list(directions)}")
        for name, v in (("rho_clip", rho_clip), ("w_clip", w_clip)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"photo2cartoon: {name} must be a positive number, got {v!r}")
        self.directions = dirs
        if "directions" in self.config:  # as a model directory's config.json gives it back
            self.config["directions"] = list(dirs)
        self.fixed_size = None if light else img_size
        self.genA2B = Photo2CartoonGenerator(ch, img_size, bool(light))
        self.genB2A = Photo2CartoonGenerator(ch, img_size, bool(light))
        self._add_discriminators_and_weights(3, ch, n_dis_global, n_dis_local, adv_weight, cycle_weight,
                                             identity_weight, cam_weight)
        self.w_faceid = float(faceid_weight)
        self.rho_clip, self.w_clip = float(rho_clip), float(w_clip)

    @property
    def inference_modules(self):
        return tuple({"AtoB": "genA2B", "BtoA": "genB2A"}[d] for d in self.directions)

    # ---- training ------------------------------------------------------------------------
    def optimizer_groups(self):
        if len(self.directions) < 2:
            raise ConfigError("photo2cartoon: training needs both directions (directions: [AtoB, BtoA])")
        self.check_facenet()
        return super().optimizer_groups()

    def generator_extra_losses(self, real, fake, src):
        """``faceid_A`` = 1 - cos(f(A), f(G_A2B(A))) and ``faceid_B`` likewise, in U-GAT-IT's
        generator phase of each direction."""
        return {f"faceid_{src}": self.face_id_loss(real, fake)} if self.w_faceid > 0 else {}

    def after_step(self, optimizer):
        if optimizer == "G":
            for g in (self.genA2B, self.genB2A):
                clip_rho_(g, 0.0, self.rho_clip)
                clip_soft_weights_(g, 0.0, self.w_clip)


# ---- the authors' checkpoints ------------------------------------------------------------------
def _bare_generator_hint(obj) -> str:
    if isinstance(obj, dict) and "ConvBlock1.1.weight" in obj:
        return " (it is a bare generator state dict; the authors' files wrap it as {'genA2B': ...})"
    return ""


def photo2cartoon_options(sd: dict, path) -> dict:
    """light, img_size and ch from a generator's state dict."""
    w0, fc0 = sd.get("ConvBlock1.1.weight"), sd.get("FC.0.weight")
    if w0 is None or fc0 is None or w0.ndim != 4 or fc0.ndim != 2 or "HourGlass1.Conv1.weight" not in sd:
        hint = " (it looks like a U-GAT-IT generator: try 'styleforge import ugatit')" \
            if "DownBlock.1.weight" in sd else ""
        raise CheckpointError(f"{path}: genA2B is not a Photo2Cartoon generator (no ConvBlock1.1.weight, "
                              f"HourGlass1, FC.0.weight){hint}")
    ch, c = w0.shape[0], 4 * w0.shape[0]
    light = fc0.shape[1] == c
    img_size = 256  # light: not recorded in the weights; 256 is the official size
    if not light:
        side = int(round((fc0.shape[1] // c) ** 0.5))
        if side * side * c != fc0.shape[1]:
            raise CheckpointError(f"{path}: FC.0.weight has {fc0.shape[1]} inputs, not (img_size/4)^2 × {c}")
        img_size = side * 4
    return {"light": light, "img_size": img_size, "ch": ch}


@register_importer("photo2cartoon")
def import_photo2cartoon(path):
    """``path``: the authors' ``photo2cartoon_weights.pt`` or a ``*_params_*.pt`` of their
    train.py: a dict of state dicts with at least genA2B (photo -> cartoon), and optionally
    genB2A and the four discriminators (loaded too, for further training; a model directory
    keeps the generators only). Read with ``weights_only=True``; options from the shapes."""
    sds = read_state_dicts(path, NETWORKS, ("genA2B",), "a Photo2Cartoon checkpoint (as "
                           "photo2cartoon_weights.pt or *_params_latest.pt)", _bare_generator_hint)
    opts = photo2cartoon_options(sds["genA2B"], path)
    if all(k in sds for k in ("disGA", "disGB", "disLA", "disLB")):
        opts["n_dis_global"] = discriminator_layers(sds["disGA"])
        opts["n_dis_local"] = discriminator_layers(sds["disLA"])
    if "genB2A" not in sds:
        opts["directions"] = ["AtoB"]
    model = Photo2Cartoon(**opts)
    for name, sd in sds.items():
        load_state_dict_strict(getattr(model, name), sd, f"{path}: {name}",
                               f"a Photo2Cartoon network with {opts}")
    return model.eval()
