"""Optical flow between consecutive video frames, and what a video's temporal consistency needs of it.

* :func:`backward_flow`: OpenCV's DIS flow (Kroeger et al., "Fast Optical Flow using Dense
  Inverse Search", ECCV 2016; ``cv2.DISOpticalFlow_create``) from the current
  frame to the previous one, so that the previous frame (or its stylised output) is brought
  into the current frame's place by :func:`warp`. The fast preset: on a 640×480 frame 11 ms
  against the medium preset's 55 ms (one thread), a small part of a network's time per frame.
* :func:`consistency_weights`: Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos",
  GCPR 2016, section 3.2: a pixel is occluded (weight 0) where the backward flow and the forward
  flow at its target do not cancel out, |w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5, or on a motion
  boundary, |∇ŵ_x|² + |∇ŵ_y|² > 0.01 |ŵ|² + 0.002, or where the flow leads out of the previous
  frame (what came into view); elsewhere 1.
* :func:`warping_error`: the flicker measure of Lai et al., "Learning Blind Video Temporal
  Consistency", ECCV 2018 (section 5.1), with the absolute difference: the mean of
  |O_t − warp(O_{t−1})| over the pixels the check keeps, in [0, 1] units.

Frames are H×W×3 uint8 RGB arrays; flows H×W×2 float32 (x, y) in pixels. A leaf module: it
imports nothing of styleforge but utils/opencv.py (OpenCV, or a one-line error naming the fix).
"""
from __future__ import annotations

import numpy as np

from .opencv import opencv


def _gray(frame: np.ndarray) -> np.ndarray:
    return opencv().cvtColor(np.ascontiguousarray(frame[..., :3]), opencv().COLOR_RGB2GRAY)


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from frame ``a`` to frame ``b``: a's pixel p is seen at p + flow(p) in b."""
    cv2 = opencv()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(_gray(a), _gray(b), None)


_GRIDS: dict = {}


def _grid(h: int, w: int):
    if (h, w) not in _GRIDS:
        _GRIDS.clear()
        _GRIDS[h, w] = np.mgrid[0:h, 0:w].astype(np.float32)
    return _GRIDS[h, w]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at p + flow(p) for each pixel p (bilinear; edges repeated): with the
    backward flow, the previous frame moved into the current frame's place. Keeps the dtype."""
    cv2 = opencv()
    ys, xs = _grid(*flow.shape[:2])
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistency_weights(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """H×W float32 weights: 0 where the current frame's pixel was occluded in the previous frame,
    lies on a motion boundary (Ruder et al. 2016's two tests) or came from outside it, 1 elsewhere. ``back``: current
    -> previous flow, ``fwd``: previous -> current."""
    cv2 = opencv()
    fwd_at = warp(fwd, back)  # the forward flow where each current pixel came from
    s = back + fwd_at

    def sq(f):
        return f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]

    occluded = sq(s) > 0.01 * (sq(back) + sq(fwd_at)) + 0.5
    # central differences ([-1, 0, 1] / 2) of each flow component
    grad = sum((cv2.Sobel(back[..., c], cv2.CV_32F, dx, 1 - dx, ksize=1) * 0.5) ** 2 for c in (0, 1) for dx in (0, 1))
    boundary = grad > 0.01 * sq(back) + 0.002
    # a pixel whose source lies outside the previous frame came into view: nothing to keep there
    h, w = back.shape[:2]
    ys, xs = _grid(h, w)
    sx, sy = xs + back[..., 0], ys + back[..., 1]
    outside = (sx < 0) | (sx > w - 1) | (sy < 0) | (sy > h - 1)
    occluded |= outside
    return (~(occluded | boundary)).astype(np.float32)


def frame_motion(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(backward flow cur -> prev, consistency weights) of two consecutive input frames."""
    back = dis_flow(cur, prev)
    fwd = dis_flow(prev, cur)
    return back, consistency_weights(back, fwd)


def warping_error(prev_out: np.ndarray, out: np.ndarray, back: np.ndarray, weights: np.ndarray) -> float:
    """Mean |out − warp(prev_out, back)| over the pixels with weight 1 (uint8 frames, result in
    [0, 1] units); 0 when every pixel is occluded."""
    diff = np.abs(out.astype(np.float32) - warp(prev_out, back).astype(np.float32)).mean(-1) / 255.0
    total = float(weights.sum())
    return float((diff * weights).sum() / total) if total else 0.0


def video_warping_error(inputs, outputs) -> float:
    """The mean :func:`warping_error` over consecutive pairs: the flow and the occlusions come
    from the input frames, the difference from the output frames (equal sizes)."""
    errs = []
    for k in range(1, len(inputs)):
        back, wts = frame_motion(inputs[k - 1], inputs[k])
        errs.append(warping_error(outputs[k - 1], outputs[k], back, wts))
    return float(np.mean(errs)) if errs else 0.0


__all__ = ["dis_flow", "warp", "consistency_weights", "frame_motion", "warping_error", "video_warping_error"]
