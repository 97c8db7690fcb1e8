"""The bundled MediaPipe face models, run by onnxruntime: BlazeFace detection, Face Mesh
landmarks and Selfie Segmentation (``faces/models/``, Apache-2.0; see models/README.md).

Nothing here imports ``mediapipe``: the ``.tflite`` files of the ``mediapipe==0.10.21`` wheel
were converted to ONNX once (scripts/convert_mediapipe_models.py) and ship with styleforge.
What MediaPipe's graphs do around the networks is written here from their documented
behaviour:

* **BlazeFace, short range** (Bazarevsky et al. 2019): the image letterboxed into 128×128,
  RGB in [-1, 1]; 896 SSD anchors (strides 8, 16, 16, 16 on 16×16 and 8×8 grids, 2 and 6
  anchors per cell, fixed size 1); per anchor a box ``(cx, cy, w, h)`` and 6 keypoints
  (the person's right eye, left eye, nose tip, mouth, right ear, left ear) as offsets in
  input pixels, and a logit; sigmoid score >= ``score_threshold`` (0.5 in MediaPipe);
  overlapping boxes (IoU > 0.3) merged by a score-weighted mean ("weighted NMS").
* **Face Mesh** (Kartynnik et al. 2019): the detection's box, square, 1.5 times its side,
  turned so the eyes are level, warped to 192×192 RGB in [0, 1]; 468 points (x, y in input
  pixels, z), and a face-presence logit. :data:`MESH_TO_68` picks the 68 points of the
  iBUG-300W layout (dlib, face_alignment) that Photo2Cartoon's preprocessing uses.
* **Selfie Segmentation** (general model): 256×256 RGB in [0, 1] -> person probability.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..utils.opencv import opencv
from .detect import Face, Point, invert_affine
from .masks import person_part

MODELS_DIR = Path(__file__).with_name("models")
DETECTION_MODEL = "face_detection_short_range.onnx"
LANDMARK_MODEL = "face_landmark.onnx"
SEGMENTATION_MODEL = "selfie_segmentation.onnx"

# Face Mesh indices of the 68 iBUG-300W points, in that layout's order (image-left first for a
# frontal face): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47 (36 and 45 the outer corners),
# mouth 48-67. Chosen by the anatomical meaning of each mesh vertex.
MESH_TO_68 = (
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)


def unavailable() -> str | None:
    """Why the bundled models cannot run here (None when they can)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed"
    missing = [n for n in (DETECTION_MODEL, LANDMARK_MODEL, SEGMENTATION_MODEL) if not (MODELS_DIR / n).is_file()]
    if missing:
        return f"bundled model file(s) missing from {MODELS_DIR}: {', '.join(missing)}"
    return None


@lru_cache(maxsize=None)
def session(name: str):
    """The onnxruntime session of a bundled model (one per process)."""
    import onnxruntime as ort

    path = MODELS_DIR / name
    if not path.is_file():
        raise ConfigError(f"bundled face model {path} is missing (reinstall styleforge)")
    so = ort.SessionOptions()
    # these graphs are small: a thread per core of a busy machine costs more than it gains
    so.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(name: str, x: np.ndarray) -> list[np.ndarray]:
    s = session(name)
    return s.run(None, {s.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})


def _output(name: str, outputs: list[np.ndarray], wanted: str) -> np.ndarray:
    names = [o.name for o in session(name).get_outputs()]
    return outputs[names.index(wanted)]


@lru_cache(maxsize=None)
def blazeface_anchors() -> np.ndarray:
    """896×2 anchor centres in [0, 1] (x, y), in the order of the model's outputs."""
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                out += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
    return np.asarray(out, np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (x0, y0, x1, y1) with each row of ``b``."""
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _similarity(center: Point, angle: float, scale: float, out_center: Point) -> np.ndarray:
    """2×3 map: turn by ``angle`` degrees counter-clockwise as displayed about ``center``,
    scale, and put ``center`` at ``out_center`` (cv2.getRotationMatrix2D's convention)."""
    a, b = scale * math.cos(math.radians(angle)), scale * math.sin(math.radians(angle))
    cx, cy = center
    return np.array([[a, b, out_center[0] - a * cx - b * cy], [-b, a, out_center[1] + b * cx - a * cy]])


class MediaPipeFaceDetector:
    """Faces with 68 landmarks from the bundled BlazeFace + Face Mesh (see the module docstring).

    ``score_threshold``: BlazeFace score a face needs (MediaPipe: 0.5). ``landmarks``: run Face
    Mesh on each face (rotation and the authors' crop come from its points); without it a face
    has only BlazeFace's eye keypoints. ``min_presence``: Face Mesh's face-presence probability
    a detection needs (MediaPipe's tracking threshold, 0.5): BlazeFace alone fires at >= 0.5 on
    76 of 430 shared pictures without people (facades, horses, COCO, AFHQ), the two together on
    5 animal faces (and one real boy), while all 266 shared photos and 70 cartoons pass both
    (docs/faces.md).
    Returns :class:`Face` objects like :class:`~styleforge.faces.detect.FaceDetector`: ``size``
    and ``center`` describe a box comparable to the Haar cascade's (brow to chin).
    """

    name = "mediapipe"

    def __init__(self, score_threshold: float = 0.5, nms_iou: float = 0.3, landmarks: bool = True,
                 min_presence: float = 0.5):
        if not 0 < score_threshold < 1:
            raise ConfigError(f"score_threshold is a probability in (0, 1), got {score_threshold}")
        why = unavailable()
        if why:
            raise ConfigError(f"the bundled MediaPipe face models cannot run: {why}")
        self.score_threshold, self.nms_iou, self.landmarks = score_threshold, nms_iou, landmarks
        self.min_presence = min_presence

    def raw_detections(self, image: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """``(score, box (x0, y0, x1, y1), keypoints 6×2)`` in image pixels, best first."""
        cv2 = opencv()
        h, w = image.shape[:2]
        side = max(h, w)
        # letterbox: the image centred on a black square, as MediaPipe's FIT scale mode
        ox, oy = (side - w) // 2, (side - h) // 2
        m = np.array([[128 / side, 0, 128 * ox / side], [0, 128 / side, 128 * oy / side]])
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        x = cv2.warpAffine(np.ascontiguousarray(rgb), m, (128, 128), flags=cv2.INTER_AREA if side > 128 else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out = _run(DETECTION_MODEL, (x.astype(np.float32) / 127.5 - 1.0)[None])
        reg = _output(DETECTION_MODEL, out, "regressors")[0]        # 896×16
        logit = _output(DETECTION_MODEL, out, "classificators")[0, :, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(logit.astype(np.float64), -100, 100)))
        keep = np.nonzero(score >= self.score_threshold)[0]
        if keep.size == 0:
            return []
        anchors = blazeface_anchors()[keep]
        r = reg[keep] / 128.0
        cx, cy = anchors[:, 0] + r[:, 0], anchors[:, 1] + r[:, 1]
        boxes = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], 1)
        kps = anchors[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
        # back to image pixels (undo the letterbox)
        boxes = boxes * side - np.array([ox, oy, ox, oy])
        kps = kps * side - np.array([ox, oy])
        score = score[keep]
        order = np.argsort(-score)
        boxes, kps, score = boxes[order], kps[order], score[order]
        found, left = [], np.ones(len(score), bool)
        for i in range(len(score)):
            if not left[i]:
                continue
            group = left & (_iou(boxes[i], boxes) > self.nms_iou)
            group[i] = True
            wts = score[group][:, None]
            found.append((float(score[i]), (boxes[group] * wts).sum(0) / wts.sum(),
                          (kps[group] * wts[:, :, None]).sum(0) / wts.sum()))
            left &= ~group
        return found

    def mesh(self, image: np.ndarray, box: np.ndarray, kps: np.ndarray) -> tuple[np.ndarray, float]:
        """468×2 Face Mesh points (image pixels) for one detection, and the presence score."""
        cv2 = opencv()
        (rx, ry), (lx, ly) = kps[0], kps[1]  # the person's right eye is on the image's left
        angle = math.degrees(math.atan2(ly - ry, lx - rx))
        center = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        side = 1.5 * max(box[2] - box[0], box[3] - box[1])
        m = _similarity(center, angle, 192 / side, (96.0, 96.0))
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        x = cv2.warpAffine(np.ascontiguousarray(rgb), m, (192, 192), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        out = _run(LANDMARK_MODEL, (x.astype(np.float32) / 255.0)[None])
        pts = _output(LANDMARK_MODEL, out, "conv2d_21").reshape(468, 3)[:, :2].astype(np.float64)
        presence = float(1.0 / (1.0 + np.exp(-_output(LANDMARK_MODEL, out, "conv2d_31").ravel()[0])))
        back = invert_affine(m)
        pts = pts @ back[:, :2].T + back[:, 2]
        return pts, presence

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces, largest first."""
        faces = []
        for score, box, kps in self.raw_detections(image):
            eyes = tuple(sorted((tuple(map(float, kps[0])), tuple(map(float, kps[1])))))
            landmarks = None
            if self.landmarks:
                pts, presence = self.mesh(image, box, kps)
                if presence < self.min_presence:
                    continue
                lm = pts[list(MESH_TO_68)]
                landmarks = tuple((float(x), float(y)) for x, y in lm)
                eyes = (tuple(lm[36:42].mean(0)), tuple(lm[42:48].mean(0)))
                center, size = _box_from_landmarks(lm)
            else:
                center = (float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2)
                size = float(max(box[2] - box[0], box[3] - box[1]))
            faces.append(Face(center=center, size=size, eyes=eyes, cascade="blazeface",
                              votes=int(round(100 * score)), landmarks=landmarks, detector="mediapipe"))
        return sorted(faces, key=lambda f: -f.size)


def _box_from_landmarks(lm: np.ndarray) -> tuple[Point, float]:
    """A Haar-like square face box from the 68 points: the landmarks' extent in the frame where
    the outer eye corners are level (brows to chin, jaw to jaw), centred on them."""
    (x36, y36), (x45, y45) = lm[36], lm[45]
    t = math.atan2(y45 - y36, x45 - x36)
    c, s = math.cos(t), math.sin(t)
    q = lm @ np.array([[c, -s], [s, c]])  # coordinates along and across the eye line
    lo, hi = q.min(0), q.max(0)
    mid = (lo + hi) / 2
    center = (float(mid[0] * c - mid[1] * s), float(mid[0] * s + mid[1] * c))
    return center, float(max(hi - lo))


class SelfieMatting:
    """Person matte from the bundled Selfie Segmentation network, cleaned like GrabCut's: the
    connected part holding the face, its holes filled, the network's soft edge kept within a
    few pixels of that part, then a light feather. ``threshold``: probability above which a
    pixel is person when finding the part. ``feather``: blur radius, a fraction of the side.
    ``refine``: re-estimate the alpha in a band around the edge with closed-form matting
    (Levin et al. 2008, the ``pymatting`` package of the ``faces`` extra): finer hair strands,
    about a second per crop."""

    name = "selfie"

    def __init__(self, threshold: float = 0.5, feather: float = 0.004, refine: bool = False):
        why = unavailable()
        if why:
            raise ConfigError(f"the bundled selfie-segmentation model cannot run: {why}")
        if not 0 < threshold < 1:
            raise ConfigError(f"selfie matting threshold must be in (0, 1), got {threshold}")
        if refine:
            try:
                import pymatting  # noqa: F401
            except ImportError as e:
                raise ConfigError("refining the matte needs pymatting: pip install 'styleforge[faces]' "
                                  "(or pip install pymatting)") from e
        self.threshold, self.feather, self.refine = threshold, feather, refine

    def refined(self, image: np.ndarray, alpha: np.ndarray, work: int = 256) -> np.ndarray:
        """``alpha`` with its uncertain band (neither firmly person nor background, ~2 % of the
        side each way) solved by closed-form matting on the image, at most ``work`` px wide."""
        from pymatting import estimate_alpha_cf

        cv2 = opencv()
        h, w = alpha.shape
        r = max(2, round(0.02 * max(h, w)))
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        fg = cv2.erode((alpha > 0.95).astype(np.uint8), ker) > 0
        bg = cv2.erode((alpha < 0.05).astype(np.uint8), ker) > 0
        trimap = np.full((h, w), 0.5)
        trimap[fg], trimap[bg] = 1.0, 0.0
        k = min(1.0, work / max(h, w))
        size = (max(1, round(w * k)), max(1, round(h * k)))
        img = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
        tri = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
        est = estimate_alpha_cf(img, tri)
        est = cv2.resize(est.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        out = alpha.copy()
        unknown = ~(fg | bg)
        out[unknown] = est[unknown]
        return np.clip(out, 0.0, 1.0)

    def probability(self, image: np.ndarray) -> np.ndarray:
        """The network's person probability at the image's size (H×W float32)."""
        cv2 = opencv()
        h, w = image.shape[:2]
        x = cv2.resize(np.ascontiguousarray(image), (256, 256), interpolation=cv2.INTER_AREA if max(h, w) > 256
                       else cv2.INTER_LINEAR)
        p = _run(SEGMENTATION_MODEL, (x.astype(np.float32) / 255.0)[None])[0][0, :, :, 0]
        return np.clip(cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)

    def __call__(self, image: np.ndarray, face_box=None) -> np.ndarray:
        cv2 = opencv()
        h, w = image.shape[:2]
        p = self.probability(image)
        hard = (p > self.threshold).astype(np.uint8)
        part = person_part(hard, face_box)
        r = max(1, round(0.01 * max(h, w)))
        near = cv2.dilate(part, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
        alpha = np.where(near, p, 0.0).astype(np.float32)
        alpha[(part > 0) & (hard == 0)] = 1.0  # filled holes
        if self.refine:
            alpha = self.refined(image, alpha)
        k = max(1, round(self.feather * max(h, w)))
        alpha = cv2.GaussianBlur(alpha, (2 * k + 1, 2 * k + 1), 0)
        return np.clip(alpha, 0.0, 1.0)
