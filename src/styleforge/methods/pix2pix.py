"""Pix2Pix: Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017; laid out as the authors' PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix,
``pix2pix_model.py``, ``networks.py``), whose generator checkpoints load unchanged.

Paper symbol -> code name:
  x (input), y (target)            batch["A"], batch["B"] (the dataset's ``data.direction`` picks
                                   which half of an AB image is the input; ``direction`` records it)
  z (noise, Sec. 2.1)              dropout 0.5 in the decoder blocks just above the bottleneck,
                                   also at test time (``test_dropout``; ``translate(dropout=...)``)
  G (Sec. 2.1.1, U-Net)            G: UnetGenerator, ``netG="unet_256"`` = 8 down-samplings
  D (Sec. 2.1.2, 70×70 PatchGAN)   D: NLayerDiscriminator(n_layers=3) on concat(x, y), 6 channels
  L_cGAN (Eq. 1)                   gan_mode="vanilla" (BCE on logits); D's loss halved (Sec. 3.3)
  lambda L_L1 (Eq. 3, 4)           lambda_L1 = 100
  batch norm (Sec. 6.1)            norm="batch"; at test time with each test image's own
                                   statistics (Sec. 3.3; ``test_batch_stats``)
Optimiser (Sec. 3.3): Adam, lr 2e-4, beta1 0.5; 100 epochs + 100 of linear decay (the authors'
defaults, see the ``pix2pix-facades`` preset); weights N(0, 0.02).

One training step, in the authors' order (``optimize_parameters``): G(x) once; D is updated on
(x, y) and (x, G(x) detached); then G is updated against the updated, frozen D on the same G(x)
(adversarial + lambda_L1 · L1).
"""
from __future__ import annotations

import contextlib
import math
import re

import torch
import torch.nn.functional as F

from ..checkpoint import load_state_dict_strict, read_state_dict
from ..errors import CheckpointError, ConfigError
from ..losses.adversarial import GANLoss
from ..nn.discriminators import NLayerDiscriminator, PixelDiscriminator, patchgan_min_side
from ..nn.generators import UnetGenerator
from ..nn.init import init_weights
from ..nn.norms import INSTANCE_NORMS, NORMS
from ..nn.utils import requires_grad
from ..registry import register_importer, register_method
from .base import InferenceOption, Method, Phase, TrainingSides

DIRECTIONS = ("AtoB", "BtoA")
DISCRIMINATORS = ("basic", "n_layers", "pixel")


def unet_downs(netG: str) -> int:
    """``unet_256`` -> 8, ``unet_128`` -> 7; any ``unet_<2**k>`` with k >= 5 (tiny presets)."""
    m = re.fullmatch(r"unet_(\d+)", str(netG))
    size = int(m.group(1)) if m else 0
    if size < 32 or size & (size - 1):
        raise ConfigError(f"pix2pix: netG must be unet_<size> with size a power of 2 >= 32 "
                          f"(unet_256, unet_128), got {netG!r}")
    return int(math.log2(size))


@register_method("pix2pix")
class Pix2Pix(Method):
    data_kind = "paired_ab"
    fit_terms = ("G_L1",)
    inference_modules = ("G",)
    # the model records data.direction (config.py copies it): the mapping it learned
    model_follows_data = ("direction",)
    # the U-Net pads with zeros (no reflection), so an image of any size works once the
    # pipeline has padded it to size_multiple
    min_side = 1

    @classmethod
    def training_sides(cls, config):
        # the U-Net joins each down-sampling's map with an up-sampling's: crops are multiples
        m = 2 ** unet_downs(config.get("netG"))
        d = patchgan_min_side(config.get("netD"), config.get("n_layers_D"))
        if d > m:
            return TrainingSides(d, m, None, f"its PatchGAN discriminator (netD {config.get('netD')})")
        return TrainingSides(m, m, None, f"the U-Net's down-samplings (netG {config.get('netG')})")

    def __init__(self, in_channels=3, out_channels=3, ngf=64, ndf=64, netG="unet_256", netD="basic",
                 n_layers_D=3, norm="batch", dropout=True, gan_mode="vanilla", lambda_L1=100.0,
                 init_type="normal", init_gain=0.02, direction="AtoB", test_dropout=True,
                 test_batch_stats=True, channels_last=False):
        super().__init__()
        num_downs = unet_downs(netG)
        if netD not in DISCRIMINATORS:
            raise ConfigError(f"pix2pix: unknown netD {netD!r}; choose one of {', '.join(DISCRIMINATORS)}")
        if norm not in NORMS:
            raise ConfigError(f"pix2pix: unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
        if channels_last and norm in INSTANCE_NORMS:
            raise ConfigError("pix2pix: channels_last needs norm batch, layer or none (instance norm's "
                              "input gradient is wrong for channels_last tensors in torch 2.13 on CPU)")
        if direction not in DIRECTIONS:
            raise ConfigError(f"pix2pix: direction must be AtoB or BtoA, got {direction!r}")
        if not isinstance(lambda_L1, (int, float)) or lambda_L1 < 0:
            raise ConfigError(f"pix2pix: lambda_L1 must be a number >= 0, got {lambda_L1!r}")
        self.directions = (direction,)
        self.size_multiple = 2 ** num_downs
        self.G = UnetGenerator(in_channels, out_channels, num_downs, ngf, norm, 0.5 if dropout else 0.0)
        d_in = in_channels + out_channels  # conditional: D sees the input beside the output
        self.D = (PixelDiscriminator(d_in, ndf, norm) if netD == "pixel"
                  else NLayerDiscriminator(d_in, ndf, 3 if netD == "basic" else n_layers_D, norm))
        for net in (self.G, self.D):
            init_weights(net, init_type, init_gain)
        # NHWC activations and weights (docs/benchmarks.md); batch norm's gradients are correct
        # in that layout (instance norm's are not, on CPU with torch 2.13: never for CycleGAN)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.G.to(memory_format=self.memory_format)
            self.D.to(memory_format=self.memory_format)
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_L1 = float(lambda_L1)
        self.test_dropout, self.test_batch_stats = bool(test_dropout), bool(test_batch_stats)
        self.G.set_test_mode(self.test_dropout, self.test_batch_stats)

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        return {"G": list(self.G.parameters()), "D": list(self.D.parameters())}

    def training_step(self, batch):
        real_A = batch["A"].contiguous(memory_format=self.memory_format)
        real_B = batch["B"].contiguous(memory_format=self.memory_format)
        fake_B = self.G(real_A)
        # D on (x, y) and (x, G(x)) with G(x) from before this step's G update
        yield Phase("D", {
            "D_fake": 0.5 * self.gan_loss(self.D(torch.cat([real_A, fake_B.detach()], 1)), False),
            "D_real": 0.5 * self.gan_loss(self.D(torch.cat([real_A, real_B], 1)), True),
        })
        requires_grad([self.D], False)  # G's loss gives D no gradient
        try:
            losses = {"G_GAN": self.gan_loss(self.D(torch.cat([real_A, fake_B], 1)), True,
                                             for_discriminator=False)}
            if self.lambda_L1 > 0:
                losses["G_L1"] = F.l1_loss(fake_B, real_B) * self.lambda_L1
            yield Phase("G", losses)
        finally:
            requires_grad([self.D], True)

    # ---- inference ---------------------------------------------------------------------
    @contextlib.contextmanager
    def test_mode(self, dropout: bool | None = None, batch_stats: bool | None = None):
        """Temporarily override the configured test-time dropout / batch statistics."""
        d = self.test_dropout if dropout is None else bool(dropout)
        s = self.test_batch_stats if batch_stats is None else bool(batch_stats)
        self.G.set_test_mode(d, s)
        try:
            yield
        finally:
            self.G.set_test_mode(self.test_dropout, self.test_batch_stats)

    def translate(self, x, direction=None, dropout=None, batch_stats=None, seed=None, noise=None):
        """``x``: N×C×H×W in [-1, 1], H and W multiples of ``size_multiple``. ``dropout`` and
        ``batch_stats`` override ``test_dropout`` / ``test_batch_stats`` for this call; ``seed``
        makes the dropout noise repeatable: each image draws its masks from its own CPU
        generator seeded with ``seed``, so its output is the same in any batch, at any place
        in it and on any device (the global RNG is not used). ``seed`` None: fresh noise.
        ``noise``: those masks drawn beforehand (:meth:`eager_inputs`, which a compiled
        translate runs first: the graph takes them as inputs); given, ``seed`` is not used."""
        self.check_direction(direction)
        if noise is None and seed is not None:
            noise = self._dropout_masks(x, dropout, seed)
        with self.test_mode(dropout, batch_stats):
            return self.G(x.contiguous(memory_format=self.memory_format), noise).contiguous()

    def eager_inputs(self, x, **kw):
        """``seed`` -> ``noise``: the seeded dropout masks, drawn here from CPU generators,
        which torch.compile cannot trace (a graph break, and a recompile for each seed)."""
        seed = kw.pop("seed", None)
        if seed is not None and kw.get("noise") is None:
            kw["noise"] = self._dropout_masks(x, kw.get("dropout"), seed)
        return kw

    def _dropout_masks(self, x, dropout, seed):
        on = self.test_dropout if dropout is None else bool(dropout)
        return self.G.dropout_masks(x, seed) if on and not self.G.training else None

    def inference_options(self):
        return [
            InferenceOption("dropout", "bool", self.test_dropout,
                            help="dropout noise at test time (the paper's z); off: deterministic"),
            InferenceOption("batch_stats", "bool", self.test_batch_stats,
                            help="batch norm with the image's own statistics (the paper) or the "
                            "training running averages"),
            InferenceOption("seed", "seed", None, 0, 2 ** 31 - 1, used_when=("dropout", True),
                            help="repeatable dropout noise (each image its own: the same in any batch)"),
        ]

    def export_module(self, direction=None):
        """For export: G without the dropout noise (a file computes a function of its input);
        batch norm as configured (``test_batch_stats``)."""
        self.check_direction(direction)
        return _ExportG(self.G, self.test_dropout, self.test_batch_stats)

    @torch.no_grad()
    def visuals(self, batch):
        out = {"real_A": batch["A"], "fake_B": self.translate(batch["A"], dropout=False)}
        if "B" in batch:
            out["real_B"] = batch["B"]
        return out


class _ExportG(torch.nn.Module):
    def __init__(self, G: UnetGenerator, dropout: bool, batch_stats: bool):
        super().__init__()
        self.G, self.dropout, self.batch_stats = G, dropout, batch_stats

    def forward(self, x):
        self.G.set_test_mode(False, self.batch_stats)  # Python flags: read while tracing
        try:
            return self.G(x)
        finally:
            self.G.set_test_mode(self.dropout, self.batch_stats)


# ---- the authors' checkpoints -----------------------------------------------------------
def unet_options(sd: dict, path) -> dict:
    """Infer UnetGenerator options (depth, ngf, norm, channels) from its nested keys."""
    if "model.model.0.weight" not in sd:
        hint = " (a ResNet generator: use 'styleforge import cyclegan')" if "model.1.weight" in sd else ""
        raise CheckpointError(f"{path} is not a pix2pix U-Net generator: no model.model.0.weight{hint}")
    # down convs sit at model.model(.1 .model.3 ...).model.1.weight; the innermost is the deepest
    depths = [len(m.group(1)) // len(".model.3") for k in sd
              if (m := re.fullmatch(r"model\.model\.1((?:\.model\.3)*)\.model\.1\.weight", k))]
    if not depths:
        raise CheckpointError(f"{path}: no U-Net down-sampling convs (model.model.1.model.1.weight ...)")
    depth = max(depths) + 2
    # outermost: down conv model.model.0 (in_ch -> ngf), up conv model.model.3 (2ngf -> out_ch)
    w0, w_up = sd["model.model.0.weight"], sd.get("model.model.3.weight")
    if w_up is None:
        raise CheckpointError(f"{path}: no outermost up-sampling conv (model.model.3.weight)")
    norm = ("batch" if "model.model.1.model.2.running_mean" in sd
            else "instance" if "model.model.1.model.1.bias" in sd else "none")
    return {"in_channels": w0.shape[1], "out_channels": w_up.shape[1], "ngf": w0.shape[0],
            "netG": f"unet_{2 ** depth}", "norm": norm}


@register_importer("pix2pix", options={"direction": "the --direction it was trained with, AtoB or BtoA "
                                       "(facades_label2photo: BtoA)"})
def import_pix2pix(path, direction="AtoB"):
    """``path``: the authors' generator (``latest_net_G.pth``, or a released
    ``facades_label2photo.pth``). ``direction`` only names the mapping (the released facades
    model was trained with ``--direction BtoA``: label map -> photo)."""
    sd = read_state_dict(path)
    opts = unet_options(sd, path)
    model = Pix2Pix(**opts, direction=direction)
    # files from PyTorch < 0.4.1 have no num_batches_tracked counters: zeros there
    load_state_dict_strict(model.G, sd, path, f"a pix2pix {opts['netG']} generator with {opts}")
    return model
