import torch
import torch.nn.functional as F

from styleforge.nn.discriminators import MsImageDiscriminator
from styleforge.nn.munit_blocks import Decoder, ResBlocks, drop_norm_buffers
from styleforge.nn.norms import AdaIN, LayerNormStd


def test_layer_norm_and_adain_follow_the_authors_formulas():
    x = torch.randn(3, 5, 4, 6, dtype=torch.float64)
    ln = LayerNormStd(5).double()
    flat = x.reshape(3, -1)
    mean, std = flat.mean(1), flat.std(1)  # unbiased std, eps on the std
    want = (x - mean.view(3, 1, 1, 1)) / (std.view(3, 1, 1, 1) + 1e-5)
    want = want * ln.gamma.view(1, 5, 1, 1) + ln.beta.view(1, 5, 1, 1)
    assert torch.allclose(ln(x), want, atol=1e-12)
    assert torch.allclose(ln(x[:1]), want[:1], atol=1e-12)  # their N = 1 branch: same values
    w, b = torch.rand(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    m = x.mean(dim=(2, 3), keepdim=True)
    v = x.var(dim=(2, 3), keepdim=True, unbiased=False)  # biased, eps inside the sqrt
    want = (x - m) / torch.sqrt(v + 1e-5) * w[:, :, None, None] + b[:, :, None, None]
    assert torch.allclose(AdaIN(5)(x, w, b), want, atol=1e-12)


def test_adain_residual_blocks_read_bias_then_weight_per_layer():
    """Per AdaIN layer, in module order: C biases (their "mean") then C weights (their "std")."""
    torch.manual_seed(0)
    blocks = ResBlocks(2, 3, norm="adain", pad="reflect").double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    params = torch.randn(2, 2 * 2 * 2 * 3, dtype=torch.float64)
    y, p = x, params
    for block in blocks.model:
        h = y
        for j, conv in enumerate(block.model):
            h = conv.conv(conv.pad(h))
            h = F.instance_norm(h) * p[:, 3:6, None, None] + p[:, :3, None, None]
            h = F.relu(h) if j == 0 else h
            p = p[:, 6:]
        y = y + h
    assert torch.allclose(blocks(x, params), y, atol=1e-12)
    dec = Decoder(2, 2, 8, 3, res_norm="adain")
    assert dec.num_adain_params() == 2 * 2 * 2 * 8


def test_multiscale_discriminator_pools_between_scales():
    torch.manual_seed(0)
    d = MsImageDiscriminator(3, dim=4, n_layer=2, num_scales=3)
    x = torch.randn(1, 3, 64, 64)
    outs = d(x)
    assert [o.shape[-1] for o in outs] == [16, 8, 4]  # two stride-2 convs per scale
    pooled = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.equal(outs[1], d.cnns[1](pooled))
    assert sorted(k for k in d.state_dict() if k.startswith("cnns.0."))[:2] == ["cnns.0.0.conv.bias", "cnns.0.0.conv.weight"]


def test_drop_norm_buffers_keeps_parameters_only():
    sd = {"a.norm.running_mean": torch.zeros(1), "a.norm.running_var": torch.ones(1),
          "a.conv.weight": torch.zeros(1), "b.norm.gamma": torch.ones(1)}
    assert set(drop_norm_buffers(sd)) == {"a.conv.weight", "b.norm.gamma"}
