"""utils/opencv.py: OpenCV imported in one place, a missing or shadowed one a one-line error
that says what to reinstall, for faces/ and for the video's optical flow alike."""
import sys
import types

import numpy as np
import pytest

from styleforge.errors import ConfigError
from styleforge.utils import opencv
from styleforge.utils.flow import dis_flow

TWO_WHEELS = ["opencv-python==5.0.0.86", "opencv-python-headless==4.14.0.94"]


@pytest.fixture
def fresh_import():
    opencv.opencv.cache_clear()
    yield
    opencv.opencv.cache_clear()


def test_a_shadowed_cv2_is_named_with_what_to_uninstall(monkeypatch):
    broken = types.ModuleType("cv2")  # what a second OpenCV wheel over the first leaves behind
    broken.__file__ = "/site-packages/cv2/__init__.py"
    monkeypatch.setattr(opencv, "_installed_opencv", lambda: TWO_WHEELS)
    msg = opencv.diagnose_cv2(broken)
    assert "\n" not in msg and "lacks CascadeClassifier" in msg and "opencv-python==5.0.0.86" in msg
    assert "pip uninstall -y opencv-python opencv-python-headless" in msg and "--force-reinstall" in msg
    msg = opencv.diagnose_cv2(None, ImportError("libGL.so.1: cannot open shared object file\nmore"))
    assert "\n" not in msg and "fails to import: libGL.so.1" in msg
    cv2 = pytest.importorskip("cv2")

    assert opencv.diagnose_cv2(cv2) is None


def test_the_optical_flow_without_opencv_is_the_same_one_line_error(monkeypatch, fresh_import):
    monkeypatch.setitem(sys.modules, "cv2", None)  # "import cv2" raises ImportError
    monkeypatch.setattr(opencv, "_installed_opencv", lambda: [])
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"OpenCV is broken: cv2 \(not importable\) fails to import.*"
                                          r"installed: none\): pip install") as e:
        dis_flow(frame, frame)
    assert "\n" not in str(e.value)
