"""utils.flow on a known camera motion over a real photo: the DIS flow finds the shift, the
consistency check masks what came into view, and the warping error is ~0 for an output that
moves with the input and large for one that does not."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.utils.flow import frame_motion, video_warping_error, warp, warping_error

pytest.importorskip("cv2")

PHOTO = Path(__file__).resolve().parents[2] / "data" / "horse2zebra" / "testA"


@pytest.fixture(scope="module")
def pan():
    """Two 64×48 windows of a real photo, the second 4 px further right (the camera pans right:
    the content moves 4 px left; a 4 px strip on the right comes into view)."""
    a = np.asarray(Image.open(sorted(PHOTO.iterdir())[1]).convert("RGB"))
    return a[40:88, 20:84].copy(), a[40:88, 24:88].copy()


def test_backward_flow_brings_the_previous_frame_into_place_and_masks_what_came_into_view(pan):
    prev, cur = pan
    back, wts = frame_motion(prev, cur)
    inner = (slice(8, -8), slice(8, -12))
    assert np.median(back[inner][..., 0]) == pytest.approx(4, abs=0.3)  # cur(p) = prev(p + 4 px)
    assert np.abs(np.median(back[inner][..., 1])) < 0.3
    moved = warp(prev, back).astype(float)
    assert np.abs(moved - cur)[inner].mean() < 0.15 * np.abs(prev.astype(float) - cur)[inner].mean()
    assert wts[inner].mean() > 0.9
    assert wts[:, -3:].mean() < 0.5  # the strip that came into view: occluded in the previous frame


def test_warping_error_is_near_zero_for_an_output_that_moves_with_the_input(pan):
    prev, cur = pan
    # an "output" that follows the motion (the inputs themselves) against one fixed on screen
    fixed = np.full_like(prev, 0)
    fixed[::2] = 255
    follows = video_warping_error([prev, cur], [prev, cur])
    assert follows < 0.02
    back, wts = frame_motion(prev, cur)
    flicker = warping_error(fixed, 255 - fixed, back, wts)
    assert flicker > 0.9
