"""cartoonize_image: the photo -> faces -> model -> crops / paste-back path of the CLI and the
web app, with a stand-in model that inverts colours (so its output is known exactly)."""
import numpy as np
import pytest
from PIL import Image

from styleforge.errors import ConfigError, NoFaceError
from styleforge.faces import FacePreprocessor, cartoonize_image, whiten


class InvertingPipe:
    """What cartoonize_image may call on a loaded model: translate_pil(img, direction, **inputs)."""

    def __init__(self):
        self.calls = []

    def translate_pil(self, img, direction=None, **inputs):
        self.calls.append((img.size, direction, inputs))
        return Image.fromarray(255 - np.asarray(img.convert("RGB")))


@pytest.fixture
def photo(shared_data):
    with Image.open(shared_data("photo2cartoon") / "testA" / "AM1982.jpg") as im:
        return im.convert("RGB")


def test_crops_are_the_models_output_on_the_whitened_face_whitened_again(photo):
    pre = FacePreprocessor(size=96)
    pipe = InvertingPipe()
    res = cartoonize_image(pipe, photo, pre, direction="AtoB", group="men")
    assert pipe.calls == [((96, 96), "AtoB", {"group": "men"})]
    (crop,), (face,) = res.crops, res.faces
    assert face.size == (96, 96) and res.image is None
    expected = whiten(255 - crop.whitened(), crop.alpha)
    assert np.array_equal(np.asarray(face), expected)


def test_paste_back_returns_the_photo_with_the_face_changed_and_the_background_kept(photo):
    res = cartoonize_image(InvertingPipe(), np.asarray(photo), FacePreprocessor(size=96), paste_back=True)
    out, src = np.asarray(res.image).astype(int), np.asarray(photo).astype(int)
    assert out.shape == src.shape
    crop = res.crops[0]
    cx, cy = (round(v) for v in crop.face.center)
    assert np.abs(out[cy, cx] - (255 - src[cy, cx])).max() <= 3  # the face: inverted
    assert np.array_equal(out[:10, :10], src[:10, :10])  # the photo's background corner: kept


def test_no_face_names_the_source_and_bad_arrays_are_refused(shared_data):
    pytest.importorskip("onnxruntime", reason="the bundled detector runs through onnxruntime")
    with Image.open(shared_data("facades") / "test" / "1.jpg") as im:
        facade = im.convert("RGB")
    with pytest.raises(NoFaceError, match="facade.jpg"):
        cartoonize_image(InvertingPipe(), facade, FacePreprocessor(size=64, detector="mediapipe"),
                         source="facade.jpg")
    with pytest.raises(ConfigError, match="RGB uint8"):
        cartoonize_image(InvertingPipe(), np.zeros((8, 8), np.float32))


def test_auto_detector_falls_back_to_haar_and_counts_it(photo):
    from styleforge.faces import AutoDetector, FaceDetector

    class Blind:
        def detect(self, image):
            return []

    pre = FacePreprocessor(size=64, detector=AutoDetector(Blind(), FaceDetector()))
    faces = pre.detect(np.asarray(photo))
    assert len(faces) == 1 and faces[0].detector == "haar" and faces[0].landmarks is None
    assert pre.detector.fallbacks == 1 and "Haar fallback in 1 image(s)" in pre.fallback_note()
    assert FacePreprocessor(size=64).fallback_note() == ""
