"""Face and eye detection with OpenCV's bundled Haar cascades (no download, no weight file).

The detector runs Viola-Jones cascades from the ``opencv-python-headless`` wheel
(``cv2.data.haarcascades``): ``haarcascade_frontalface_alt2.xml`` first (fewest false
positives in our trials), then ``haarcascade_frontalface_default.xml`` when the first finds
nothing (more sensitive; finds more drawn faces). When neither finds a face in the upright
image, the search is repeated on the image rotated by each angle of ``retry_angles`` (heads
tilted by more than the ~15° a frontal cascade tolerates), and the boxes are mapped back.

Eyes come from ``haarcascade_eye.xml`` inside the upper part of each face box (in the frame
in which the face was found, so a tilted head is searched upright). A pair is accepted only
when it looks like two eyes (one per half of the face, similar size, roughly level, a plausible
distance apart); otherwise :attr:`Face.eyes` is ``None`` and alignment does not rotate.

Conventions: image coordinates are pixels, x right, y down, of the image as given. The roll
angle is ``degrees(atan2(y_right - y_left, x_right - x_left))`` of the eye line, left/right as
seen in the image: positive when the eye on the image's right is lower (the head leans
clockwise as displayed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..utils.opencv import opencv

Point = tuple[float, float]

FACE_CASCADES = ("haarcascade_frontalface_alt2.xml", "haarcascade_frontalface_default.xml")
EYE_CASCADE = "haarcascade_eye.xml"


def cascade_dir() -> Path:
    """Folder of the Haar cascade XML files shipped in the OpenCV wheel.

    The ``opencv-python(-headless)`` 4.x wheels ship them under ``cv2/data``; the 5.0 wheels
    ship that folder empty, hence the ``<5`` pin in the dependencies. A system install
    (``/usr/share/opencv4/haarcascades``) is tried as well.
    """
    cv2 = opencv()
    candidates = []
    data = getattr(cv2, "data", None)
    if data is not None and getattr(data, "haarcascades", None):
        candidates.append(Path(data.haarcascades))
    candidates += [Path("/usr/share/opencv4/haarcascades"), Path("/usr/share/opencv/haarcascades"),
                   Path("/usr/local/share/opencv4/haarcascades")]
    for c in candidates:
        if (c / FACE_CASCADES[0]).is_file() and (c / EYE_CASCADE).is_file():
            return c
    raise ConfigError(
        f"OpenCV {cv2.__version__} has no Haar cascade files (looked in "
        f"{', '.join(map(str, candidates))}); the opencv-python-headless 4.x wheels ship them: "
        "pip install 'opencv-python-headless>=4.5,<5'")


def _load_cascade(name: str):
    cv2 = opencv()
    path = cascade_dir() / name
    c = cv2.CascadeClassifier(str(path))
    if c.empty():
        raise ConfigError(f"cannot load the OpenCV cascade {path}")
    return c


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the image it was detected in."""

    center: Point
    """Centre of the detector's box."""
    size: float
    """Side of the detector's (square) box, roughly brow-to-chin and cheek-to-cheek."""
    eyes: tuple[Point, Point] | None = None
    """Eye centres (left in the image first), or None when no plausible pair was found."""
    detector_angle: float = 0.0
    """Rotation (degrees, counter-clockwise as displayed) of the image in which the face was
    found: 0 unless found by the rotated retry."""
    cascade: str = FACE_CASCADES[0]
    votes: int = 0
    """Number of overlapping raw detections grouped into this box (a confidence; for BlazeFace
    the score in percent)."""
    landmarks: tuple[Point, ...] | None = None
    """68 points in the iBUG-300W layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth
    48-67), from a landmark model; None from the Haar cascades."""
    detector: str = "haar"
    """Which detector found the face: ``haar`` or ``mediapipe``."""

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``: the detector's box (for a face found by the rotated retry,
        the upright square of the same size around its centre)."""
        cx, cy = self.center
        h = self.size / 2
        return (cx - h, cy - h, cx + h, cy + h)

    @property
    def roll(self) -> float | None:
        """Angle of the eye line in degrees (see the module docstring), None without eyes."""
        if self.eyes is None:
            return None
        (lx, ly), (rx, ry) = self.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))

    @property
    def tilt(self) -> float:
        """Best estimate of the head's roll (same sign as :attr:`roll`): from the eyes when
        found, else the angle under which the face was found (a head leaning clockwise by 25°
        is upright in the image turned counter-clockwise by 25°; 0 for an upright detection)."""
        r = self.roll
        return r if r is not None else self.detector_angle


def _rotation(shape, angle: float):
    """Affine matrix rotating an image of ``shape`` by ``angle`` degrees (counter-clockwise as
    displayed) about its centre onto a canvas large enough to hold all of it, and that canvas'
    size."""
    cv2 = opencv()
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(w * c + h * s)), int(math.ceil(w * s + h * c))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, (nw, nh)


def _apply(m: np.ndarray, p: Point) -> Point:
    return (float(m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2]), float(m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2]))


def invert_affine(m: np.ndarray) -> np.ndarray:
    a = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


class FaceDetector:
    """Finds frontal faces and their eyes in RGB uint8 arrays (H×W×3) or grayscale (H×W).

    ``max_side``: the image is shrunk so that its longer side is at most this before
    detection (speed; boxes are scaled back). ``min_face``: smallest face searched, as a
    fraction of the shorter side of the (shrunk) image, and at least 20 px there.
    ``votes``: per cascade, ``(with_eyes, without_eyes)``: a box is a face when at least
    ``without_eyes`` overlapping detections vote for it, or ``with_eyes`` do and a plausible pair
    of eyes is found inside it. (The defaults were chosen on real photos, cartoon portraits,
    facades and horses: see docs/faces.md.) ``retry_angles``: rotations tried, in order, when the upright image has no face;
    ``()`` turns the retry off.
    """

    def __init__(self, max_side: int = 800, min_face: float = 0.06,
                 votes: tuple[tuple[int, int], ...] = ((8, 16), (10, 30)), scale_factor: float = 1.1, retry_angles: tuple[float, ...] = (25.0, -25.0),
                 find_eyes: bool = True):
        if max_side < 64:
            raise ConfigError(f"max_side must be at least 64, got {max_side}")
        if not 0 < min_face < 1:
            raise ConfigError(f"min_face is a fraction of the image's shorter side, in (0, 1); got {min_face}")
        self.max_side = max_side
        self.min_face = min_face
        self.votes = tuple(tuple(v) for v in votes)
        if len(self.votes) != len(FACE_CASCADES):
            raise ConfigError(f"votes needs one (with_eyes, without_eyes) pair per cascade ({len(FACE_CASCADES)})")
        self.scale_factor = scale_factor
        self.retry_angles = tuple(retry_angles)
        self.find_eyes = find_eyes
        self._faces = [(_load_cascade(n), n) for n in FACE_CASCADES]
        self._eyes = _load_cascade(EYE_CASCADE)

    # -- public -------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces, largest first."""
        cv2 = opencv()
        gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        scale = min(1.0, self.max_side / max(h, w))
        small = gray if scale == 1.0 else cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                     interpolation=cv2.INTER_AREA)
        small = cv2.equalizeHist(small)
        faces: list[Face] = []
        for angle in (0.0, *self.retry_angles):
            faces = self._detect_at(small, angle)
            if faces:
                break
        if self.find_eyes:
            faces = [self._refine_eyes(small, f) for f in faces]
        out = [self._rescale(f, 1.0 / scale) for f in faces]
        return sorted(out, key=lambda f: -f.size)

    # -- internals ----------------------------------------------------------------------
    def _detect_at(self, gray: np.ndarray, angle: float) -> list[Face]:
        cv2 = opencv()
        if angle:
            m, (nw, nh) = _rotation(gray.shape, angle)
            # replicate the border so the canvas corners do not form strong artificial edges
            work = cv2.warpAffine(gray, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            back = invert_affine(m)
        else:
            work, back = gray, None
        short = min(gray.shape)
        min_px = max(20, int(self.min_face * short))
        faces = []
        for (cascade, name), (with_eyes, without_eyes) in zip(self._faces, self.votes):
            boxes, counts = cascade.detectMultiScale2(work, scaleFactor=self.scale_factor, minNeighbors=with_eyes,
                                                      minSize=(min_px, min_px))
            accepted = []
            for (x, y, bw, bh), n in zip(np.asarray(boxes, dtype=float).reshape(-1, 4), np.ravel(counts)):
                eyes = self._find_eyes(work, x, y, bw, bh) if self.find_eyes or n < without_eyes else None
                if n >= without_eyes or eyes is not None:
                    accepted.append((x, y, bw, bh, int(n), eyes))
            if accepted:
                break
        else:
            return []
        for x, y, bw, bh, n, eyes in _suppress_nested(accepted):
            c = (x + bw / 2, y + bh / 2)
            if back is not None:
                c = _apply(back, c)
                if eyes is not None:
                    eyes = tuple(sorted(_apply(back, e) for e in eyes))  # left in the image first
            faces.append(Face(center=c, size=float(max(bw, bh)), eyes=eyes if self.find_eyes else None,
                              detector_angle=angle, cascade=name, votes=n))
        return faces

    def _refine_eyes(self, gray: np.ndarray, f: Face, rounds: int = 2) -> Face:
        """Search the eyes again in the image turned so that the current eye line is level:
        the eye cascade is trained on upright eyes and under-reports the tilt of a leaning head
        (by about a third at 20°); each round measures only what is left."""
        cv2 = opencv()
        for _ in range(rounds):
            r = f.roll
            if r is None or abs(r) < 3.0:
                break
            m = cv2.getRotationMatrix2D(f.center, r, 1.0)  # counter-clockwise by r: eyes level
            work = cv2.warpAffine(gray, m, (gray.shape[1], gray.shape[0]), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            cx, cy = f.center
            eyes = self._find_eyes(work, cx - f.size / 2, cy - f.size / 2, f.size, f.size)
            if eyes is None:
                break
            back = invert_affine(m)
            eyes = tuple(sorted(_apply(back, e) for e in eyes))
            f = replace(f, eyes=eyes)
        return f

    def _find_eyes(self, gray, x, y, bw, bh) -> tuple[Point, Point] | None:
        """The most plausible pair of eye detections in the upper part of the box, or None."""
        cv2 = opencv()
        x0, y0 = int(round(x)), int(round(y + 0.12 * bh))
        x1, y1 = int(round(x + bw)), int(round(y + 0.58 * bh))
        roi = gray[max(0, y0):y1, max(0, x0):x1]
        if roi.size == 0:
            return None
        x0, y0 = max(0, x0), max(0, y0)
        # search at a fixed face width so the eye cascade's size limits mean the same everywhere
        s = 160.0 / bw
        roi = cv2.resize(roi, (max(1, round(roi.shape[1] * s)), max(1, round(roi.shape[0] * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        cands = self._eyes.detectMultiScale(roi, scaleFactor=1.05, minNeighbors=3, minSize=(14, 14),
                                            maxSize=(60, 60))
        if len(cands) < 2:
            return None
        # candidates as (cx, cy, size) in face-box units (0..1 across the box)
        pts = [((x0 - x + (ex + ew / 2) / s) / bw, (y0 - y + (ey + eh / 2) / s) / bh, ew / s / bw)
               for ex, ey, ew, eh in cands]
        best, best_cost = None, math.inf
        for i, a in enumerate(pts):
            for b in pts[i + 1:]:
                left, right = (a, b) if a[0] < b[0] else (b, a)
                dx, dy = right[0] - left[0], right[1] - left[1]
                if not (left[0] < 0.5 < right[0]) or not 0.22 < dx < 0.7 or abs(dy) > 0.45 * dx:
                    continue
                if max(left[2], right[2]) > 1.8 * min(left[2], right[2]):
                    continue
                # distance from the typical eye positions of a frontal-face box
                cost = ((left[0] - 0.31) ** 2 + (right[0] - 0.69) ** 2 + (left[1] - 0.38) ** 2
                        + (right[1] - 0.38) ** 2)
                if cost < best_cost:
                    best, best_cost = (left, right), cost
        if best is None:
            return None
        return tuple((x + p[0] * bw, y + p[1] * bh) for p in best)

    @staticmethod
    def _rescale(f: Face, k: float) -> Face:
        if k == 1.0:
            return f
        eyes = None if f.eyes is None else tuple((ex * k, ey * k) for ex, ey in f.eyes)
        return replace(f, center=(f.center[0] * k, f.center[1] * k), size=f.size * k, eyes=eyes)


def _suppress_nested(found: list[tuple]) -> list[tuple]:
    """Drop detections whose centre lies inside a larger one (a cascade sometimes reports a
    face and a part of it); items start with ``(x, y, w, h, ...)``."""
    kept: list[tuple] = []
    for d in sorted(found, key=lambda d: -d[2]):
        cx, cy = d[0] + d[2] / 2, d[1] + d[3] / 2
        if any(k[0] <= cx <= k[0] + k[2] and k[1] <= cy <= k[1] + k[3] for k in kept):
            continue
        kept.append(d)
    return kept
