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


def _field_boxes(names, upto):
    """Each layer's receptive-field geometry walked from the input, written out independently
    of propagate_mask: {layer: (jump, offset, size)}; neuron i sees input rows
    offset + i·jump ... offset + i·jump + size − 1 (a 3×3 conv padded by one moves the offset
    back one jump and widens the field by two; a 2×2 stride-2 pool widens by one jump and
    doubles it)."""
    jump, offset, size, out = 1, 0, 1, {}
    for n in names:
        if n.startswith("conv"):
            offset, size = offset - jump, size + 2 * jump
        elif n.startswith("pool"):
            size, jump = size + jump, jump * 2
        out[n] = (jump, offset, size)
        if n == upto:
            break
    return out


def _rule(region, box, hw, mode, k):
    """The authors' guides of one layer by their definition: a neuron is in (``inside``) when
    every image pixel of its receptive field is in the region, (``all``) when any is; then grown
    by k neurons (any guide neuron within k rows and columns)."""
    jump, offset, size = box
    H, W = region.shape
    g = torch.zeros(hw)
    for i in range(hw[0]):
        for j in range(hw[1]):
            r0, c0 = max(0, offset + i * jump), max(0, offset + j * jump)
            r1, c1 = min(H, offset + i * jump + size), min(W, offset + j * jump + size)
            seen = region[r0:r1, c0:c1]
            g[i, j] = float(seen.all() if mode == "inside" else seen.any())
    grown = torch.zeros(hw)
    for i in range(hw[0]):
        for j in range(hw[1]):
            grown[i, j] = g[max(0, i - k):i + k + 1, max(0, j - k):j + k + 1].max()
    return grown


def test_inside_and_all_guides_follow_the_receptive_field_rule_at_each_layer():
    """Gatys 2017's released code (get_fm_guides, modes inside/all, k = 3, th = 0.5): the guide
    of a small region at each layer equals the rule evaluated neuron by neuron from the fields'
    geometry; soft mask values are binarised at 0.5 first."""
    layers = ("relu1_1", "relu2_1", "relu3_1")
    enc = VGGEncoder("vgg19", layers, "caffe")
    H, W = 47, 57  # odd sizes: the floor-mode pooling drops a row and a column
    sizes = {k: tuple(v.shape[-2:]) for k, v in enc(torch.zeros(1, 3, H, W)).items()}
    region = torch.zeros(H, W, dtype=torch.bool)
    region[4:44, 6:42] = True
    region[10:16, 20:26] = False  # a hole
    region[0:12, 50:57] = True  # a second piece at the image's corner (zero padding is not outside)
    soft = torch.where(region, torch.tensor(0.5), torch.tensor(0.49))[None, None]  # binarised at 0.5
    boxes = _field_boxes(enc.names, "relu3_1")
    for mode in ("inside", "all"):
        for k in (0, 3):
            got = propagate_mask(soft, enc.names, sizes, mode, threshold=0.5, extend=k)
            for layer in layers:
                expected = _rule(region, boxes[layer], sizes[layer], mode, k)
                torch.testing.assert_close(got[layer][0, 0], expected, rtol=0, atol=0, msg=f"{mode} k={k} {layer}")
    # not a resize: at relu3_1 (fields of 24 px, a 4 px step) the inside guide keeps a small
    # part of the region, the all guide covers more than it
    share = region.float().mean()
    inside = propagate_mask(soft, enc.names, sizes, "inside", extend=0)["relu3_1"]
    touching = propagate_mask(soft, enc.names, sizes, "all", extend=0)["relu3_1"]
    assert 0 < inside.mean() < 0.5 * share and touching.mean() > share
    with pytest.raises(ConfigError, match="inside, all, resize, dpst"):
        propagate_mask(soft, enc.names, sizes, "simple")
