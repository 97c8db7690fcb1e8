"""A small test-only method with a frozen encoder and an EMA generator, registered for the
duration of a test (the shared registry tests never see it)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from styleforge import config as C
from styleforge import registry
from styleforge.methods.base import Method, Phase


class FrozenEMAToy(Method):
    """enc (frozen, needed at inference) -> G (trained) ; G_ema follows G ; D judges B images.

    The encoder is rebuilt by the constructor from a fixed seed (as a real method would from its
    weights file), so a training checkpoint need not hold it."""

    data_kind = "unpaired"
    frozen_modules = ("enc",)
    ema_modules = {"G_ema": "G"}
    inference_modules = ("enc", "G_ema")

    def __init__(self, width=4, enc_seed=3):
        super().__init__()
        self.enc = nn.Conv2d(3, width, 3, padding=1)
        g = torch.Generator().manual_seed(enc_seed)
        with torch.no_grad():
            for p in self.enc.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.G = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                               nn.Conv2d(width, 3, 1))
        self.G_ema = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                   nn.Conv2d(width, 3, 1))
        self.G_ema.load_state_dict(self.G.state_dict())
        self.D = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, 1, 4, 2, 1))

    def optimizer_groups(self):
        return {"G": list(self.G.parameters()), "D": list(self.D.parameters())}

    def training_step(self, batch):
        a, b = batch["A"], batch["B"]
        fake = torch.tanh(self.G(self.enc(a)))
        self.D.requires_grad_(False)
        try:
            score = self.D(fake)
            yield Phase("G", {"G_gan": F.mse_loss(score, torch.ones_like(score)), "G_l1": F.l1_loss(fake, a)})
        finally:
            self.D.requires_grad_(True)
        fake = fake.detach()
        real, fake = self.D(b), self.D(fake)
        yield Phase("D", {"D": 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))})

    def translate(self, x, direction=None):
        self.check_direction(direction)
        return torch.tanh(self.G_ema(self.enc(x)))

    @torch.no_grad()
    def visuals(self, batch):
        return {"A": batch["A"], "fake": self.translate(batch["A"])}


@pytest.fixture
def toy_method():
    """Register FrozenEMAToy as ``toy_frozen_ema`` for one test."""
    registry._load_all()
    registry.register_method("toy_frozen_ema")(FrozenEMAToy)
    yield FrozenEMAToy
    registry.METHODS.pop("toy_frozen_ema", None)


@pytest.fixture
def toy_cfg(toy_method, h2z):
    """``toy_cfg(**overrides)``: a resolved config of the toy on the bundled horse2zebra, 32 px."""

    def make(**over):
        items = ["method=toy_frozen_ema", "data.load_size=32", "data.crop_size=32", "data.num_workers=0",
                 "data.num_samples=2", "data.max_size=8", "train.steps=6", "train.steps_decay=0",
                 "train.log_every=1", "train.sample_every=0", "train.checkpoint_every=0",
                 "train.tensorboard=false", "train.progress=false"]
        items += [f"{k}={v}" for k, v in over.items()]
        cfg = C.resolve(overrides=items)
        cfg["data"]["root"] = str(h2z)
        return cfg

    return make
