"""GAN objectives by name: ``vanilla`` (BCE on logits, Goodfellow et al. 2014), ``lsgan`` (Mao et
al. 2017, targets 1/0), ``hinge`` (Lim & Ye 2017; Miyato et al. 2018).

``loss(pred, real)`` scores discriminator output ``pred`` against the real (True) or fake (False)
label. For the generator's loss call ``loss(D(fake), True)``; for ``hinge`` pass
``for_discriminator=False`` there, which gives ``-mean(D(fake))``. ``pred`` may be a list of
outputs (multi-scale discriminators): their losses are summed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

GAN_MODES = ("vanilla", "lsgan", "hinge")


class GANLoss(nn.Module):
    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in GAN_MODES:
            raise ConfigError(f"unknown gan_mode {mode!r}; choose one of {', '.join(GAN_MODES)}")
        self.mode = mode
        self.real_label = real_label
        self.fake_label = fake_label

    def forward(self, pred, real: bool, for_discriminator: bool = True) -> torch.Tensor:
        if isinstance(pred, (list, tuple)):
            return sum(self.forward(p, real, for_discriminator) for p in pred)
        if self.mode == "hinge":
            if not for_discriminator:
                return -pred.mean()
            return F.relu(1.0 - pred).mean() if real else F.relu(1.0 + pred).mean()
        target = torch.full_like(pred, self.real_label if real else self.fake_label)
        if self.mode == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)
