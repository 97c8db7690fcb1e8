"""CycleGAN: Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017; laid out as the authors' PyTorch code.

Paper symbol -> code name:
  G : X -> Y          G_A   (A -> B)          D_Y  D_A  (judges outputs in domain B)
  F : Y -> X          G_B   (B -> A)          D_X  D_B  (judges outputs in domain A)
  lambda (Eq. 3)      lambda_A (A->B->A cycle), lambda_B (B->A->B cycle), 10 each
  L_identity (Sec. 5.2, weight 0.5 lambda)    lambda_identity = 0.5 (a fraction of lambda_A/B)
  LSGAN (Sec. 4, Mao et al.)                  gan_mode = "lsgan"
  history of 50 images (Sec. 4)               pool_size = 50
Networks (Appendix 7.2): ResNet generator with 6 (128 px) or 9 (256 px) residual blocks,
70×70 PatchGAN discriminator; instance norm; weights N(0, 0.02). ``norm="instance_affine"``
(instance norm with a learned per-channel weight and bias) is the variant some ports train
(vintagify's modern -> vintage generator); the importer reads it from the keys.

One training step, in the authors' order: G_A and G_B are updated with D frozen (adversarial +
cycle + identity), then D_A and D_B on real images and on pooled generated ones (each
discriminator's loss halved). The generator loss is a sum of three independent groups (the A
cycle, the B cycle, the identity terms); each is back-propagated on its own before the next is
built, which gives the same gradients as one backward of the sum and keeps only one group's
activations alive.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from ..checkpoint import load_state_dict_strict, read_state_dict
from ..errors import CheckpointError, ConfigError
from ..losses.adversarial import GANLoss
from ..nn.discriminators import NLayerDiscriminator, PixelDiscriminator, patchgan_min_side
from ..nn.generators import ResnetGenerator
from ..nn.image_pool import ImagePool
from ..nn.init import init_weights
from ..nn.utils import requires_grad
from ..registry import register_importer, register_method
from .base import Method, Phase, TrainingSides

GENERATORS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
DISCRIMINATORS = ("basic", "n_layers", "pixel")
DIRECTIONS = ("AtoB", "BtoA")


@register_method("cyclegan")
class CycleGAN(Method):
    data_kind = "unpaired"
    fit_terms = ("cycle_A", "cycle_B", "idt_A", "idt_B")
    directions = DIRECTIONS
    size_multiple = 4

    def __init__(self, in_channels=3, out_channels=3, ngf=64, ndf=64, netG="resnet_9blocks",
                 netD="basic", n_layers_D=3, norm="instance", dropout=False, gan_mode="lsgan",
                 lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5, pool_size=50,
                 init_type="normal", init_gain=0.02, inference_directions=("AtoB", "BtoA")):
        super().__init__()
        if netG not in GENERATORS:
            raise ConfigError(f"cyclegan: unknown netG {netG!r}; choose one of {', '.join(GENERATORS)}")
        if netD not in DISCRIMINATORS:
            raise ConfigError(f"cyclegan: unknown netD {netD!r}; choose one of {', '.join(DISCRIMINATORS)}")
        dirs = tuple(inference_directions)
        if not dirs or any(d not in DIRECTIONS for d in dirs):
            raise ConfigError(f"cyclegan: inference_directions must be a subset of {DIRECTIONS}, got {dirs}")
        self.directions = dirs
        self.inference_modules = tuple({"AtoB": "G_A", "BtoA": "G_B"}[d] for d in dirs)
        gen = dict(ngf=ngf, n_blocks=GENERATORS[netG], norm=norm, dropout=0.5 if dropout else 0.0)
        self.G_A = ResnetGenerator(in_channels, out_channels, **gen)
        self.G_B = ResnetGenerator(out_channels, in_channels, **gen)

        def disc(ch):
            if netD == "pixel":
                return PixelDiscriminator(ch, ndf, norm)
            return NLayerDiscriminator(ch, ndf, 3 if netD == "basic" else n_layers_D, norm)

        self.D_A = disc(out_channels)
        self.D_B = disc(in_channels)
        for net in (self.G_A, self.G_B, self.D_A, self.D_B):
            init_weights(net, init_type, init_gain)
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_A, self.lambda_B, self.lambda_idt = lambda_A, lambda_B, lambda_identity
        if lambda_identity > 0 and in_channels != out_channels:
            raise ConfigError("cyclegan: lambda_identity > 0 needs in_channels == out_channels")
        self.pool_fake_A = ImagePool(pool_size, seed=1)
        self.pool_fake_B = ImagePool(pool_size, seed=2)

    @classmethod
    def training_sides(cls, config):
        m, d = cls.size_multiple, patchgan_min_side(config.get("netD"), config.get("n_layers_D"))
        if d > 2 * m:
            return TrainingSides(d, m, None, f"its PatchGAN discriminator (netD {config.get('netD')})")
        return TrainingSides(2 * m, m, None, "the ResNet generator's two down-samplings")

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        return {"G": [*self.G_A.parameters(), *self.G_B.parameters()],
                "D": [*self.D_A.parameters(), *self.D_B.parameters()]}

    def training_step(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        discs = (self.D_A, self.D_B)
        requires_grad(discs, False)  # D gets no gradient from the generator's loss
        try:
            # A -> B -> A: adversarial loss of G_A and the A cycle
            fake_B = self.G_A(real_A)
            rec_A = self.G_B(fake_B)
            yield Phase("G", {
                "G_A": self.gan_loss(self.D_A(fake_B), True, for_discriminator=False),
                "cycle_A": F.l1_loss(rec_A, real_A) * self.lambda_A,
            }, step=False)
            fake_B = fake_B.detach()
            del rec_A
            # B -> A -> B
            fake_A = self.G_B(real_B)
            rec_B = self.G_A(fake_A)
            last = self.lambda_idt <= 0
            yield Phase("G", {
                "G_B": self.gan_loss(self.D_B(fake_A), True, for_discriminator=False),
                "cycle_B": F.l1_loss(rec_B, real_B) * self.lambda_B,
            }, step=last)
            fake_A = fake_A.detach()
            del rec_B
            if not last:  # identity: G_A(B) ~ B, G_B(A) ~ A (Sec. 5.2)
                yield Phase("G", {
                    "idt_A": F.l1_loss(self.G_A(real_B), real_B) * self.lambda_B * self.lambda_idt,
                    "idt_B": F.l1_loss(self.G_B(real_A), real_A) * self.lambda_A * self.lambda_idt,
                })
        finally:
            requires_grad(discs, True)
        # discriminators on real images and on generated ones drawn from the history pools
        pooled_B = self.pool_fake_B.query(fake_B)
        yield Phase("D", {"D_A": 0.5 * (self.gan_loss(self.D_A(real_B), True)
                                        + self.gan_loss(self.D_A(pooled_B), False))}, step=False)
        pooled_A = self.pool_fake_A.query(fake_A)
        yield Phase("D", {"D_B": 0.5 * (self.gan_loss(self.D_B(real_A), True)
                                        + self.gan_loss(self.D_B(pooled_A), False))})

    def training_extra_state(self):
        return {"pool_fake_A": self.pool_fake_A.state_dict(),
                "pool_fake_B": self.pool_fake_B.state_dict()}

    def load_training_extra_state(self, state):
        device = next(self.parameters()).device
        self.pool_fake_A.load_state_dict(state["pool_fake_A"], device)
        self.pool_fake_B.load_state_dict(state["pool_fake_B"], device)

    # ---- inference ---------------------------------------------------------------------
    def translate(self, x, direction=None):
        direction = self.check_direction(direction)
        return (self.G_A if direction == "AtoB" else self.G_B)(x)

    @torch.no_grad()
    def visuals(self, batch):
        out = {}
        if "A" in batch:
            a = batch["A"]
            out |= {"real_A": a, "fake_B": self.G_A(a)}
            out["rec_A"] = self.G_B(out["fake_B"])
        if "B" in batch:
            b = batch["B"]
            out |= {"real_B": b, "fake_A": self.G_B(b)}
            out["rec_B"] = self.G_A(out["fake_A"])
        return out


# ---- the authors' checkpoints -----------------------------------------------------------
IMPORT_NORMS = ("instance", "instance_affine", "batch", "none")
_PORT_BLOCK = re.compile(r"^(model\.\d+\.)block\.")


def authors_layout(sd: dict) -> dict:
    """Keys in the authors' layout. Ports that keep their ``model.N`` indices but call each
    residual block's Sequential ``block`` (vintagify's ``ResnetGenerator``: same layers, same
    indices 0-6 inside, no dropout) get it renamed to ``conv_block``."""
    if any(".conv_block." in k for k in sd):
        return sd
    return {_PORT_BLOCK.sub(r"\1conv_block.", k): v for k, v in sd.items()}


def generator_norm(sd: dict) -> str:
    """The norm of a ResnetGenerator state dict, from its first norm layer (``model.2``) and the
    conv before it (``model.1``). Only batch norm and affine instance norm have weights there;
    they are told apart by batch norm's running statistics (always saved, with
    ``num_batches_tracked`` since PyTorch 0.4.1) and by the conv bias, which the authors' code
    (and its ports) give the convs before instance norms only. PyTorch < 0.4 also saved running
    statistics for instance norms; the conv bias decides those."""
    conv_bias = "model.1.bias" in sd
    if "model.2.weight" not in sd:
        return "instance" if conv_bias else "none"
    if "model.2.num_batches_tracked" in sd:
        return "batch"
    if "model.2.running_mean" not in sd:
        return "instance_affine"
    return "instance_affine" if conv_bias else "batch"


def resnet_generator_options(sd: dict, path, norm: str | None = None) -> dict:
    """Infer ResnetGenerator options (ngf, blocks, norm, dropout, channels) from its keys
    (``sd`` in the authors' layout: see :func:`authors_layout`); ``norm`` overrides the norm
    read from the keys."""
    if "model.1.weight" not in sd or sd["model.1.weight"].ndim != 4:
        raise CheckpointError(f"{path} is not a CycleGAN ResNet generator (no model.1.weight conv)")
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    if not blocks:
        raise CheckpointError(f"{path} has no residual blocks: is it a U-Net (pix2pix) generator?")
    last_conv = max(int(k.split(".")[1]) for k in sd if k.endswith(".weight") and sd[k].ndim == 4)
    # with dropout, conv_block.4 is the Dropout and the second conv moves from 5 to 6
    sixth = sd.get(f"model.{blocks[0]}.conv_block.6.weight")
    return {
        "in_channels": sd["model.1.weight"].shape[1],
        "out_channels": sd[f"model.{last_conv}.weight"].shape[0],
        "ngf": sd["model.1.weight"].shape[0],
        "netG": {9: "resnet_9blocks", 6: "resnet_6blocks"}.get(len(blocks), f"{len(blocks)} blocks"),
        "norm": norm or generator_norm(sd),
        "dropout": sixth is not None and sixth.ndim == 4,
    }


@register_importer("cyclegan", options={"reverse": "the B->A generator (latest_net_G_B.pth)",
                                "norm": "the generators' norm (instance, instance_affine, batch, none) where the keys "
                                        "should not decide it"})
def import_cyclegan(path, reverse=None, norm=None):
    """``path``: the A->B generator (``latest_net_G_A.pth``, a released ``horse2zebra.pth``, or
    a port in the same layout such as vintagify's ``G_A2B_epoch33.pth``); ``reverse``:
    optionally the B->A one (``latest_net_G_B.pth``); ``norm``: the generators' norm
    (``instance``, ``instance_affine``, ``batch``, ``none``) when the keys should not decide it."""
    if norm is not None and norm not in IMPORT_NORMS:
        raise ConfigError(f"import cyclegan: norm must be one of {', '.join(IMPORT_NORMS)}, got {norm!r}")
    sd_a = authors_layout(read_state_dict(path))
    opts = resnet_generator_options(sd_a, path, norm)
    if opts["netG"] not in GENERATORS:
        raise CheckpointError(f"{path}: a ResNet generator with {opts['netG']}; expected 6 or 9")
    dirs = ("AtoB",)
    sd_b = None
    if reverse is not None:
        sd_b = authors_layout(read_state_dict(reverse))
        other = resnet_generator_options(sd_b, reverse, norm)
        if (other["ngf"], other["netG"]) != (opts["ngf"], opts["netG"]):
            raise CheckpointError(f"{path} and {reverse} are generators of different shapes")
        if other["norm"] != opts["norm"]:
            raise CheckpointError(f"{path} has {opts['norm']} norm and {reverse} {other['norm']} norm; "
                                  "the two generators must share one")
        dirs = DIRECTIONS
    model = CycleGAN(**opts, lambda_identity=0.0 if opts["in_channels"] != opts["out_channels"] else 0.5,
                     inference_directions=dirs)
    for net, sd, src in ((model.G_A, sd_a, path), (model.G_B, sd_b, reverse)):
        if sd is not None:  # old files' InstanceNorm running stats are dropped there
            load_state_dict_strict(net, sd, src, f"a CycleGAN generator with {opts}")
    return model
