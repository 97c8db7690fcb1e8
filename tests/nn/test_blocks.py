import pytest
import torch
from torch import nn

from styleforge.errors import ConfigError
from styleforge.losses.adversarial import GANLoss
from styleforge.nn.blocks import ResnetBlock, conv_block, down_layers, up_layers
from styleforge.nn.discriminators import MultiScaleDiscriminator, NLayerDiscriminator, PixelDiscriminator
from styleforge.nn.generators import ResnetGenerator
from styleforge.nn.init import init_weights
from styleforge.nn.norms import LayerNorm2d, norm_layer, spectral_norm


def test_conv_block_reflect_keeps_size_and_zero_pad_differs():
    x = torch.randn(1, 3, 17, 23)
    for pad in ("reflect", "replicate", "zero"):
        assert conv_block(3, 8, 7, pad=pad)(x).shape == (1, 8, 17, 23)
    refl = conv_block(3, 4, 3, pad="reflect", norm=None, act="none")
    zero = conv_block(3, 4, 3, pad="zero", norm=None, act="none")
    zero[0].load_state_dict(refl[1].state_dict())
    # same weights, different borders: interiors agree, borders do not
    a, b = refl(x), zero(x)
    assert torch.allclose(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], atol=1e-6)
    assert not torch.allclose(a[..., 0, :], b[..., 0, :])


def test_down_up_sampling_shapes():
    x = torch.randn(2, 8, 16, 12)
    d = nn.Sequential(*down_layers(8, 16))(x)
    assert d.shape == (2, 16, 8, 6)
    assert nn.Sequential(*up_layers(16, 8))(d).shape == (2, 8, 16, 12)


def test_resnet_block_is_residual():
    blk = ResnetBlock(8)
    for p in blk.parameters():
        nn.init.zeros_(p)
    x = torch.randn(1, 8, 10, 10)
    # with F == 0 the block is the identity
    assert torch.equal(blk(x), x)


def test_norms_normalise_what_they_should():
    x = torch.randn(4, 6, 9, 9) * 3 + 5
    inst = norm_layer("instance", 6)(x)
    assert torch.allclose(inst.mean((2, 3)), torch.zeros(4, 6), atol=1e-5)
    affine = norm_layer("instance_affine", 6)  # the same, then a learned per-channel scale and shift
    assert set(affine.state_dict()) == {"weight", "bias"}
    with torch.no_grad():
        affine.weight.copy_(torch.arange(1.0, 7.0))
        affine.bias.copy_(-torch.arange(6.0))
    assert torch.allclose(affine(x), inst * affine.weight[:, None, None] + affine.bias[:, None, None], atol=1e-5)
    ln = LayerNorm2d(6)(x)
    assert torch.allclose(ln.mean((1, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(ln.std((1, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)
    bn = norm_layer("batch", 6).train()(x)
    assert torch.allclose(bn.mean((0, 2, 3)), torch.zeros(6), atol=1e-5)
    assert isinstance(norm_layer("none", 6), nn.Identity)
    with pytest.raises(ConfigError, match="unknown norm 'group'"):
        norm_layer("group", 6)


def test_spectral_norm_bounds_largest_singular_value():
    torch.manual_seed(0)
    lin = spectral_norm(nn.Linear(20, 20))
    with torch.no_grad():
        lin.weight_orig.mul_(10)
    for _ in range(30):  # power iterations run on forward in train mode
        lin(torch.randn(1, 20))
    sigma = torch.linalg.matrix_norm(lin.weight.detach(), ord=2)
    assert abs(float(sigma) - 1.0) < 0.05
    assert {"weight_orig", "weight_u", "weight_v"} <= set(lin.state_dict())


def test_patchgan_receptive_field_and_output_grid():
    d = NLayerDiscriminator(3, 8, n_layers=3)
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    # 70x70 receptive field (without instance norm, which mixes the whole image): a change in
    # one corner pixel reaches the near patch, not the far one
    local = NLayerDiscriminator(3, 8, n_layers=3, norm="none")
    x = torch.randn(1, 3, 128, 128)
    y0 = local(x)
    x2 = x.clone()
    x2[..., 0, 0] += 10
    diff = (local(x2) - y0).abs()[0, 0]
    assert diff[0, 0] > 0 and diff[-1, -1] == 0
    assert PixelDiscriminator(3, 8)(x).shape == (1, 1, 128, 128)
    ms = MultiScaleDiscriminator(3, 8, num_scales=3)(x)
    assert [o.shape[-1] for o in ms] == [14, 6, 2]


def test_resnet_generator_shapes_and_range():
    g = ResnetGenerator(3, 1, ngf=8, n_blocks=2)
    y = g(torch.randn(2, 3, 32, 40))
    assert y.shape == (2, 1, 32, 40) and y.abs().max() <= 1


def test_gan_losses_match_definitions():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    assert torch.isclose(GANLoss("lsgan")(pred, True), ((pred - 1) ** 2).mean())
    assert torch.isclose(GANLoss("lsgan")(pred, False), (pred ** 2).mean())
    bce = -torch.log(torch.sigmoid(pred)).mean()
    assert torch.isclose(GANLoss("vanilla")(pred, True), bce)
    assert torch.isclose(GANLoss("hinge")(pred, True), torch.relu(1 - pred).mean())
    assert torch.isclose(GANLoss("hinge")(pred, False), torch.relu(1 + pred).mean())
    assert torch.isclose(GANLoss("hinge")(pred, True, for_discriminator=False), -pred.mean())
    # lists (multi-scale) sum
    assert torch.isclose(GANLoss("lsgan")([pred, pred], True), 2 * ((pred - 1) ** 2).mean())
    with pytest.raises(ConfigError):
        GANLoss("wasserstein-ish")


@pytest.mark.parametrize("kind", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_schemes(kind):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.Linear(64, 64))
    init_weights(net, kind, 0.02)
    w = net[0].weight.detach()
    assert torch.all(net[0].bias == 0) and torch.all(net[2].bias == 0)
    if kind == "normal":
        assert abs(float(w.std()) - 0.02) < 0.002
        assert abs(float(net[1].weight.detach().mean()) - 1) < 0.01
    if kind == "kaiming":
        assert abs(float(w.std()) - (2 / (64 * 9)) ** 0.5) < 0.005
    if kind == "orthogonal":
        m = net[2].weight.detach()
        assert torch.allclose(m @ m.T, 0.02 ** 2 * torch.eye(64), atol=1e-6)
    with pytest.raises(ConfigError):
        init_weights(net, "uniformish")
