"""MIXGAN: Hao, Yu, Zheng, "MIXGAN: Learning Concepts from Different Domains for Mixture
Generation", IJCAI 2018; networks and defaults from the authors' TensorFlow code
(GuangyuanHao/MIXGAN ``module.py``, ``model.py``, ``main.py``), re-written for PyTorch.

Content (global shape) comes from domain A, style (colour, local patterns) from domain B:

  paper                                       code name here (their TF scope)
  x in the content domain (grey, 64 px)       ``batch["A"]`` converted to grey (their ``real_B``)
  y in the style domain (colour)              ``batch["B"]`` (their ``real_A``)
  encoder E(x) -> z (z_dim = 2048)            ``E`` (``encoder``): 5 convs + 4 linear layers
  prior p(z), z_dim-dimensional               ``prior`` = "normal" (the paper's Gaussian; their
                                              code samples U(-1, 1): ``prior="uniform"``)
  latent discriminator of the adversarial     ``Dz`` (``dis_z``): linear to 32×32×ngf, 4 stride-2
  autoencoder (q(z|x) against p(z))           convs, linear to one logit
  content decoder Gc(z) -> x_hat, features    ``Gc`` (``decoder``): 4 linear layers, 4×4×8ngf map,
                                              2 up-convs, 6 residual blocks, 2 up-convs, 7×7 conv;
                                              its features = concat(last ngf-channel map, x_hat)
  mixture decoder Gm(features) -> mixed       ``Gm`` (``generator``): 3×3 conv (2ngf) + IN + ReLU,
  image G(z) = Gm(Gc(z))                      concatenated with its input, 7×7 conv to RGB, tanh
  patch discriminator Dp on domain y          ``Dp`` (``dis_A``): 4×4, 2×2, 1×1, 4×4 stride-1 convs
                                              (8×8-pixel patches: it sees local style only)
  least-squares GAN                           MSE to 1 (real) / 0 (fake), as their ``mae_criterion``
  reconstruction ||Gc(E(x)) - x||_1 × 10      ``lambda_rec`` = 10 (their ``L1_lambda``)

Two training stages, as their loop: stage 1 (their first 100 of 300 epochs; ``stage1_steps``)
trains the adversarial autoencoder — Dz on prior vs encoded codes (Adam lr/50), then E and Gc on
Dz's verdict + reconstruction (lr); stage 2 trains the mixture generation — Dp on style images vs
G(z), z from the prior (lr/10), then G (lr). Their code leaves Gc out of every optimizer (stage 1
minimises the reconstruction with the encoder only; the line training Gc in stage 2 is commented
out), so its Gc stays at its random initialisation. Here Gc trains as the paper describes it:
with E in stage 1 (group ``AE``) and jointly with Gm in stage 2 (group ``G``, adversarial loss +
the reconstruction that keeps it a decoder of x; ``joint_content_decoder=False`` trains Gm alone
as their released loop does). docs/latent_translation.md lists every choice the paper leaves open.

Inference (``translate``): ``mode="translate"`` maps a content image x to Gm(Gc(E(x))) (their
image-to-image application); ``mode="sample"`` generates from the code input ``z`` (drawn from
N(0, 1) by the pipeline from ``seed``, or E of an image resized to ``image_size``): mixture
generation from the prior. ``z`` is declared ``used_when=("mode", "sample")``: given, it selects
that mode; the pipeline draws it (and takes a seed or ``num_outputs``) only there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registry import register_method
from ..utils.seed import seeded_generator
from .base import Input, Method, Phase

PRIORS = ("normal", "uniform")
MODES = ("translate", "sample")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 grey of the content images


def tf_same_pad(k: int, s: int) -> nn.ZeroPad2d:
    """TensorFlow's 'SAME' zero padding for an input divisible by the stride: max(k - s, 0)
    in total, the extra pixel after (bottom/right)."""
    total = max(k - s, 0)
    lo = total // 2
    return nn.ZeroPad2d((lo, total - lo, lo, total - lo))


class SameConv(nn.Module):
    """conv2d 'SAME' without bias (their ``conv2d``); ``reflect``: reflect-pad (k-1)/2 and 'VALID'."""

    def __init__(self, cin, cout, k, s=1, reflect=False):
        super().__init__()
        self.pad = nn.ReflectionPad2d((k - 1) // 2) if reflect else tf_same_pad(k, s)
        self.conv = nn.Conv2d(cin, cout, k, s, bias=False)

    def forward(self, x):
        return self.conv(self.pad(x))


class SameUpConv(nn.Module):
    """conv2d_transpose 'SAME' without bias (their ``deconv2d``): output = stride × input; TF's
    transposed conv places the kernel from offset 0, so the full PyTorch output is cut at the end."""

    def __init__(self, cin, cout, k=3, s=2):
        super().__init__()
        self.s = s
        self.conv = nn.ConvTranspose2d(cin, cout, k, s, padding=0 if s > 1 else (k - 1) // 2, bias=False)

    def forward(self, x):
        y = self.conv(x)
        if self.s > 1:
            y = y[:, :, :x.shape[2] * self.s, :x.shape[3] * self.s]
        return y


def _in(ch):  # their instance_norm: learned scale/offset, eps 1e-5
    return nn.InstanceNorm2d(ch, affine=True, eps=1e-5)


def _bn(ch):  # tf.contrib batch_norm: decay 0.9, eps 1e-5, scale
    return nn.BatchNorm1d(ch, eps=1e-5, momentum=0.1)


class Encoder(nn.Module):
    """E: N×c×S×S -> N×z_dim (S divisible by 16)."""

    def __init__(self, in_ch, ngf, z_dim, image_size):
        super().__init__()
        g, h = ngf, image_size // 16
        self.convs = nn.Sequential(
            SameConv(in_ch, g, 7, reflect=True), nn.ReLU(),
            SameConv(g, 2 * g, 3, 2), _in(2 * g), nn.ReLU(),
            SameConv(2 * g, 4 * g, 3, 2), _in(4 * g), nn.ReLU(),
            SameConv(4 * g, 4 * g, 3, 2), _in(4 * g), nn.ReLU(),
            SameConv(4 * g, 8 * g, 3, 2), _in(8 * g), nn.ReLU())
        hw = h * h
        self.fc = nn.Sequential(
            nn.Linear(8 * g * hw, 4 * g * hw), _bn(4 * g * hw), nn.ReLU(),
            nn.Linear(4 * g * hw, 4 * g * hw), _bn(4 * g * hw), nn.ReLU(),
            nn.Linear(4 * g * hw, 2 * g * hw), _bn(2 * g * hw), nn.ReLU(),
            nn.Linear(2 * g * hw, z_dim))

    def forward(self, x):
        return self.fc(self.convs(x).flatten(1))


class ResBlock(nn.Module):
    """x + IN(conv3(relu(IN(conv3(x))))), reflect padding (their ``residule_block``)."""

    def __init__(self, ch):
        super().__init__()
        self.block = nn.Sequential(SameConv(ch, ch, 3, reflect=True), _in(ch), nn.ReLU(),
                                   SameConv(ch, ch, 3, reflect=True), _in(ch))

    def forward(self, x):
        return x + self.block(x)


class ContentDecoder(nn.Module):
    """Gc: N×z_dim -> (x_hat N×c×S×S, features N×(ngf + c)×S×S)."""

    def __init__(self, out_ch, ngf, z_dim, image_size, n_res=6):
        super().__init__()
        g, self.h = ngf, image_size // 16
        hw = self.h * self.h
        self.fc = nn.Sequential(
            nn.Linear(z_dim, 2 * g * hw), _bn(2 * g * hw), nn.ReLU(),
            nn.Linear(2 * g * hw, 4 * g * hw), _bn(4 * g * hw), nn.ReLU(),
            nn.Linear(4 * g * hw, 4 * g * hw), _bn(4 * g * hw), nn.ReLU(),
            nn.Linear(4 * g * hw, 8 * g * hw))
        self.ngf = g
        self.up = nn.Sequential(
            _in(8 * g), nn.ReLU(),
            SameUpConv(8 * g, 8 * g), _in(8 * g), nn.ReLU(),   # S/8
            SameUpConv(8 * g, 4 * g), _in(4 * g), nn.ReLU(),   # S/4
            *[ResBlock(4 * g) for _ in range(n_res)],
            SameUpConv(4 * g, 2 * g), _in(2 * g), nn.ReLU(),   # S/2
            SameUpConv(2 * g, g), _in(g), nn.ReLU())           # S
        self.to_image = SameConv(g, out_ch, 7, reflect=True)

    def forward(self, z):
        h = self.fc(z).view(z.shape[0], 8 * self.ngf, self.h, self.h)
        feat = self.up(h)
        x = torch.tanh(self.to_image(feat))
        return x, torch.cat([feat, x], 1)


class MixtureDecoder(nn.Module):
    """Gm: Gc's features N×(ngf + c)×S×S -> the mixed image N×3×S×S."""

    def __init__(self, in_ch, ngf, out_ch=3):
        super().__init__()
        self.up = nn.Sequential(SameUpConv(in_ch, 2 * ngf, 3, 1), _in(2 * ngf), nn.ReLU())
        self.to_image = SameConv(2 * ngf + in_ch, out_ch, 7, reflect=True)

    def forward(self, feat):
        return torch.tanh(self.to_image(torch.cat([self.up(feat), feat], 1)))


class PatchDiscriminator(nn.Module):
    """Dp: stride-1 convs 4×4 (ndf), 2×2 (2ndf, IN), 1×1 (4ndf, IN), 4×4 (1): an S×S map of
    scores of 8×8-pixel patches."""

    def __init__(self, in_ch, ndf):
        super().__init__()
        self.model = nn.Sequential(
            SameConv(in_ch, ndf, 4), nn.LeakyReLU(0.2),
            SameConv(ndf, 2 * ndf, 2), _in(2 * ndf), nn.LeakyReLU(0.2),
            SameConv(2 * ndf, 4 * ndf, 1), _in(4 * ndf), nn.LeakyReLU(0.2),
            SameConv(4 * ndf, 1, 4))

    def forward(self, x):
        return self.model(x)


class LatentDiscriminator(nn.Module):
    """Dz: N×z_dim -> N×1 (linear to a 32×32×ngf map, four stride-2 4×4 convs, linear)."""

    def __init__(self, z_dim, ngf, ndf):
        super().__init__()
        self.ngf = ngf
        self.fc_in = nn.Linear(z_dim, ngf * 32 * 32)
        self.convs = nn.Sequential(
            SameConv(ngf, ndf, 4, 2), nn.LeakyReLU(0.2),
            SameConv(ndf, 2 * ndf, 4, 2), _in(2 * ndf), nn.LeakyReLU(0.2),
            SameConv(2 * ndf, 4 * ndf, 4, 2), _in(4 * ndf), nn.LeakyReLU(0.2),
            SameConv(4 * ndf, 8 * ndf, 4, 2), _in(8 * ndf), nn.LeakyReLU(0.2))
        self.fc_out = nn.Linear(8 * ndf * 4, 1)

    def forward(self, z):
        h = self.fc_in(z).view(z.shape[0], self.ngf, 32, 32)
        return self.fc_out(self.convs(h).flatten(1))


def tf_init(net: nn.Module, std: float = 0.02) -> None:
    """Their initialisers: conv weights truncated N(0, 0.02) (at ±2σ), linear N(0, 0.02) with zero
    bias, instance-norm scale N(1, 0.02) and zero offset, batch norm 1/0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _freeze(nets, frozen: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(not frozen)


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


@register_method("mixgan")
class MIXGAN(Method):
    data_kind = "unpaired"
    fit_terms = ("AE_rec", "G_rec")  # stage 1, stage 2
    inference_modules = ("E", "Gc", "Gm")

    def __init__(self, image_size=64, z_dim=2048, ngf=32, ndf=64, content_nc=1, style_nc=3,
                 n_res=6, lambda_rec=10.0, lambda_adv=1.0, prior="normal", stage1_steps=77800,
                 joint_content_decoder=True):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ConfigError(f"mixgan: image_size must be a multiple of 16, got {image_size}")
        if prior not in PRIORS:
            raise ConfigError(f"mixgan: unknown prior {prior!r}; choose one of {', '.join(PRIORS)}")
        if content_nc not in (1, 3):
            raise ConfigError(f"mixgan: content_nc must be 1 (grey) or 3, got {content_nc}")
        if stage1_steps < 0:
            raise ConfigError(f"mixgan: stage1_steps must be >= 0, got {stage1_steps}")
        self.E = Encoder(content_nc, ngf, z_dim, image_size)
        self.Gc = ContentDecoder(content_nc, ngf, z_dim, image_size, n_res)
        self.Gm = MixtureDecoder(ngf + content_nc, ngf, style_nc)
        self.Dz = LatentDiscriminator(z_dim, ngf, ndf)
        self.Dp = PatchDiscriminator(style_nc, ndf)
        for net in (self.E, self.Gc, self.Gm, self.Dz, self.Dp):
            tf_init(net)
        self.fixed_size = image_size  # fully-connected layers
        self.z_dim, self.content_nc, self.prior = z_dim, content_nc, prior
        self.lambda_rec, self.lambda_adv = lambda_rec, lambda_adv
        self.stage1_steps, self.joint = stage1_steps, joint_content_decoder
        self.steps_done = 0

    def content(self, x: torch.Tensor) -> torch.Tensor:
        """A content image as the networks take it: grey (N×1) when ``content_nc`` is 1."""
        if self.content_nc == 1 and x.shape[1] == 3:
            w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            return (x * w).sum(1, keepdim=True)
        return x

    def sample_prior(self, n: int, device) -> torch.Tensor:
        if self.prior == "uniform":
            return torch.rand(n, self.z_dim, device=device) * 2 - 1
        return torch.randn(n, self.z_dim, device=device)

    # ---- training --------------------------------------------------------------------
    @property
    def stage(self) -> int:
        return 1 if self.steps_done < self.stage1_steps else 2

    def optimizer_groups(self):
        g = [*self.Gm.parameters(), *(self.Gc.parameters() if self.joint else ())]
        return {"Dz": list(self.Dz.parameters()), "AE": [*self.E.parameters(), *self.Gc.parameters()],
                "Dp": list(self.Dp.parameters()), "G": g}

    def training_step(self, batch):
        stage = self.stage
        self.steps_done += 1
        x = self.content(batch["A"])
        if stage == 1:
            yield from self._stage1(x)
        else:
            yield from self._stage2(x, batch["B"])

    def _stage1(self, x):
        # adversarial autoencoder: Dz first (prior codes real, encoded codes fake), then E and Gc
        z_prior = self.sample_prior(x.shape[0], x.device)
        z = self.E(x)
        yield Phase("Dz", {"Dz": 0.5 * (lsgan(self.Dz(z_prior), True) + lsgan(self.Dz(z.detach()), False))})
        _freeze([self.Dz], True)
        try:
            z = self.E(x)  # after the Dz step, as their second session run recomputes it
            losses = {}
            if self.lambda_adv:
                losses["E_adv"] = self.lambda_adv * lsgan(self.Dz(z), True)
            if self.lambda_rec:
                losses["AE_rec"] = self.lambda_rec * F.l1_loss(self.Gc(z)[0], x)
            yield Phase("AE", losses)
        finally:
            _freeze([self.Dz], False)

    def _stage2(self, x, style):
        # mixture generation from prior codes: Dp first (style images real, G(z) fake), then G
        z_prior = self.sample_prior(x.shape[0], x.device)
        fake = self.Gm(self.Gc(z_prior)[1])
        yield Phase("Dp", {"Dp": 0.5 * (lsgan(self.Dp(style), True) + lsgan(self.Dp(fake.detach()), False))})
        _freeze([self.Dp, self.E], True)
        try:
            losses = {"G_adv": self.lambda_adv * lsgan(self.Dp(fake), True)}
            if self.joint and self.lambda_rec:
                with torch.no_grad():
                    z = self.E(x)
                losses["G_rec"] = self.lambda_rec * F.l1_loss(self.Gc(z)[0], x)
            yield Phase("G", losses)
        finally:
            _freeze([self.Dp, self.E], False)

    def training_extra_state(self):
        return {"steps_done": self.steps_done}

    def load_training_extra_state(self, state):
        self.steps_done = int(state.get("steps_done", 0))

    # ---- inference --------------------------------------------------------------------
    def inference_options(self):
        # z is used in mode=sample only (given, it selects that mode); the encoder's linear layers
        # take image_size × image_size, so an image given for z is resized to it
        return [Input("mode", "choice", default="translate", choices=MODES,
                      help="translate: the mixed image of the content image's code; sample: of the code z "
                           "(giving z selects it)"),
                Input("z", "code", size=self.z_dim, encoder=True, encoder_size=self.fixed_size,
                      used_when=("mode", "sample"),
                      help="content code for mode=sample: numbers, or a content image (its code E(x)); "
                           "drawn from N(0, 1) with the seed when not given"),
                Input("seed", "seed", default=0, used_when=("mode", "sample"), help="seed of the drawn code z")]

    def encode(self, name, x):
        if name != "z":
            return super().encode(name, x)
        if tuple(x.shape[-2:]) != (self.fixed_size, self.fixed_size):
            raise ConfigError(f"mixgan: the encoder takes {self.fixed_size}×{self.fixed_size} images (fully-connected "
                              f"layers), got {x.shape[-1]}×{x.shape[-2]}")
        return self.E(self.content(x))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) = Gm(Gc(z)): N×z_dim -> N×3×S×S mixed images."""
        return self.Gm(self.Gc(z)[1])

    def translate(self, x, direction=None, mode="translate", z=None, seed=None, **kw):
        self.check_direction(direction)
        if mode not in MODES:
            raise ConfigError(f"mixgan: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "sample":
            if z is None:
                raise ConfigError("mixgan: mode=sample needs the code z (or a seed to draw it)")
            if z.shape[-1] != self.z_dim:
                raise ConfigError(f"mixgan: z must have {self.z_dim} values per image, got {z.shape[-1]}")
            return self.generate(z.reshape(-1, self.z_dim).expand(x.shape[0], -1))
        if z is not None:
            raise ConfigError("mixgan: z is used only with mode=sample (mode=translate encodes the image)")
        return self.generate(self.E(self.content(x)))

    @torch.no_grad()
    def visuals(self, batch):
        x = self.content(batch["A"])
        z = self.E(x)
        rec, feat = self.Gc(z)
        g = seeded_generator(0)
        zp = torch.randn(x.shape[0], self.z_dim, generator=g).to(x.device)
        if self.prior == "uniform":
            zp = torch.rand(x.shape[0], self.z_dim, generator=g).to(x.device) * 2 - 1
        grey = lambda t: t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t  # noqa: E731
        return {"content": grey(x), "reconstructed": grey(rec), "mixed": self.Gm(feat),
                "sampled": self.generate(zp), "style": batch["B"]}


__all__ = ["MIXGAN", "Encoder", "ContentDecoder", "MixtureDecoder", "PatchDiscriminator",
           "LatentDiscriminator"]
