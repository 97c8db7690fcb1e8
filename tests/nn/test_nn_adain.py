"""AdaIN statistics on real images' VGG-like features (random weights, bundled photos)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.nn.adain import adain, adain_regions, coral, masked_mean_std, mean_std
from styleforge.nn.vgg import VGGEncoder

DATA = Path(__file__).resolve().parents[2] / "data" / "style_transfer"


def load(path, size=48):
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.fixture(scope="module")
def feats():
    torch.manual_seed(0)
    enc = VGGEncoder("vgg19", "relu2_1", fmt="adain")
    for m in enc.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    content = load(DATA / "content" / "chicago.jpg")
    style = load(DATA / "style" / "starry_night.jpg", 40)
    with torch.no_grad():
        return enc(content)["relu2_1"].double(), enc(style)["relu2_1"].double()


def port_mean_std(feat, eps=1e-5):
    """pytorch-AdaIN's calc_mean_std, from its definition."""
    n, c = feat.shape[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def test_adain_output_has_the_styles_channel_mean_and_std(feats):
    c, s = feats
    live = c.flatten(2).var(2)[0] > 0  # channels the ReLU did not zero everywhere
    assert live.sum() > 32
    m_s, s_s = s.flatten(2).mean(2), s.flatten(2).std(2)
    out = adain(c, s, eps=0.0)
    torch.testing.assert_close(out.flatten(2).mean(2)[:, live], m_s[:, live], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.flatten(2).std(2)[:, live], s_s[:, live], rtol=1e-9, atol=1e-9)
    # with the port's eps: sigma(out) = sqrt(var(s) + eps) * std(c) / sqrt(var(c) + eps)
    out = adain(c, s)
    var_c, var_s = c.flatten(2).var(2), s.flatten(2).var(2)
    torch.testing.assert_close(out.flatten(2).mean(2), m_s, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.flatten(2).std(2), ((var_s + 1e-5) * var_c / (var_c + 1e-5)).sqrt())
    assert not torch.allclose(c.flatten(2).std(2), s_s, rtol=0.1)  # a real change of statistics


def test_adain_equals_pytorch_adain_formula(feats):
    c, s = feats
    cm, cs = port_mean_std(c)
    sm, ss = port_mean_std(s)
    ref = (c - cm.expand(c.shape)) / cs.expand(c.shape) * ss.expand(c.shape) + sm.expand(c.shape)
    torch.testing.assert_close(adain(c, s), ref, rtol=1e-10, atol=1e-10)
    m, sd = mean_std(c)
    torch.testing.assert_close(m, cm)
    torch.testing.assert_close(sd, cs)


def test_masked_statistics_are_those_of_the_region(feats):
    c, s = feats
    mask = torch.zeros(1, 1, *c.shape[-2:], dtype=c.dtype)
    mask[..., : c.shape[-2] // 3, :] = 1
    m, sd = masked_mean_std(c, mask)
    region = c[..., : c.shape[-2] // 3, :].flatten(2)
    torch.testing.assert_close(m.flatten(1), region.mean(2))
    torch.testing.assert_close(sd.flatten(1), (region.var(2) + 1e-5).sqrt())


def test_region_adain_gives_each_region_its_styles_statistics(feats):
    c, s = feats
    s2 = s.flip(1) * 0.5 + 1.0  # another "style": other statistics per channel
    fg = torch.zeros(1, 1, *c.shape[-2:], dtype=c.dtype)
    fg[..., :, : c.shape[-1] // 2] = 1
    out = adain_regions(c, [fg, 1 - fg], [mean_std(s, 0.0), mean_std(s2, 0.0)], eps=0.0)
    w = c.shape[-1] // 2
    # channels alive in both halves of the content
    live = (c[..., :w].flatten(2).var(2)[0] > 0) & (c[..., w:].flatten(2).var(2)[0] > 0)
    assert live.sum() > 32
    for half, style in ((out[..., :w], s), (out[..., w:], s2)):
        half, style = half.flatten(2)[:, live], style.flatten(2)[:, live]
        torch.testing.assert_close(half.mean(2), style.mean(2), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(half.std(2), style.std(2), rtol=1e-9, atol=1e-9)
    # with one region covering everything it is plain AdaIN
    torch.testing.assert_close(adain_regions(c, [torch.ones_like(fg)], [mean_std(s)]), adain(c, s))


def test_coral_matches_the_port_and_moves_colour_statistics():
    content = load(DATA / "content" / "flowers.jpg", 40)[0].double()
    style = load(DATA / "style" / "the_scream.jpg", 40)[0].double()

    def port_coral(source, target):  # pytorch-AdaIN's coral, from its definition ([0, 1] images)
        def flat(f):
            f = f.reshape(3, -1)
            return f, f.mean(-1, keepdim=True), f.std(-1, keepdim=True)

        def msqrt(x):
            u, d, v = torch.svd(x)
            return u @ d.pow(0.5).diag() @ v.t()

        sf, smean, sstd = flat(source)
        sn = (sf - smean) / sstd
        tf, tmean, tstd = flat(target)
        tn = (tf - tmean) / tstd
        eye = torch.eye(3, dtype=sf.dtype)
        out = msqrt(tn @ tn.t() + eye) @ torch.inverse(msqrt(sn @ sn.t() + eye)) @ sn
        return (out * tstd + tmean).view(source.shape)

    got = coral(style, content)
    ref = port_coral((style + 1) / 2, (content + 1) / 2) * 2 - 1  # the port works on [0, 1]
    torch.testing.assert_close(got, ref, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(got.reshape(3, -1).mean(1), content.reshape(3, -1).mean(1))
    torch.testing.assert_close(torch.cov(got.reshape(3, -1)), torch.cov(content.reshape(3, -1)),
                               rtol=0.02, atol=1e-3)
