"""Aligned square crops, whitening and paste-back."""
import math

import numpy as np
import pytest
from PIL import Image

from styleforge.errors import ConfigError
from styleforge.faces import Face, FaceDetector, crop_face, crop_matrix, paste_back, whiten


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def _photo(shared_data, angle=0.0):
    with Image.open(shared_data("photo2cartoon") / "testA" / "AM1983.jpg") as im:
        im = im.convert("RGB")
    if angle:
        im = im.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    return np.asarray(im)


def test_crop_matrix_levels_the_eyes_and_frames_the_box():
    # a synthetic face leaning 20° clockwise (right eye lower): eyes 40 px apart
    c, d, t = (200.0, 150.0), 40.0, math.radians(20)
    eyes = ((c[0] - d / 2 * math.cos(t), c[1] - d / 2 * math.sin(t)),
            (c[0] + d / 2 * math.cos(t), c[1] + d / 2 * math.sin(t)))
    face = Face(center=c, size=100.0, eyes=eyes)
    m, angle = crop_matrix(face, 128, margin=0.3, center_y=0.5)
    assert angle == pytest.approx(20)
    to = lambda p: m @ np.array([p[0], p[1], 1.0])  # noqa: E731
    (lx, ly), (rx, ry) = to(eyes[0]), to(eyes[1])
    assert ly == pytest.approx(ry, abs=1e-9) and rx > lx
    assert rx - lx == pytest.approx(d * 128 / 160)  # box 100 px -> 128 / 1.6 px
    assert to(c) == pytest.approx([64, 64])
    m0, a0 = crop_matrix(face, 128, margin=0.3, center_y=0.5, align=False)
    assert a0 == 0 and to(c) == pytest.approx(m0 @ np.array([*c, 1.0]))


def test_crop_is_square_of_the_requested_size_and_contains_the_face(shared_data, detector):
    photo = _photo(shared_data)
    face = detector.detect(photo)[0]
    crop = crop_face(photo, face, size=96)
    assert crop.image.shape == (96, 96, 3) and crop.image.dtype == np.uint8
    x0, y0, x1, y1 = crop.box
    assert x1 - x0 == pytest.approx(96 / 1.6) and (x0 + x1) / 2 == pytest.approx(48)
    assert (y0 + y1) / 2 == pytest.approx(0.535 * 96)
    for ex, ey in crop.eyes:
        assert x0 < ex < x1 and y0 < ey < (y0 + y1) / 2
    # the crop shows the photo where the map says: the pixel at a crop point equals the photo's
    inv = np.linalg.inv(np.vstack([crop.matrix, [0, 0, 1]]))
    u, v = 48, 40
    px, py = (inv @ [u, v, 1])[:2]
    assert np.abs(crop.image[v, u].astype(int) - photo[round(py), round(px)].astype(int)).max() < 40


@pytest.mark.parametrize("angle", [-14, 18])
def test_after_alignment_the_eye_line_is_level(shared_data, detector, angle):
    photo = _photo(shared_data, angle)
    face = detector.detect(photo)[0]
    aligned = crop_face(photo, face, size=224)
    again = detector.detect(aligned.image)
    assert again and again[0].eyes is not None
    assert abs(again[0].roll) < 3.5
    # without alignment the tilt is still there (the check above can tell the difference)
    plain = detector.detect(crop_face(photo, face, size=224, align=False).image)[0]
    assert abs(plain.tilt + angle) < 5


def test_crop_outside_the_photo_is_white_and_marked_invalid(shared_data, detector):
    photo = _photo(shared_data)
    face = detector.detect(photo)[0]
    crop = crop_face(photo, face, size=64, margin=1.5)  # wider than the 350 px photo
    assert not crop.valid.all() and crop.valid[32, 32]
    assert (crop.image[~crop.valid] == 255).all()


def test_whiten_blends_with_white():
    img = np.full((2, 2, 3), 100, np.uint8)
    alpha = np.array([[1.0, 0.0], [0.5, 0.25]], np.float32)
    out = whiten(img, alpha)
    assert out[0, 0].tolist() == [100] * 3 and out[0, 1].tolist() == [255] * 3
    assert out[1, 0].tolist() == [178] * 3 and out[1, 1].tolist() == [216] * 3
    with pytest.raises(ConfigError, match="matte"):
        whiten(img, np.ones((3, 3), np.float32))


def test_paste_back_puts_the_result_in_place_and_leaves_the_rest(shared_data, detector):
    photo = _photo(shared_data, 12)
    face = detector.detect(photo)[0]
    crop = crop_face(photo, face, size=128)
    red = np.zeros((256, 256, 3), np.uint8)  # any square size is brought to the crop's
    red[..., 0] = 255
    out = paste_back(photo, crop, red)
    assert out.shape == photo.shape
    cx, cy = (round(v) for v in face.center)
    assert out[cy, cx].tolist() == [255, 0, 0]
    # outside the crop's square the photo is untouched
    inv = np.linalg.inv(np.vstack([crop.matrix, [0, 0, 1]]))
    corners = np.array([inv @ [u, v, 1] for u, v in ((0, 0), (128, 0), (128, 128), (0, 128))])[:, :2]
    yy, xx = np.mgrid[:photo.shape[0], :photo.shape[1]]
    far = (xx < corners[:, 0].min() - 2) | (xx > corners[:, 0].max() + 2) | (yy < corners[:, 1].min() - 2)
    assert far.any() and (out[far] == photo[far]).all()
    # pasting the crop itself back changes the face region only by resampling
    same = paste_back(photo, crop, crop.image)
    r = int(face.size * 0.3)
    region = (slice(cy - r, cy + r), slice(cx - r, cx + r))
    assert np.abs(same[region].astype(int) - photo[region].astype(int)).mean() < 6


def _authors_square(lm, h, w):
    """Photo2Cartoon's preprocessing written out independently (utils/face_detect.py and
    utils/preprocess.py): the photo turned about its centre onto a larger canvas so that points
    36 and 45 are level, then the landmarks' extent widened (0.8 of its height above, 0.3
    below, 0.3 of its width each side) and squared, in integer pixels. Returns the centre of
    that square in the photo, its side, and the angle in degrees."""
    (lx, ly), (rx, ry) = lm[36], lm[45]
    t = math.atan((ly - ry) / (lx - rx))
    c, s = math.cos(t), math.sin(t)
    nw, nh = int(w * abs(c) + h * abs(s)), int(w * abs(s) + h * abs(c))
    tx, ty = nw // 2 - w // 2, nh // 2 - h // 2
    m = np.array([[c, s, (1 - c) * w / 2 - s * h / 2 + tx], [-s, c, s * w / 2 + (1 - c) * h / 2 + ty]])
    q = np.hstack([lm, np.ones((len(lm), 1))]) @ m.T
    top, bottom, left, right = q[:, 1].min(), q[:, 1].max(), q[:, 0].min(), q[:, 0].max()
    top, bottom = int(top - 0.8 * (bottom - top)), int(bottom + 0.3 * (bottom - top))
    left, right = int(left - 0.3 * (right - left)), int(right + 0.3 * (right - left))
    if bottom - top > right - left:
        left -= ((bottom - top) - (right - left)) // 2
        right = left + (bottom - top)
    else:
        top -= ((right - left) - (bottom - top)) // 2
        bottom = top + (right - left)
    centre = np.linalg.inv(np.vstack([m, [0, 0, 1]])) @ [(left + right) / 2, (top + bottom) / 2, 1]
    return centre[:2], right - left + 1, math.degrees(t)


@pytest.mark.parametrize("angle", [0.0, 14.0, -22.0])
@pytest.mark.parametrize("wide", [False, True])
def test_landmark_framing_is_the_authors_crop(angle, wide):
    rng = np.random.default_rng(abs(int(angle)) + 7 * wide)
    # a face-like cloud of 68 points: jaw along a U, the rest inside; outer eye corners at 36, 45
    u = np.linspace(-1, 1, 17)
    jaw = np.stack([60 * u * (1.6 if wide else 1.0), 40 + 50 * (1 - u ** 2)], 1)
    inner = rng.uniform([-35, -45], [35, 45], (51, 2))
    lm = np.vstack([jaw, inner])
    lm[36], lm[45] = (-38, -10), (38, -10)
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])  # clockwise as displayed
    lm = lm @ rot.T + (300, 260)
    h, w = 600, 520
    centre, side, their_angle = _authors_square(lm, h, w)
    face = Face(center=(300.0, 260.0), size=100.0, landmarks=tuple(map(tuple, lm)))
    m, our_angle = crop_matrix(face, 256)
    assert our_angle == pytest.approx(angle, abs=1e-6) and our_angle == pytest.approx(their_angle, abs=1e-6)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    ours = (inv @ [128, 128, 1])[:2]
    assert np.abs(ours - centre).max() < 1.5  # their integer rounding: at most a pixel or so
    assert 256 / math.hypot(m[0, 0], m[0, 1]) == pytest.approx(side, abs=2.0)
    # in the crop the outer eye corners are level; framing="box" ignores the landmarks
    p36, p45 = m @ [*lm[36], 1], m @ [*lm[45], 1]
    assert abs(p36[1] - p45[1]) < 1e-6
    mb, ab = crop_matrix(face, 256, framing="box")
    assert ab == 0.0 and 256 / math.hypot(mb[0, 0], mb[0, 1]) == pytest.approx(160.0)
    with pytest.raises(ConfigError, match="framing"):
        crop_matrix(face, 256, framing="eyes")


def test_paste_back_seam_follows_the_matte_with_the_cartoons_own_colours(shared_data, detector):
    photo = _photo(shared_data)
    face = detector.detect(photo)[0]
    crop = crop_face(photo, face, size=128)
    yy, xx = np.mgrid[:128, :128]
    # a soft disk matte (radius 40, edge over ~6 px), as a segmentation gives
    crop.alpha = np.clip((40 - np.hypot(xx - 64, yy - 70)) / 6 + 0.5, 0, 1).astype(np.float32)
    red = np.zeros((128, 128, 3), np.uint8)
    red[..., 0] = 255
    result = whiten(red, crop.alpha)  # what a model's output looks like after whitening
    out = paste_back(photo, crop, result).astype(int)
    # blending red with the photo can only lower green and blue: no white from the result's
    # background may show at the soft edge (the old blend made a pale ring there)
    assert (out[..., 1:] <= photo[..., 1:].astype(int) + 1).all()
    # the seam runs inside the outline: where the matte is 0 the photo is unchanged, deep
    # inside it the result is pure
    inv_pts = lambda u, v: (np.linalg.inv(np.vstack([crop.matrix, [0, 0, 1]])) @ [u, v, 1])[:2]  # noqa: E731
    cx, cy = (round(c) for c in inv_pts(64, 70))
    assert out[cy, cx].tolist() == [255, 0, 0]
    ox, oy = (round(c) for c in inv_pts(64, 70 + 52))  # 12 px outside the disk
    assert out[oy, ox].tolist() == photo[oy, ox].tolist()
