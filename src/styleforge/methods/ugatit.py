"""U-GAT-IT: Kim, Kim, Kang, Lee, "U-GAT-IT: Unsupervised Generative Attentional Networks with
Adaptive Layer-Instance Normalization for Image-to-Image Translation", ICLR 2020; laid out as
the authors' PyTorch code (znxlwm/UGATIT-pytorch), whose checkpoints load unchanged.

Paper symbol -> code name:
  G_s->t, G_t->s                  genA2B, genB2A (UGATITGenerator)
  D_t, D_s (global / local)       disGB, disGA (n_dis_global=7 layers), disLB, disLA (5 layers)
  E_s (encoder), eta_s (CAM aux.  DownBlock; gap_fc / gmp_fc (CAM logits); conv1x1 fuses the
    classifier), a_s = w_s * E_s    re-weighted features (nn/attention.py), heatmap = sum over C
  AdaLIN(a, gamma, beta), rho     AdaLIN in UpBlock1_k (nn/norms.py), rho initialised 0.9,
                                   clipped to [0, 1] after every generator update (Sec. 2.1.1)
  gamma, beta from an MLP          FC + gamma/beta layers; full: on the flattened feature map
                                   (so the input size is fixed); light: on its average pool
  LIN in the decoder's up-sampling UpBlock2 (nearest ×2, conv, LIN, ReLU)
  lambda_1..4 (Eq. 5)              adv_weight 1, cycle_weight 10, identity_weight 10,
                                   cam_weight 1000 (the official defaults)
  L_lsgan, L_cycle, L_identity,    LSGAN on patch logits and on the discriminators' CAM logits
    L_cam (Sec. 2.3)               (global + local), L1 cycle, L1 identity, BCE-with-logits CAM
                                   loss of the generator (source images 1, target images 0)

One training step, in the authors' order: the discriminators first (on real images and on the
generators' current outputs), then the generators (with the discriminators already updated and
frozen), then rho is clipped. Each loss is split into independent groups that are
back-propagated one at a time (D: domain A, domain B; G: the A->B->A pass, the B->A->B pass, the
identity pass); the sum of the groups is the official objective, so the gradients are the same
while only one group's activations are alive at a time. ``checkpoint_blocks`` recomputes the
residual stacks' activations in the backward pass (same gradients, less memory).
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..checkpoint import is_state_dict, load_state_dict_strict, read_state_dicts
from ..errors import CheckpointError, ConfigError
from ..nn.attention import cam_layers, class_activation_map
from ..nn.blocks import ResnetAdaLINBlock, ResnetBlock, conv_layers
from ..nn.discriminators import UGATITDiscriminator, ugatit_discriminator_min_side
from ..nn.norms import LIN, clip_rho_
from ..nn.utils import requires_grad
from ..registry import register_importer, register_method
from ..utils.images import heatmap_image
from .base import Method, Phase, TrainingSides

DIRECTIONS = ("AtoB", "BtoA")
N_DOWN = 2  # stride-2 convs in the encoder; features at 1/4 of the input size


class UGATITGenerator(nn.Module):
    """Encoder (7×7 conv, two stride-2 convs, ``n_blocks`` residual blocks; instance norm, no
    conv biases) -> CAM -> gamma/beta MLP -> ``n_blocks`` AdaLIN residual blocks -> two
    (nearest ×2, 3×3 conv, LIN, ReLU) -> 7×7 conv, tanh. Key names and layer indices are the
    authors' (``DownBlock.N``, ``UpBlock1_k``, ``UpBlock2.N``, ``FC.N``, ``gamma``, ``beta``,
    ``gap_fc``, ``gmp_fc``, ``conv1x1``), and the layers are built in their order, so a seed
    gives their initial weights. Returns (image N×C×H×W, CAM logits N×2, heatmap N×1×H/4×W/4).
    """

    def __init__(self, in_ch=3, out_ch=3, ngf=64, n_blocks=4, img_size=256, light=False,
                 checkpoint_blocks=False):
        super().__init__()
        if not light and img_size % 4:
            raise ConfigError(f"ugatit: img_size must be a multiple of 4, got {img_size}")
        self.light, self.img_size, self.n_blocks = light, img_size, n_blocks
        self.checkpoint_blocks = checkpoint_blocks
        down = conv_layers(in_ch, ngf, 7, padding=3, norm="instance", pad="reflect", bias=False)
        for i in range(N_DOWN):
            c = ngf * 2 ** i
            down += conv_layers(c, 2 * c, 3, 2, padding=1, norm="instance", pad="reflect", bias=False)
        ch = ngf * 2 ** N_DOWN
        down += [ResnetBlock(ch, norm="instance", pad="reflect", bias=False) for _ in range(n_blocks)]
        self.gap_fc, self.gmp_fc, self.conv1x1 = cam_layers(ch)
        self.relu = nn.ReLU(True)
        # full: the MLP sees the whole (img_size/4)^2 × C feature map; light: its channel means
        fc_in = ch if light else (img_size // 4) ** 2 * ch
        fc = [nn.Linear(fc_in, ch, bias=False), nn.ReLU(True), nn.Linear(ch, ch, bias=False), nn.ReLU(True)]
        self.gamma = nn.Linear(ch, ch, bias=False)
        self.beta = nn.Linear(ch, ch, bias=False)
        for k in range(1, n_blocks + 1):
            setattr(self, f"UpBlock1_{k}", ResnetAdaLINBlock(ch))
        up: list[nn.Module] = []
        for _ in range(N_DOWN):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                   nn.Conv2d(ch, ch // 2, 3, 1, 0, bias=False), LIN(ch // 2), nn.ReLU(True)]
            ch //= 2
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7, 1, 0, bias=False), nn.Tanh()]
        # registered last, as the authors do: their state-dict order
        self.DownBlock = nn.Sequential(*down)
        self.FC = nn.Sequential(*fc)
        self.UpBlock2 = nn.Sequential(*up)

    def _run(self, block, *args):
        if self.checkpoint_blocks and self.training and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x):
        if not self.light and x.shape[-2:] != (self.img_size, self.img_size):
            raise ConfigError(
                f"ugatit (full) takes {self.img_size}×{self.img_size} inputs (its FC layer sees the "
                f"whole feature map); got {x.shape[-2]}×{x.shape[-1]}")
        for layer in self.DownBlock:
            x = self._run(layer, x) if isinstance(layer, ResnetBlock) else layer(x)
        x, cam_logit, heatmap = class_activation_map(x, self.gap_fc, self.gmp_fc, self.conv1x1, self.relu)
        h = F.adaptive_avg_pool2d(x, 1) if self.light else x
        h = self.FC(h.flatten(1))
        gamma, beta = self.gamma(h), self.beta(h)
        for k in range(1, self.n_blocks + 1):
            x = self._run(getattr(self, f"UpBlock1_{k}"), x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap


@register_method("ugatit")
class UGATIT(Method):
    data_kind = "unpaired"
    fit_terms = ("cycle_A", "cycle_B", "idt_A", "idt_B")
    directions = DIRECTIONS
    inference_modules = ("genA2B", "genB2A")
    size_multiple = 4
    has_heatmaps = True  # translate(..., return_heatmap=True): the generator's CAM map

    def __init__(self, light=False, img_size=256, img_ch=3, ch=64, n_res=4, n_dis_global=7,
                 n_dis_local=5, adv_weight=1.0, cycle_weight=10.0, identity_weight=10.0,
                 cam_weight=1000.0, checkpoint_blocks=False):
        super().__init__()
        for name, v in (("img_size", img_size), ("img_ch", img_ch), ("ch", ch)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"ugatit: {name} must be a positive integer, got {v!r}")
        if isinstance(n_res, bool) or not isinstance(n_res, int) or n_res < 0:
            raise ConfigError(f"ugatit: n_res must be an integer >= 0, got {n_res!r}")
        for name, v in (("n_dis_global", n_dis_global), ("n_dis_local", n_dis_local)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 3:
                raise ConfigError(f"ugatit: {name} must be an integer >= 3, got {v!r}")
        # full: the FC layer fixes the input size; light: any multiple of 4
        self.fixed_size = None if light else img_size
        gen = dict(ngf=ch, n_blocks=n_res, img_size=img_size, light=bool(light),
                   checkpoint_blocks=bool(checkpoint_blocks))
        # built in the authors' order (build_model): same seed, same initial weights
        self.genA2B = UGATITGenerator(img_ch, img_ch, **gen)
        self.genB2A = UGATITGenerator(img_ch, img_ch, **gen)
        self._add_discriminators_and_weights(img_ch, ch, n_dis_global, n_dis_local, adv_weight,
                                             cycle_weight, identity_weight, cam_weight)

    @classmethod
    def training_sides(cls, config):
        """The global discriminator's depth sets the least side (96 px for n_dis_global 7); the
        full generator's FC layer takes img_size crops only (Photo2Cartoon shares this)."""
        m = cls.size_multiple
        n = config.get("n_dis_global")
        d = ugatit_discriminator_min_side(n) if isinstance(n, int) and not isinstance(n, bool) else 1
        fixed = None if config.get("light") else config.get("img_size")
        why = (f"its {n}-layer global discriminator (model.n_dis_global)" if d > 2 * m
               else f"the generator's {m}× down-sampling")
        return TrainingSides(max(d, 2 * m), m, fixed if isinstance(fixed, int) else None, why,
                             "model.light=false: the generator's fully-connected layer takes model.img_size")

    def _add_discriminators_and_weights(self, img_ch, ch, n_dis_global, n_dis_local, adv_weight,
                                        cycle_weight, identity_weight, cam_weight) -> None:
        """disGA, disGB (global), disLA, disLB (local), built after the generators as the
        authors do, and lambda_1..4; Photo2Cartoon shares them."""
        self.disGA = UGATITDiscriminator(img_ch, ch, n_dis_global)
        self.disGB = UGATITDiscriminator(img_ch, ch, n_dis_global)
        self.disLA = UGATITDiscriminator(img_ch, ch, n_dis_local)
        self.disLB = UGATITDiscriminator(img_ch, ch, n_dis_local)
        self.w_adv, self.w_cyc = float(adv_weight), float(cycle_weight)
        self.w_idt, self.w_cam = float(identity_weight), float(cam_weight)

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        return {"G": [*self.genA2B.parameters(), *self.genB2A.parameters()],
                "D": [p for d in (self.disGA, self.disGB, self.disLA, self.disLB) for p in d.parameters()]}

    @staticmethod
    def _mse(pred, target: float):
        return F.mse_loss(pred, torch.full_like(pred, target))

    def _d_losses(self, d_global, d_local, real, fake, tag):
        """LSGAN of one domain's two discriminators on real (1) and generated (0) images,
        on the patch logits and on the CAM logits."""
        adv = cam = 0.0
        for d in (d_global, d_local):
            r_logit, r_cam, _ = d(real)
            f_logit, f_cam, _ = d(fake)
            adv = adv + self._mse(r_logit, 1) + self._mse(f_logit, 0)
            cam = cam + self._mse(r_cam, 1) + self._mse(f_cam, 0)
        return {f"D_{tag}_adv": self.w_adv * adv, f"D_{tag}_adv_cam": self.w_adv * cam}

    def _g_adv(self, d_global, d_local, fake, tag):
        adv = cam = 0.0
        for d in (d_global, d_local):
            logit, cam_logit, _ = d(fake)
            adv = adv + self._mse(logit, 1)
            cam = cam + self._mse(cam_logit, 1)
        return {f"G_{tag}_adv": self.w_adv * adv, f"G_{tag}_adv_cam": self.w_adv * cam}

    def _bce(self, logit, target: float):
        return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))

    def generators(self):
        """(A->B, B->A) as callables x -> (image, CAM logits, heatmap) that training and the
        sample grids run (the few-shot groups route them through a group's branches)."""
        return self.genA2B, self.genB2A

    def generator_extra_losses(self, real, fake, src: str) -> dict:
        """Hook: more terms of the generator phase of the direction that starts from domain
        ``src`` (``real`` -> ``fake``); Photo2Cartoon's face-ID loss. None in U-GAT-IT."""
        return {}

    def training_step(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        g_a2b, g_b2a = self.generators()
        discs = (self.disGA, self.disGB, self.disLA, self.disLB)
        # ---- discriminators, on the generators' outputs before this step's G update
        if self.w_adv > 0:
            with torch.no_grad():
                fake_A2B = g_a2b(real_A)[0]
                fake_B2A = g_b2a(real_B)[0]
            yield Phase("D", self._d_losses(self.disGA, self.disLA, real_A, fake_B2A, "A"), step=False)
            yield Phase("D", self._d_losses(self.disGB, self.disLB, real_B, fake_A2B, "B"))
            del fake_A2B, fake_B2A
        # ---- generators, discriminators frozen (they get no gradient from G's loss)
        requires_grad(discs, False)
        try:
            idt_group = self.w_idt > 0 or self.w_cam > 0
            for real, g, g_back, d_glob, d_loc, tag, src in (
                    (real_A, g_a2b, g_b2a, self.disGB, self.disLB, "A2B", "A"),
                    (real_B, g_b2a, g_a2b, self.disGA, self.disLA, "B2A", "B")):
                fake, cam_logit, _ = g(real)
                losses = {}
                if self.w_adv > 0:
                    losses |= self._g_adv(d_glob, d_loc, fake, tag)
                if self.w_cam > 0:  # G's own CAM: its output-domain features are "source" (1)
                    losses[f"G_{tag}_cam"] = self.w_cam * self._bce(cam_logit, 1)
                if self.w_cyc > 0:
                    losses[f"cycle_{src}"] = self.w_cyc * F.l1_loss(g_back(fake)[0], real)
                losses |= self.generator_extra_losses(real, fake, src)
                yield Phase("G", losses, step=tag == "B2A" and not idt_group)
                del fake, cam_logit, losses
            if idt_group:  # G_B2A(A) ~ A, G_A2B(B) ~ B; their CAM logits are "target" (0)
                losses = {}
                for real, g, tag in ((real_A, g_b2a, "A"), (real_B, g_a2b, "B")):
                    same, cam_logit, _ = g(real)
                    if self.w_idt > 0:
                        losses[f"idt_{tag}"] = self.w_idt * F.l1_loss(same, real)
                    if self.w_cam > 0:
                        losses[f"G_{tag}2{tag}_cam"] = self.w_cam * self._bce(cam_logit, 0)
                yield Phase("G", losses)
        finally:
            requires_grad(discs, True)

    def after_step(self, optimizer):
        if optimizer == "G":  # the authors' RhoClipper(0, 1) on both generators
            clip_rho_(self.genA2B)
            clip_rho_(self.genB2A)

    # ---- inference ---------------------------------------------------------------------
    def translate(self, x, direction=None, return_heatmap=False):
        """``x``: N×C×H×W in [-1, 1] (full: H = W = img_size). Returns the translation, and with
        ``return_heatmap`` also the generator's CAM heatmap N×1×H/4×W/4 (raw channel sums;
        :func:`heatmap_image` colours it)."""
        direction = self.check_direction(direction)
        out, _, heatmap = (self.genA2B if direction == "AtoB" else self.genB2A)(x)
        return (out, heatmap) if return_heatmap else out

    @torch.no_grad()
    def visuals(self, batch):
        g_a2b, g_b2a = self.generators()
        out = {}
        for key, g, g_back, tag in (("A", g_a2b, g_b2a, "A2B"), ("B", g_b2a, g_a2b, "B2A")):
            if key in batch:
                real = batch[key]
                fake, _, hm = g(real)
                out |= {f"real_{key}": real, f"cam_{tag}": heatmap_image(hm, real.shape[-2:]),
                        f"fake_{tag}": fake, f"rec_{key}": g_back(fake)[0]}
        return out


# ---- the authors' checkpoints -----------------------------------------------------------
NETWORKS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")


def _not_ugatit_hint(obj) -> str:
    if not (is_state_dict(obj) and obj):
        return ""
    if "model.1.weight" in obj:
        return (" (it is a single network's state dict: a CycleGAN/pix2pix generator? "
                "try 'styleforge import cyclegan')")
    return " (it is a single network's state dict)"


def ugatit_options(sd: dict, path) -> dict:
    """Infer light/full, img_size, ch, n_res and img_ch from a generator's state dict."""
    w0, fc0 = sd.get("DownBlock.1.weight"), sd.get("FC.0.weight")
    if w0 is None or fc0 is None or w0.ndim != 4 or fc0.ndim != 2:
        raise CheckpointError(f"{path}: genA2B is not a U-GAT-IT generator (no DownBlock.1.weight / FC.0.weight)")
    ch, img_ch = w0.shape[0], w0.shape[1]
    c = ch * 2 ** N_DOWN
    n_res = len({m.group(1) for k in sd if (m := re.match(r"UpBlock1_(\d+)\.", k))})
    if fc0.shape[0] != c:
        raise CheckpointError(f"{path}: FC.0.weight has {fc0.shape[0]} outputs, expected {c} for ch={ch}")
    light = fc0.shape[1] == c
    img_size = 256  # light: not recorded in the weights; 256 is the official default
    if not light:
        side = math.isqrt(fc0.shape[1] // c)
        if side * side * c != fc0.shape[1]:
            raise CheckpointError(f"{path}: FC.0.weight has {fc0.shape[1]} inputs, not (img_size/4)^2 × {c}")
        img_size = side * 4
    return {"light": light, "img_size": img_size, "img_ch": img_ch, "ch": ch, "n_res": n_res}


def discriminator_layers(sd: dict) -> int:
    return 1 + sum(1 for k in sd if re.fullmatch(r"model\.\d+\.weight_orig", k))


@register_importer("ugatit")
def import_ugatit(path):
    """``path``: the authors' ``*_params_latest.pt`` / ``*_params_NNNNNNN.pt``, a dict of state
    dicts (genA2B, genB2A, and optionally disGA, disGB, disLA, disLB), read with
    ``weights_only=True``. Options are inferred from the shapes; the discriminators are loaded
    too when present (so training can continue), though a model directory keeps only the
    generators."""
    sds = read_state_dicts(path, NETWORKS, ("genA2B", "genB2A"),
                           "a U-GAT-IT checkpoint (as *_params_latest.pt)", _not_ugatit_hint)
    opts = ugatit_options(sds["genA2B"], path)
    if all(k in sds for k in NETWORKS[2:]):
        opts["n_dis_global"] = discriminator_layers(sds["disGA"])
        opts["n_dis_local"] = discriminator_layers(sds["disLA"])
    model = UGATIT(**opts)
    for name, sd in sds.items():
        load_state_dict_strict(getattr(model, name), sd, f"{path}: {name}",
                               f"a U-GAT-IT network with {opts}")
    return model.eval()
