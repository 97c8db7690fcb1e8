"""Face and eye detection on real photos (../shared/data), and the roll estimate."""
import numpy as np
import pytest
from PIL import Image

from styleforge.errors import ConfigError
from styleforge.faces import Face, FaceDetector


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def _load(path, side=None):
    with Image.open(path) as im:
        im = im.convert("RGB")
    if side:
        im = im.resize((side, round(side * im.height / im.width)), Image.BICUBIC)
    return im


@pytest.mark.parametrize("rel", ["photo2cartoon/testA/AM1982.jpg", "photo2cartoon_demo/photo_test.jpg",
                                 "stargan_v2_representative/celeba_hq/src/female/039913.jpg"])
def test_one_face_found_with_eyes_in_its_upper_half(shared_data, detector, rel):
    parts = rel.split("/")
    img = np.asarray(_load(shared_data(parts[0]) / "/".join(parts[1:])))
    faces = detector.detect(img)
    assert len(faces) == 1
    f = faces[0]
    h, w = img.shape[:2]
    x0, y0, x1, y1 = f.box
    # a portrait: the face is big and inside the photo
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and f.size > 0.25 * min(h, w)
    assert f.eyes is not None
    (lx, ly), (rx, ry) = f.eyes
    assert x0 < lx < f.center[0] < rx < x1
    assert y0 < ly < f.center[1] and y0 < ry < f.center[1]
    assert abs(f.roll) < 8  # these portraits are upright


@pytest.mark.parametrize("angle", [-15, 10, 20])
def test_roll_follows_a_known_rotation(shared_data, detector, angle):
    im = _load(shared_data("photo2cartoon") / "testA" / "AM1982.jpg")
    base = detector.detect(np.asarray(im))[0].roll
    # PIL rotates counter-clockwise for positive angles; the roll (right eye lower = positive)
    # of a head turned counter-clockwise by `angle` decreases by `angle`
    rot = im.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    faces = detector.detect(np.asarray(rot))
    assert len(faces) == 1 and faces[0].eyes is not None
    assert faces[0].tilt == pytest.approx(base - angle, abs=3.0)


def test_strongly_tilted_head_is_found_by_the_rotated_retry_with_the_right_sign(shared_data, detector):
    im = _load(shared_data("stargan_v2_representative") / "celeba_hq" / "src" / "female" / "039913.jpg", 400)
    rot = im.rotate(-30, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))  # clockwise
    faces = detector.detect(np.asarray(rot))
    assert len(faces) == 1
    assert faces[0].detector_angle != 0  # the upright cascades miss a 30° tilt
    assert faces[0].tilt == pytest.approx(30, abs=6)
    # the box is mapped back onto the face: its centre is near the rotated image's centre
    cx, cy = faces[0].center
    assert abs(cx - rot.width / 2) < 0.15 * rot.width and abs(cy - rot.height / 2) < 0.2 * rot.height


def test_tilt_without_eyes_is_the_retry_angle():
    assert Face(center=(0, 0), size=10, detector_angle=25.0).tilt == 25.0
    assert Face(center=(0, 0), size=10, eyes=((0, 0), (10, 10)), detector_angle=25.0).tilt == pytest.approx(45)


def test_facades_have_no_face(shared_data, detector):
    root = shared_data("facades", "test")
    for name in ("1.jpg", "10.jpg"):
        assert detector.detect(np.asarray(_load(root / name))) == []


def test_bad_detector_options_name_the_option():
    with pytest.raises(ConfigError, match="max_side"):
        FaceDetector(max_side=10)
    with pytest.raises(ConfigError, match="min_face"):
        FaceDetector(min_face=2)


def test_prepare_faces_with_a_broken_cv2_is_one_line_error(monkeypatch, tmp_path, capsys):
    import sys
    import types

    from styleforge.cli import main
    from styleforge.utils import opencv

    monkeypatch.setitem(sys.modules, "cv2", types.ModuleType("cv2"))
    monkeypatch.setattr(opencv, "_installed_opencv", lambda: ["opencv-python==5.0.0.86",
                                                              "opencv-python-headless==4.14.0.94"])
    opencv.opencv.cache_clear()
    try:
        (tmp_path / "in").mkdir()
        assert main(["prepare", "faces", str(tmp_path / "in"), str(tmp_path / "out"), "--quiet"]) == 2
    finally:
        opencv.opencv.cache_clear()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" not in err
    assert "OpenCV is broken" in err and "pip uninstall -y opencv-python opencv-python-headless" in err
