"""styleforge.data.transforms: exact tensor conversion, seeded crops/flips, paired geometry."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.data.transforms import PREPROCESS_OPTIONS, Transform, to_pil, to_tensor
from styleforge.errors import ConfigError


def rng(seed):
    return np.random.default_rng(seed)


def u8(t):
    """[-1, 1] tensor -> uint8 levels as int array (C, H, W)."""
    return ((t + 1) * 127.5).round().int().numpy()


# ---- to_tensor / to_pil ------------------------------------------------------------------
def test_to_tensor_range_layout_and_exact_round_trip(noise_img):
    img = noise_img(1, 37, 21)
    img.putpixel((0, 0), (0, 255, 128))
    t = to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 21, 37)
    assert t[0, 0, 0] == -1.0 and t[1, 0, 0] == 1.0
    assert abs(float(t[2, 0, 0]) - (128 / 127.5 - 1)) < 1e-6
    assert torch.equal(t[:, 5, 7], torch.tensor(img.getpixel((7, 5)), dtype=torch.float32) / 127.5 - 1)
    back = to_pil(t)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), np.asarray(img))
    assert np.array_equal(np.asarray(to_pil(t[None])), np.asarray(img))  # 1xCxHxW too
    t01 = to_tensor(img, normalize=False)
    assert t01.min() >= 0 and t01.max() == 1.0


def test_to_tensor_grayscale_and_other_modes():
    g = Image.new("L", (4, 3), 51)
    t = to_tensor(g)
    assert t.shape == (1, 3, 4)
    assert to_pil(t).mode == "L" and to_pil(t).getpixel((0, 0)) == 51
    rgba = Image.new("RGBA", (2, 2), (10, 20, 30, 255))
    assert to_tensor(rgba).shape == (3, 2, 2)


def test_to_pil_clamps_and_rejects_bad_shapes():
    t = torch.tensor([[[2.0, -3.0, float("nan")]]]).expand(3, 1, 3)
    assert np.asarray(to_pil(t))[0].tolist() == [[255] * 3, [0] * 3, [128] * 3]
    for bad in (torch.zeros(3, 4), torch.zeros(2, 3, 4, 4), torch.zeros(4, 4, 4)):
        with pytest.raises(ConfigError, match="shape"):
            to_pil(bad)


# ---- validation ------------------------------------------------------------------------
def test_bad_preprocess_names_the_value_and_the_options():
    with pytest.raises(ConfigError) as e:
        Transform(286, 256, "resize-and-crop")
    msg = str(e.value)
    assert "resize-and-crop" in msg
    for opt in PREPROCESS_OPTIONS:
        assert opt in msg
    with pytest.raises(ConfigError, match="load_size"):
        Transform(0, 256)
    with pytest.raises(ConfigError, match="at least crop_size"):
        Transform(100, 128, "resize_and_crop")
    Transform(64, 128, "resize")  # load_size is unused there
    with pytest.raises(TypeError, match="Generator"):
        Transform(8, 8)(Image.new("RGB", (8, 8)), 0)


# ---- geometry --------------------------------------------------------------------------
@pytest.mark.parametrize("preprocess, size, expected", [
    ("resize_and_crop", (50, 30), (3, 32, 32)),
    ("scale_width_and_crop", (100, 50), (3, 32, 32)),
    ("crop", (50, 40), (3, 32, 32)),
    ("crop", (20, 10), (3, 32, 32)),           # too small for the crop: scaled up first
    ("resize", (50, 30), (3, 32, 32)),
    ("none", (30, 23), (3, 24, 32)),           # rounded to multiples of 4
    ("none", (64, 48), (3, 48, 64)),
])
def test_output_sizes(pos_img, preprocess, size, expected):
    t = Transform(40, 32, preprocess, flip=False)
    out = t(pos_img(*size), rng(0))
    assert out.shape == expected and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1


def test_crop_is_a_window_of_the_input_and_flip_mirrors_it(pos_img):
    t = Transform(64, 32, "crop", flip=True)
    img = pos_img(64, 48, blue=7)
    seen_flip, corners = set(), set()
    for seed in range(24):
        out = u8(t(img, rng(seed)))
        r, g = out[0], out[1]
        assert (out[2] == 7).all()
        assert (g == g[:, :1]).all() and (np.diff(g[:, 0]) == 1).all()   # rows are consecutive
        row = r[0]
        assert (r == row).all()
        flipped = bool(row[0] > row[-1])
        assert (np.diff(row) == (-1 if flipped else 1)).all()           # columns consecutive
        x0, y0 = int(row.min()), int(g[0, 0])
        assert 0 <= x0 <= 32 and 0 <= y0 <= 16
        seen_flip.add(flipped)
        corners.add((x0, y0))
    assert seen_flip == {True, False}
    assert len(corners) > 10


def test_no_flip_when_disabled(pos_img):
    t = Transform(64, 32, "crop", flip=False)
    for seed in range(10):
        row = u8(t(pos_img(64, 48), rng(seed)))[0, 0]
        assert (np.diff(row) == 1).all()


def test_resize_only_is_deterministic_without_randomness(noise_img):
    t = Transform(32, 32, "resize", flip=False)
    img = noise_img(3, 50, 30)
    a, b = t(img, rng(0)), t(img, rng(99))
    assert torch.equal(a, b)
    expected = to_tensor(img.resize((32, 32), Image.Resampling.BICUBIC))
    assert torch.equal(a, expected)


# ---- determinism -----------------------------------------------------------------------
@pytest.mark.parametrize("preprocess", ["resize_and_crop", "scale_width_and_crop", "crop"])
def test_same_seed_same_output_other_seed_differs(noise_img, preprocess):
    t = Transform(72, 64, preprocess)
    img = noise_img(5, 90, 80)
    a, b = t(img, rng(42)), t(img, rng(42))
    assert torch.equal(a, b)
    others = [t(img, rng(s)) for s in range(43, 47)]
    assert not any(torch.equal(a, o) for o in others)


def test_transform_leaves_global_random_state_alone(noise_img):
    t = Transform(72, 64)
    img = noise_img(5, 80, 80)
    np_state, torch_state, py_state = np.random.get_state(), torch.get_rng_state(), random.getstate()
    t(img, rng(0))
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state


# ---- paired ----------------------------------------------------------------------------
@pytest.mark.parametrize("preprocess", ["crop", "resize_and_crop", "scale_width_and_crop"])
def test_paired_images_get_the_same_crop_and_flip(pos_img, preprocess):
    t = Transform(72, 48, preprocess)
    a, b = pos_img(100, 80, blue=0), pos_img(100, 80, blue=255)
    alone = set()
    for seed in range(12):
        ta, tb = t([a, b], rng(seed))
        assert torch.equal(ta[:2], tb[:2])          # same position codes: same crop + flip
        assert (ta[2] == -1).all() and (tb[2] == 1).all()
        single = t(a, rng(seed))                    # a list draws like a single image
        assert torch.equal(single, ta)
        alone.add(tuple(u8(ta)[:2, 0, 0]))
    assert len(alone) > 6


def test_paired_images_of_other_sizes_are_aligned_to_the_first(pos_img):
    t = Transform(48, 48, "crop", flip=True)
    a, b = pos_img(64, 64), pos_img(64, 64).resize((128, 128), Image.Resampling.BICUBIC)
    ta, tb = t([a, b], rng(3))
    assert ta.shape == tb.shape == (3, 48, 48)
    assert (u8(ta) - u8(tb))[:, 4:-4, 4:-4].__abs__().max() <= 2
