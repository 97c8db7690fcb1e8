"""Guided Gram matrices (Gatys et al. 2017, section 4) and the DPST segmentation masks."""
import pytest
import torch

from styleforge.data.images import load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import ConfigError
from styleforge.losses.guided import color_label_masks, guided_gram, propagate_mask
from styleforge.nn.vgg import VGGEncoder


def test_guided_gram_sees_only_its_region(h2z):
    horse = to_tensor(load_rgb(sorted((h2z / "trainA").iterdir())[0]).resize((32, 32)))[None]
    zebra = to_tensor(load_rgb(sorted((h2z / "trainB").iterdir())[0]).resize((32, 32)))[None]
    # left half horse, right half zebra
    both = torch.cat([horse[..., :16], zebra[..., 16:]], dim=3)
    left = torch.zeros(1, 1, 32, 32)
    left[..., :16] = 1
    g_left = guided_gram(both, left)
    # the region's Gram equals the Gram of the region alone, normalised by its own area
    alone = horse[..., :16]
    torch.testing.assert_close(g_left, guided_gram(alone))
    torch.testing.assert_close(guided_gram(both, 1 - left), guided_gram(zebra[..., 16:]))
    # changing the other region does not change it
    other = torch.cat([horse[..., :16], torch.rand(1, 3, 32, 16)], dim=3)
    torch.testing.assert_close(guided_gram(other, left), g_left)
    # an all-ones mask is the C·H·W-normalised Gram
    flat = both.flatten(2)
    torch.testing.assert_close(guided_gram(both, torch.ones(1, 1, 32, 32)), flat @ flat.transpose(1, 2) / (3 * 32 * 32))
    assert guided_gram(both, torch.zeros(1, 1, 32, 32)).abs().max() == 0


def test_masks_reach_each_layer_at_its_size():
    enc = VGGEncoder("vgg19", ("relu1_1", "relu2_1", "relu3_1"), "caffe")
    x = torch.zeros(1, 3, 64, 64)
    sizes = {k: tuple(v.shape[-2:]) for k, v in enc(x).items()}
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32] = 1
    for mode in ("resize", "dpst"):
        out = propagate_mask(mask, enc.names, sizes, mode)
        assert {k: tuple(v.shape[-2:]) for k, v in out.items()} == sizes
        for v in out.values():  # left half stays on, right half off (the zero padding of the
            w = v.shape[-1]      # authors' mean filter fades the image border: looked past)
            assert v[..., 3:-3, 3: w // 2 - 2].min() > 0.99 and v[..., w // 2 + 2:].max() < 0.01
    # dpst: the 3×3 mean filter at conv1_1 blurs the edge by one pixel
    d = propagate_mask(mask, enc.names, sizes, "dpst")["relu1_1"]
    torch.testing.assert_close(d[0, 0, 5, 30:34], torch.tensor([1.0, 2 / 3, 1 / 3, 0.0]))
    with pytest.raises(ConfigError, match="resize, dpst"):
        propagate_mask(mask, enc.names, sizes, "erode")


def test_color_label_masks_follow_the_authors_codes():
    seg = torch.tensor([[0.0, 0.0, 1.0], [0.05, 0.95, 0.02], [0.5, 0.52, 0.45], [1, 0, 1], [0.3, 0.3, 0.3]])
    seg = seg.t().reshape(1, 3, 1, 5)
    m = color_label_masks(seg, ("blue", "green", "grey", "purple"))
    assert m.shape == (1, 4, 1, 5)
    expected = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=seg.dtype)
    torch.testing.assert_close(m[0, :, 0], expected)
    with pytest.raises(ConfigError, match="unknown segmentation colour"):
        color_label_masks(seg, ("teal",))
