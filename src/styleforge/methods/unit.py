"""UNIT: Liu, Breuel, Kautz, "Unsupervised Image-to-Image Translation Networks", NIPS 2017; laid
out as the authors' PyTorch code (mingyuliutw/UNIT ``networks.py`` ``VAEGen``, ``trainer.py``).

Paper symbol -> code name:
  E_1, G_1 (domain X_1)        gen_a.enc, gen_a.dec         D_1, D_2    dis_a, dis_b
  E_2, G_2 (domain X_2)        gen_b.enc, gen_b.dec
  z ~ q(z|x) = N(E(x), I)      h (the mean, "hiddens"), z = h + eps, eps ~ N(0, I) (Sec. 2,
                               the reparameterisation trick; the variance is fixed to I)
  objective weights (Sec. 2: VAE, GAN and cycle-consistency terms)
    lambda_0 (GAN)             gan_w = 1
    lambda_1 (VAE KL)          recon_kl_w = 0.01      lambda_2 (VAE reconstruction)  recon_x_w = 10
    lambda_3 (cycle KL)        recon_kl_cyc_w = 0.01  lambda_4 (cycle reconstruction) recon_x_cyc_w = 10
  weight sharing (Sec. 2)      share_latent, shared_blocks
The weights are those of the authors' shipped configs (``configs/unit_*.yaml``), with the
mean-reduced losses of their ``trainer.py``. KL: with unit variance, KL(N(h, I) || N(0, I)) =
||h||² / 2; the code minimises mean(h²) (the same up to a constant factor), see :func:`kl_loss`.

Networks: per domain a content-encoder-like stack (7×7 conv, ``n_downsample`` stride-2 convs,
``n_res`` residual blocks, instance norm) and a decoder (``n_res`` residual blocks with instance
norm, up-sampling + 5×5 conv + layer norm, 7×7 conv, tanh), the MUNIT code's blocks; 3-scale
LSGAN discriminators. Kaiming init for generators, N(0, 0.02) for discriminators.

Weight sharing: the authors' PyTorch code shares no layer between the domains (its two VAEGens
are independent, and its checkpoints hold two complete generators); the paper shares the last
few layers of E_1/E_2 and the first few of G_1/G_2 (Sec. 2). ``share_latent: true`` builds that
(how many is our choice: ``shared_blocks``, default 1 residual block on each side): the last
``shared_blocks`` encoder residual blocks are one module (``shared_enc``) used by both domains,
as are the first ``shared_blocks`` decoder residual blocks (``shared_dec``). The default is the
authors' layout, so their checkpoints import (``import unit``) with equal outputs.

One training step, in the authors' order: discriminators first (on x_ab, x_ba decoded from
h + eps), then the generators. Inference (their ``test.py``): the mean h, no noise:
``translate(x, "AtoB") = G_2(E_1(x))``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..losses.nvlabs import (LazyPerceptualVGG, check_perceptual, gan_loss, recon_criterion, two_domain_step,
                             two_domain_g_adv_vgg)
from ..nn.discriminators import build_ms_discriminator
from ..nn.init import init_nvlabs
from ..nn.munit_blocks import (ContentEncoder, Decoder, ResBlocks, content_encoder_options,
                               decode_together, load_generator, load_nvlabs_generators)
from ..registry import register_importer, register_method
from .base import Method, Phase

DIRECTIONS = ("AtoB", "BtoA")


def kl_loss(mu: torch.Tensor) -> torch.Tensor:
    """The authors' KL term for q = N(mu, I) against the prior N(0, I): ``mean(mu²)``, which is
    ``2 KL / mu.numel()`` (KL = sum(mu²) / 2 for unit variances)."""
    return torch.mean(mu.pow(2))


def reparameterize(mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + eps, eps ~ N(0, I) (the variance is fixed to I, as in the authors' ``VAEGen``)."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,
                      device="cpu" if generator is not None else mu.device)
    return mu + eps.to(mu.device)


class VAEGen(nn.Module):
    """One domain's encoder ``enc`` and decoder ``dec`` (their ``VAEGen``); ``n_res - n_shared``
    residual blocks of each are its own (the shared ones live in the method)."""

    def __init__(self, in_ch=3, dim=64, n_downsample=2, n_res=4, activ="relu", pad_type="reflect",
                 n_shared=0):
        super().__init__()
        self.enc = ContentEncoder(n_downsample, n_res - n_shared, in_ch, dim, "in", activ, pad_type)
        self.dec = Decoder(n_downsample, n_res - n_shared, self.enc.output_dim, in_ch, "in",
                           activ, pad_type)


@register_method("unit")
class UNIT(LazyPerceptualVGG, Method):
    data_kind = "unpaired"
    fit_terms = ("recon_x_a", "recon_x_b", "cyc_x_a", "cyc_x_b")  # not the KL terms (regularisers)
    directions = DIRECTIONS
    inference_modules = ("gen_a", "gen_b")

    def __init__(self, input_dim_a=3, input_dim_b=3, dim=64, activ="relu", n_downsample=2,
                 n_res=4, pad_type="reflect", share_latent=False, shared_blocks=1, dis_dim=64,
                 dis_norm="none", dis_activ="lrelu", dis_n_layer=4, num_scales=3,
                 dis_pad_type="reflect", gan_type="lsgan", init="kaiming", gan_w=1.0,
                 recon_x_w=10.0, recon_kl_w=0.01, recon_x_cyc_w=10.0, recon_kl_cyc_w=0.01,
                 vgg_w=0.0, vgg_path=None, vgg_arch="vgg16"):
        super().__init__()
        adversarial = gan_loss("unit", gan_type)
        n_shared = int(shared_blocks) if share_latent else 0
        if share_latent and not 1 <= n_shared <= n_res:
            raise ConfigError(f"unit: shared_blocks must be within 1..n_res ({n_res}), got {shared_blocks}")
        gen = dict(dim=dim, n_downsample=n_downsample, n_res=n_res, activ=activ,
                   pad_type=pad_type, n_shared=n_shared)
        self.gen_a = VAEGen(input_dim_a, **gen)
        self.gen_b = VAEGen(input_dim_b, **gen)
        if n_shared:
            width = self.gen_a.enc.output_dim
            self.shared_enc = ResBlocks(n_shared, width, "in", activ, pad_type)
            self.shared_dec = ResBlocks(n_shared, width, "in", activ, pad_type)
            self.inference_modules = ("gen_a", "gen_b", "shared_enc", "shared_dec")
        init_nvlabs(self, init)  # generators (and shared blocks); the discriminators below
        dis = (dis_dim, dis_norm, dis_activ, dis_n_layer, num_scales, dis_pad_type)
        self.dis_a = build_ms_discriminator(input_dim_a, *dis)
        self.dis_b = build_ms_discriminator(input_dim_b, *dis)
        self.gan_loss = adversarial
        self.size_multiple = 2 ** n_downsample
        self.w = dict(gan=gan_w, recon_x=recon_x_w, recon_kl=recon_kl_w, recon_x_cyc=recon_x_cyc_w,
                      recon_kl_cyc=recon_kl_cyc_w, vgg=vgg_w)
        self.vgg_path = vgg_path
        self.vgg_arch = check_perceptual("unit", vgg_w, (input_dim_a, input_dim_b), vgg_arch)

    # ---- the two halves of each domain's VAE -------------------------------------------
    def encode_mean(self, gen: VAEGen, x: torch.Tensor) -> torch.Tensor:
        """h = E(x), the mean of q(z|x): N×C×H/2^n×W/2^n."""
        h = gen.enc(x)
        return self.shared_enc(h) if "shared_enc" in self._modules else h

    def decode(self, gen: VAEGen, z: torch.Tensor) -> torch.Tensor:
        if "shared_dec" in self._modules:
            z = self.shared_dec(z)
        return gen.dec(z)

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        gens = [self.gen_a, self.gen_b] + [getattr(self, n) for n in ("shared_enc", "shared_dec")
                                           if n in self._modules]
        return {"G": [p for g in gens for p in g.parameters()],
                "D": [*self.dis_a.parameters(), *self.dis_b.parameters()]}

    def training_step(self, batch):
        """One step of the authors' trainer: ``dis_update`` on the translations made without
        gradient (``gan_w`` × LSGAN/NSGAN of ``dis_a``, ``dis_b``), then ``gen_update``
        (:meth:`generator_losses`) with both discriminators frozen."""
        for name, losses in two_domain_step(self, batch):
            yield Phase(name, losses)

    def discriminator_fakes(self, x_a, x_b):
        """(x_ba, x_ab) for the authors' ``dis_update``: decoded from z = h + eps."""
        return (self.decode(self.gen_a, reparameterize(self.encode_mean(self.gen_b, x_b))),
                self.decode(self.gen_b, reparameterize(self.encode_mean(self.gen_a, x_a))))

    def generator_losses(self, x_a, x_b) -> dict[str, torch.Tensor]:
        """The weighted terms of the authors' ``gen_update`` (a weight of 0 skips its term)."""
        w = self.w
        h_a, h_b = self.encode_mean(self.gen_a, x_a), self.encode_mean(self.gen_b, x_b)
        z_a, z_b = reparameterize(h_a), reparameterize(h_b)
        losses = {}
        if w["recon_x"]:  # each generator's translation and reconstruction in one decode
            x_ba, x_a_recon = decode_together(lambda z: self.decode(self.gen_a, z), (z_b,), (z_a,))
            x_ab, x_b_recon = decode_together(lambda z: self.decode(self.gen_b, z), (z_a,), (z_b,))
            losses["recon_x_a"] = w["recon_x"] * recon_criterion(x_a_recon, x_a)
            losses["recon_x_b"] = w["recon_x"] * recon_criterion(x_b_recon, x_b)
        else:
            x_ba, x_ab = self.decode(self.gen_a, z_b), self.decode(self.gen_b, z_a)
        if w["recon_kl"]:
            losses["recon_kl_a"] = w["recon_kl"] * kl_loss(h_a)
            losses["recon_kl_b"] = w["recon_kl"] * kl_loss(h_b)
        if w["recon_x_cyc"] or w["recon_kl_cyc"]:
            h_b_recon = self.encode_mean(self.gen_a, x_ba)
            h_a_recon = self.encode_mean(self.gen_b, x_ab)
            if w["recon_x_cyc"]:
                x_aba = self.decode(self.gen_a, reparameterize(h_a_recon))
                x_bab = self.decode(self.gen_b, reparameterize(h_b_recon))
                losses["cyc_x_a"] = w["recon_x_cyc"] * recon_criterion(x_aba, x_a)
                losses["cyc_x_b"] = w["recon_x_cyc"] * recon_criterion(x_bab, x_b)
            if w["recon_kl_cyc"]:
                losses["recon_kl_cyc_aba"] = w["recon_kl_cyc"] * kl_loss(h_a_recon)
                losses["recon_kl_cyc_bab"] = w["recon_kl_cyc"] * kl_loss(h_b_recon)
        losses.update(two_domain_g_adv_vgg(w["gan"], w["vgg"], self.gan_loss, self.dis_a, self.dis_b,
                                           self.perceptual_net, x_a, x_b, x_ba, x_ab))
        return losses

    # ---- inference ---------------------------------------------------------------------
    def translate(self, x, direction=None):
        direction = self.check_direction(direction)
        src, dst = (self.gen_a, self.gen_b) if direction == "AtoB" else (self.gen_b, self.gen_a)
        return self.decode(dst, self.encode_mean(src, x))

    @torch.no_grad()
    def visuals(self, batch):
        out = {}
        for key, own, other, tag in (("A", self.gen_a, self.gen_b, "B"), ("B", self.gen_b, self.gen_a, "A")):
            if key in batch:
                x = batch[key]
                h = self.encode_mean(own, x)
                out |= {f"real_{key}": x, f"recon_{key}": self.decode(own, h),
                        f"fake_{tag}": self.decode(other, h)}
        return out


@register_importer("unit")
def import_unit(path):
    """``path``: the authors' ``gen_XXXXXXXX.pt`` ({'a': VAEGen, 'b': VAEGen}); widths and depths
    from the shapes (``activ`` relu and ``pad_type`` reflect, as in every shipped config)."""
    sd_a, sd_b = load_nvlabs_generators(path)
    if "enc_style.model.0.conv.weight" in sd_a:
        raise CheckpointError(f"{path} has a style encoder: it is a MUNIT checkpoint; use 'styleforge import munit'")
    opts = content_encoder_options(sd_a, "enc", path)
    model = UNIT(input_dim_a=opts["in_ch"], input_dim_b=content_encoder_options(sd_b, "enc", path)["in_ch"],
                 dim=opts["dim"], n_downsample=opts["n_downsample"], n_res=opts["n_res"])
    load_generator(model.gen_a, sd_a, path, "a")
    load_generator(model.gen_b, sd_b, path, "b")
    return model
