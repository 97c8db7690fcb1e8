"""Deep Photo Style Transfer (Luan et al. 2017) on real photos of the bundled sample, with a
random-weight VGG-19: both stages, the photorealism term, segmentation-guided style."""
from pathlib import Path

import numpy as np
import pytest
import torch

from styleforge.data.images import load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import ConfigError
from styleforge.losses.guided import color_label_masks, guided_gram, propagate_mask
from styleforge.losses.matting import matting_laplacian
from styleforge.methods.gatys import resize_longer
from styleforge.registry import build_method, get_method_class

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2] / "data" / "style_transfer" / "content"


def _photo(name, size=32):
    img = load_rgb(ROOT / name)
    w, h = img.size
    s = size / max(w, h)
    return to_tensor(img.resize((round(w * s), round(h * s))))[None]


@pytest.fixture(scope="module")
def photos():
    return {"content": _photo("golden_gate.jpg"), "style": _photo("chicago.jpg")}


@pytest.fixture(scope="module")
def photo():
    return build_method("photo", vgg_weights="random", content_layers=["relu2_1"],
                        style_layers=["relu1_1", "relu2_1"], size=32, stage_iterations=[10, 6],
                        noise_std=10.0, progress=False)


def _matting_cost(y, content):
    lap = matting_laplacian((content[0] + 1) / 2)
    v = ((y[0] + 1) / 2).flatten(1).t().double().numpy()
    return float(np.sum(v * (lap @ v)))


def test_both_stages_lower_their_losses(photos, photo):
    y, hist = photo.stylize(photos["content"], style=photos["style"])
    assert y.shape == photos["content"].shape and y.abs().max() <= 1
    stage1, stage2 = hist[0]
    assert len(stage1) == 10 and len(stage2) == 6
    assert stage1[-1] < 0.9 * stage1[0]
    # stage 2 starts with the photorealism term of a still noisy image, and brings it down
    assert stage2[0] > stage1[-1] and stage2[-1] < 0.5 * stage2[0]


def test_stage_two_adds_lambda_VtLV_and_it_makes_the_result_more_photorealistic(photos, photo):
    c, s = photos["content"], photos["style"]
    y1, _ = photo.stylize(c, style=s, photorealism=False, iterations=6)  # stage 1 only (seeded noise)
    y_term, with_term = photo.stylize(c, style=s, iterations=6, matting_weight=1e4)
    y_free, without = photo.stylize(c, style=s, iterations=6, matting_weight=0.0)
    # same stage 1, so stage 2's first evaluation differs by exactly λ·Σ_c VᵀLV of its start
    added = with_term[0][1][0] - without[0][1][0]
    assert added == pytest.approx(1e4 * _matting_cost(y1, c), rel=1e-3)
    assert _matting_cost(y_term, c) < 0.9 * _matting_cost(y_free, c)


def test_segmentation_gives_one_style_gram_per_shared_label(photos, photo):
    c, s = photos["content"], photos["style"]
    h, w = c.shape[-2:]
    hs, ws = s.shape[-2:]
    cseg = torch.zeros(1, 3, h, w)
    cseg[:, 2, : h // 2] = 1  # upper half blue, lower half black
    sseg = torch.zeros(1, 3, hs, ws)
    sseg[:, 2, :, : ws // 2] = 1  # left half blue, right half black
    sseg[:, :, hs - 4:, ws // 2:] = 1  # a white strip: absent from the content
    regions = photo._segmented_targets(s, (h, w), cseg, sseg)
    assert len(regions) == 2  # blue and black; white has no content pixels
    feats = photo.vgg(s, photo.style_layers)
    labels = color_label_masks(sseg, ("blue", "black"))
    for k, (cmask, targets, _) in enumerate(regions):
        assert cmask.shape == (1, 1, h, w)
        sm = propagate_mask(labels[:, k:k + 1], photo.vgg.names, {l: feats[l].shape[-2:] for l in feats}, "dpst")
        for l in photo.style_layers:
            torch.testing.assert_close(targets[l], guided_gram(feats[l], sm[l]))
    torch.testing.assert_close(regions[0][0][..., : h // 2, :], torch.ones(1, 1, h // 2, w))
    y, hist = photo.stylize(c, style=s, content_seg=cseg, style_seg=sseg, iterations=3)
    assert hist[0][0][-1] < hist[0][0][0]
    with pytest.raises(ConfigError, match="share no label"):
        photo._segmented_targets(s, (h, w), cseg, torch.ones(1, 3, hs, ws))  # all white


def test_input_is_resized_like_reshape_img():
    x = torch.zeros(1, 3, 33, 47)
    assert resize_longer(x, 40, floor=True).shape[-2:] == (28, 40)  # floor(33 · 40 / 47)
    assert resize_longer(x.transpose(2, 3), 40, floor=True).shape[-2:] == (40, 28)


def test_bad_inputs_are_one_line_errors(photos, photo):
    c, s = photos["content"], photos["style"]
    with pytest.raises(ConfigError, match="both content_seg and style_seg"):
        photo.stylize(c, style=s, content_seg=torch.zeros(1, 3, *c.shape[-2:]))
    with pytest.raises(ConfigError, match="one style image, got 2"):
        photo.stylize(c, style=[s, s])
    with pytest.raises(ConfigError, match="stage_iterations needs two numbers"):
        build_method("photo", vgg_weights="random", stage_iterations=[10])
    with pytest.raises(ConfigError, match="nothing to train"):
        next(iter(photo.training_step({})))


def test_preset_size_sets_photos_one_size_not_gatys_stages():
    photo = get_method_class("photo")
    assert photo.preset_size({"size": 700, "matting_weight": 1e4}, 256) == {"size": 256, "matting_weight": 1e4}
    with pytest.raises(ConfigError, match="^size: the optimisation needs at least 8 px"):
        photo.preset_size({"size": 700}, 4)
