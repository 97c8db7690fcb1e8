"""Person segmentation of a face crop: a matte (H×W float32 in [0, 1], 1 = person).

Pluggable: anything callable as ``matting(image, face_box) -> alpha`` works, where ``image``
is the H×W×3 uint8 RGB crop and ``face_box`` the ``(x0, y0, x1, y1)`` face box in it (or None).
Three come with styleforge:

* :class:`~styleforge.faces.mediapipe_models.SelfieMatting` (default): the bundled MediaPipe
  selfie-segmentation network, cleaned as below.
* :class:`GrabCutMatting` (the fallback when the bundled model cannot run, no weights): OpenCV's GrabCut (Rother et al. 2004) seeded
  from where a portrait crop's parts are: the inner face box is certainly person, the head
  around it and the body below it probably person, the top corners certainly background,
  everything else probably background. The hard result is cleaned (the connected part that
  holds the face, holes filled) and its edge softened.
* :class:`OnnxMatting`: a user-provided portrait-matting network run by onnxruntime.

**ONNX model contract** (what :class:`OnnxMatting` feeds and reads):

* input: the graph's first input, float32, one RGB image, ``1×3×H×W`` (NCHW) or ``1×H×W×3``
  (NHWC, recognised when the last dimension is 3 and the second is not). Values:
  ``(pixel / 255 - mean) / std``, by default ``mean = std = 0.5`` (range [-1, 1], as MODNet);
  ``input_range="0,1"`` gives ``mean=0, std=1``. H×W: the model's fixed size when its input
  has one, else ``size`` (default 512) for both sides, a multiple of 32.
* output: the graph's first output, the alpha matte at any resolution, shaped ``1×1×h×w``,
  ``1×h×w×1``, ``1×h×w`` or ``h×w``; a 2-channel output (background, person scores) uses
  channel 1. Values are clipped to [0, 1] after optional ``sigmoid``. The matte is resized
  (bilinear) to the crop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, first_line
from ..utils.opencv import opencv
from .masks import Box, person_part



class GrabCutMatting:
    """Classical matte from GrabCut seeded by the face box; see the module docstring.

    ``iterations``: GrabCut rounds. ``work_size``: the crop is segmented at this side (speed),
    the matte resized back. ``feather``: width of the soft edge, as a fraction of the side.
    """

    def __init__(self, iterations: int = 4, work_size: int = 256, feather: float = 0.006):
        if iterations < 1:
            raise ConfigError(f"GrabCut needs at least 1 iteration, got {iterations}")
        self.iterations = iterations
        self.work_size = work_size
        self.feather = feather

    def seeds(self, shape: tuple[int, int], face_box: Box | None) -> np.ndarray:
        """The GrabCut seed mask (cv2.GC_* labels) for a crop of ``shape`` (H, W)."""
        cv2 = opencv()
        h, w = shape
        if face_box is None:  # a centred portrait crop: assume the face is the middle third
            face_box = (w / 3, h / 3, 2 * w / 3, 2 * h / 3)
        x0, y0, x1, y1 = face_box
        fw, fh = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        # probably person: the head, an ellipse a bit larger than the box (hair, ears), and the
        # body, from the chin down, widening to the bottom edge (neck and shoulders)
        cv2.ellipse(mask, (round(cx), round(cy - 0.1 * fh)), (round(0.62 * fw), round(0.75 * fh)), 0, 0, 360,
                    int(cv2.GC_PR_FGD), -1)
        body = np.array([[cx - 0.35 * fw, y1 - 0.1 * fh], [cx + 0.35 * fw, y1 - 0.1 * fh],
                         [cx + 1.1 * fw, y1 + 1.2 * fh], [cx - 1.1 * fw, y1 + 1.2 * fh]], np.int32)
        cv2.fillPoly(mask, [body], int(cv2.GC_PR_FGD))
        cv2.rectangle(mask, (round(cx - 1.1 * fw), round(y1 + 1.2 * fh)), (round(cx + 1.1 * fw), h), int(cv2.GC_PR_FGD), -1)
        # certainly background: above the chin line, outside a generous head ellipse
        bg = np.zeros((h, w), np.uint8)
        cv2.rectangle(bg, (0, 0), (w - 1, round(y1 - 0.1 * fh)), 1, -1)
        cv2.ellipse(bg, (round(cx), round(cy - 0.1 * fh)), (round(1.0 * fw), round(1.1 * fh)), 0, 0, 360, 0, -1)
        mask[bg > 0] = cv2.GC_BGD
        # certainly person: the inner face (eyes, nose, mouth), clear of hair and background
        cv2.ellipse(mask, (round(cx), round(cy + 0.05 * fh)), (round(0.3 * fw), round(0.36 * fh)), 0, 0, 360,
                    int(cv2.GC_FGD), -1)
        return mask

    def __call__(self, image: np.ndarray, face_box: Box | None = None) -> np.ndarray:
        cv2 = opencv()
        h, w = image.shape[:2]
        k = min(1.0, self.work_size / max(h, w))
        small = image if k == 1.0 else cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                                  interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        box = None if face_box is None else tuple(v * k for v in face_box)
        mask = self.seeds((sh, sw), box)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        # GrabCut draws its initial colour models with k-means from OpenCV's global RNG
        cv2.setRNGSeed(0)
        cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), mask, None, bgd, fgd, self.iterations,
                    cv2.GC_INIT_WITH_MASK)
        fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
        fg = person_part(fg, box)
        alpha = fg.astype(np.float32)
        if k != 1.0:
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        r = max(1, round(self.feather * max(h, w)))
        alpha = cv2.GaussianBlur(alpha, (2 * r + 1, 2 * r + 1), 0)
        return np.clip(alpha, 0.0, 1.0)


class OnnxMatting:
    """A user-provided ONNX portrait-matting model (see the module docstring for its contract)."""

    def __init__(self, path, size: int = 512, input_range: str = "-1,1", sigmoid: bool = False,
                 providers: list[str] | None = None):
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"matting model not found: {path}")
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - a base dependency
            raise ConfigError("ONNX matting needs onnxruntime: pip install onnxruntime") from e
        if size < 32 or size % 32:
            raise ConfigError(f"matting size must be a positive multiple of 32, got {size}")
        ranges = {"-1,1": (0.5, 0.5), "0,1": (0.0, 1.0)}
        if input_range not in ranges:
            raise ConfigError(f"matting input range must be one of {', '.join(ranges)}; got {input_range!r}")
        self.mean, self.std = ranges[input_range]
        self.sigmoid = sigmoid
        try:
            self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise CheckpointError(f"cannot load the ONNX matting model {path}: {first_line(e)}") from e
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise CheckpointError(f"matting model {path}: input {inp.name!r} has shape {shape}; expected "
                                  "1×3×H×W or 1×H×W×3")
        self.nhwc = shape[3] == 3 and shape[1] != 3
        hw = shape[1:3] if self.nhwc else shape[2:4]
        fixed = [d if isinstance(d, int) and d > 0 else None for d in hw]
        self.input_hw = (fixed[0] or size, fixed[1] or size)
        self.path = path

    def __call__(self, image: np.ndarray, face_box: Box | None = None) -> np.ndarray:
        cv2 = opencv()
        h, w = image.shape[:2]
        ih, iw = self.input_hw
        x = cv2.resize(image, (iw, ih), interpolation=cv2.INTER_AREA if ih < h else cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 255.0 - self.mean) / self.std
        x = x[None] if self.nhwc else x.transpose(2, 0, 1)[None]
        out = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0], np.float32)
        alpha = _matte_2d(out, self.path)
        if self.sigmoid:
            alpha = 1.0 / (1.0 + np.exp(-alpha))
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(alpha, 0.0, 1.0)


def _matte_2d(out: np.ndarray, path) -> np.ndarray:
    a = out
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        if a.shape[0] in (1, 2):      # C×h×w
            a = a[-1]
        elif a.shape[-1] in (1, 2):   # h×w×C
            a = a[..., -1]
    if a.ndim != 2:
        raise CheckpointError(f"matting model {path}: output of shape {tuple(out.shape)} is not one matte "
                              "(expected 1×1×h×w, 1×h×w×1, 1×h×w or h×w)")
    return np.ascontiguousarray(a)


MATTINGS = ("auto", "selfie", "grabcut", "none")


def load_matting(spec="auto", **kw):
    """``"auto"`` (or None) -> the bundled selfie-segmentation matte
    (:class:`~styleforge.faces.mediapipe_models.SelfieMatting`) when it can run, else
    :class:`GrabCutMatting`; ``"selfie"``, ``"grabcut"``: that one; a path to an ``.onnx``
    file -> :class:`OnnxMatting` (``kw`` go to it); ``"none"`` -> None (no segmentation); a
    callable is returned as it is. ``kw`` go to the selfie or ONNX matting (e.g. ``refine=True``,
    ``input_range="0,1"``). :func:`matting_name` says which one was taken."""
    from . import mediapipe_models

    if callable(spec):
        return spec
    if spec is None or spec == "auto":
        return mediapipe_models.SelfieMatting(**kw) if mediapipe_models.unavailable() is None else GrabCutMatting()
    if spec == "selfie":
        return mediapipe_models.SelfieMatting(**kw)
    if spec == "grabcut":
        return GrabCutMatting()
    if spec == "none":
        return None
    p = Path(spec)
    if p.suffix.lower() != ".onnx":
        raise ConfigError(f"matting must be one of {', '.join(MATTINGS)} or an .onnx file; got {spec!r}")
    return OnnxMatting(p, **kw)


def matting_name(matting) -> str:
    """How a matting is described to the user (the 'which path' note of the commands)."""
    from . import mediapipe_models

    if matting is None:
        return "none (background kept)"
    if isinstance(matting, mediapipe_models.SelfieMatting):
        return "bundled MediaPipe selfie segmentation" + (", edges refined by pymatting" if matting.refine else "")
    if isinstance(matting, GrabCutMatting):
        why = mediapipe_models.unavailable()
        return "GrabCut" + (f" (bundled model unavailable: {why})" if why else "")
    if isinstance(matting, OnnxMatting):
        return f"ONNX model {matting.path}"
    return type(matting).__name__
