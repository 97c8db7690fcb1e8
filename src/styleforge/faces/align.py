"""Aligned square face crops: rotate so the eyes are level, crop with a margin, resize.

One affine map does all three (no intermediate rotated full image): ``matrix`` (2×3) takes a
point of the photo to the crop. In the crop the head is upright, the detector's box has side
``size / (1 + 2 * margin)`` and its centre sits at ``(size / 2, center_y * size)``.

The defaults frame a face the way the Photo2Cartoon training data are framed: on the 204
cartoon portraits minivision released and on the SCUT-FBP5500 photos beside them, OpenCV's
face box measures a median 0.63 of the image side with its centre at 0.535 of the height
(docs/faces.md), hence ``margin=0.3`` (box = 1/1.6 of the side) and ``center_y=0.535``.

A face with 68 landmarks (the bundled Face Mesh) is framed by Photo2Cartoon's own rule
instead (:func:`landmark_crop_matrix`, the authors' ``utils/preprocess.py``): turned so the
outer eye corners (points 36 and 45) are level, then the landmarks' extent widened by 0.8 of
its height above, 0.3 below and 0.3 of its width on each side, and made square by growing the
shorter side about its centre. ``framing="box"`` uses the box rule for every face.

Pixels the crop takes from outside the photo are white (the background colour of the whitened
crops) and are marked in :attr:`FaceCrop.valid`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..utils.opencv import opencv
from .detect import Face, Point


@dataclass
class FaceCrop:
    """A face cut out of a photo, and the map back to the photo."""

    image: np.ndarray
    """size×size×3 uint8 RGB: the aligned crop, not yet segmented."""
    matrix: np.ndarray
    """2×3 affine map from photo pixels to crop pixels."""
    face: Face
    """The detection, in photo coordinates."""
    angle: float
    """Rotation applied (degrees, counter-clockwise as displayed): the face's tilt."""
    valid: np.ndarray
    """size×size bool: True where the crop shows the photo (False: outside it, filled white)."""
    alpha: np.ndarray | None = None
    """size×size float32 in [0, 1]: the person matte, once segmented."""

    @property
    def size(self) -> int:
        return self.image.shape[0]

    def to_crop(self, p: Point) -> Point:
        m = self.matrix
        return (float(m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2]), float(m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2]))

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The face box in crop pixels ``(x0, y0, x1, y1)`` (upright: the crop is aligned)."""
        cx, cy = self.to_crop(self.face.center)
        h = self.face.size * self.scale / 2
        return (cx - h, cy - h, cx + h, cy + h)

    @property
    def eyes(self) -> tuple[Point, Point] | None:
        if self.face.eyes is None:
            return None
        return (self.to_crop(self.face.eyes[0]), self.to_crop(self.face.eyes[1]))

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel."""
        return float(math.hypot(self.matrix[0, 0], self.matrix[0, 1]))

    def whitened(self, color: int = 255) -> np.ndarray:
        """The crop with the background (``1 - alpha``) replaced by ``color``; needs :attr:`alpha`."""
        if self.alpha is None:
            raise ConfigError("this crop has not been segmented: no alpha to whiten with")
        return whiten(self.image, self.alpha, color)


# Photo2Cartoon's crop around the 68 landmarks (utils/preprocess.py): fractions of the
# landmarks' height added above and below, and of their width on each side
LANDMARK_MARGINS = (0.8, 0.3, 0.3)


def landmark_crop_matrix(landmarks, size: int, align: bool = True) -> tuple[np.ndarray, float]:
    """The photo→crop map of Photo2Cartoon's landmark rule (module docstring), and its angle.

    The authors turn the whole photo about its centre and crop in the turned photo; turning
    about another point only shifts the crop, so this is the same square, in one warp."""
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (68, 2):
        raise ConfigError(f"the landmark crop needs 68 (x, y) points, got an array of shape {pts.shape}")
    (x36, y36), (x45, y45) = pts[36], pts[45]
    angle = math.degrees(math.atan2(y45 - y36, x45 - x36)) if align else 0.0
    c, s_ = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rot = np.array([[c, s_], [-s_, c]])  # counter-clockwise as displayed by `angle`: eyes level
    q = pts @ rot.T
    (left, top), (right, bottom) = q.min(0), q.max(0)
    lh, lw = bottom - top, right - left
    above, below, side = LANDMARK_MARGINS
    y0, y1 = top - above * lh, bottom + below * lh
    x0, x1 = left - side * lw, right + side * lw
    span = max(y1 - y0, x1 - x0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    k = size / span
    m = np.hstack([k * rot, [[size / 2 - k * cx], [size / 2 - k * cy]]])
    return m, angle


def crop_matrix(face: Face, size: int, margin: float = 0.3, center_y: float = 0.535,
                align: bool = True, framing: str = "auto") -> tuple[np.ndarray, float]:
    """The photo→crop affine map for ``face`` and the rotation angle it applies. ``framing``:
    ``auto`` (the landmark rule when the face has landmarks, else the box rule) or ``box``."""
    if framing not in ("auto", "box"):
        raise ConfigError(f"framing must be 'auto' or 'box', got {framing!r}")
    if size < 8:
        raise ConfigError(f"crop size must be at least 8 pixels, got {size}")
    if margin < 0:
        raise ConfigError(f"margin is a fraction of the face box added on each side, >= 0; got {margin}")
    if not 0 < center_y < 1:
        raise ConfigError(f"center_y is a fraction of the crop height in (0, 1); got {center_y}")
    if framing == "auto" and face.landmarks is not None:
        return landmark_crop_matrix(face.landmarks, size, align)
    angle = face.tilt if align else 0.0
    s = size / (face.size * (1 + 2 * margin))
    # rotation by `angle` counter-clockwise as displayed (y down), as cv2.getRotationMatrix2D
    a, b = s * math.cos(math.radians(angle)), s * math.sin(math.radians(angle))
    cx, cy = face.center
    m = np.array([[a, b, size / 2 - a * cx - b * cy],
                  [-b, a, center_y * size + b * cx - a * cy]], dtype=np.float64)
    return m, angle


def crop_face(image: np.ndarray, face: Face, size: int = 256, margin: float = 0.3,
              center_y: float = 0.535, align: bool = True, border: str = "white",
              framing: str = "auto") -> FaceCrop:
    """Aligned square crop of ``face`` from the RGB uint8 ``image`` (see the module docstring);
    ``border``: see :func:`warp`."""
    m, angle = crop_matrix(face, size, margin, center_y, align, framing)
    crop, valid = warp(image, m, size, border)
    return FaceCrop(image=crop, matrix=m, face=face, angle=angle, valid=valid)


def warp(image: np.ndarray, m: np.ndarray, size: int, border: str = "white") -> tuple[np.ndarray, np.ndarray]:
    """``image`` warped by the affine ``m`` onto a size×size canvas, and the mask of canvas
    pixels that come from inside the image. ``border``: ``"white"`` or ``"replicate"``, what
    fills the rest (replicate: the image's edge pixels repeated, what segmentation is shown, so
    that a white fill does not pass for background colour)."""
    cv2 = opencv()
    if border not in ("white", "replicate"):
        raise ConfigError(f"border must be 'white' or 'replicate', got {border!r}")
    # warpAffine has no INTER_AREA: when the output is much smaller than the photo, shrink the
    # photo first (area averaging) so the crop does not alias, and warp from the smaller copy
    scale = math.hypot(m[0, 0], m[0, 1])
    src, m_warp = np.ascontiguousarray(image), m
    if scale < 0.5:
        k = 2 * scale  # the copy's scale: the remaining warp shrinks by about 0.5
        small = cv2.resize(src, (max(1, round(src.shape[1] * k)), max(1, round(src.shape[0] * k))),
                           interpolation=cv2.INTER_AREA)
        m_warp = m @ np.array([[src.shape[1] / small.shape[1], 0, 0], [0, src.shape[0] / small.shape[0], 0],
                               [0, 0, 1.0]])
        src = small
    mode = cv2.BORDER_CONSTANT if border == "white" else cv2.BORDER_REPLICATE
    out = cv2.warpAffine(src, m_warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode,
                         borderValue=(255, 255, 255))
    inside = np.full(src.shape[:2], 255, np.uint8)
    valid = cv2.warpAffine(inside, m_warp, (size, size), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return out, valid


def whiten(image: np.ndarray, alpha: np.ndarray, color: int = 255) -> np.ndarray:
    """``image * alpha + color * (1 - alpha)``, rounded to uint8 (Photo2Cartoon's whitening)."""
    if alpha.shape != image.shape[:2]:
        raise ConfigError(f"matte of shape {alpha.shape} does not match the image {image.shape[:2]}")
    a = alpha.astype(np.float32)[..., None]
    out = image.astype(np.float32) * a + float(color) * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def paste_back(photo: np.ndarray, crop: FaceCrop, result: np.ndarray, feather: float = 0.04,
               edge: float = 0.015, background: float | None = 255) -> np.ndarray:
    """Put ``result`` (the translated crop, any square size) back where ``crop`` came from.

    Blend mask: the crop's matte (the whole crop when it was not segmented), pulled in by
    ``edge`` of the crop side and softened over the same width, so the seam runs along the
    person's outline, inside it, and no pixel of the (white) background of ``result`` shows;
    times a square window fading over ``feather`` of the side at the crop's border. Colours:
    ``result`` was whitened with the matte (``background``: the colour, None when it was not),
    so where the matte is >= 0.5 the whitening is undone (``(y - 255 (1 - a)) / a``) and below
    that the pixels are replaced by the mean colour of the nearby firm ones (a normalised
    blur): the soft edge fades from the cartoon's own colours into the photo's, without a pale
    halo. Returns a new RGB uint8 array of the photo's size.
    """
    cv2 = opencv()
    size = crop.size
    if result.shape[:2] != (size, size):
        result = cv2.resize(result, (size, size), interpolation=cv2.INTER_AREA if result.shape[0] > size
                            else cv2.INTER_CUBIC)
    res = result.astype(np.float32)
    if crop.alpha is None:
        mask = np.ones((size, size), np.float32)
    else:
        a = crop.alpha.astype(np.float32)
        solid = (a >= 0.5).astype(np.float32)
        if background is not None:  # undo the whitening where the matte is firm: the cartoon's colours
            res = np.where(solid[..., None] > 0, (res - background * (1 - a[..., None])) / np.maximum(a[..., None], 0.5), res)
            res = np.clip(res, 0, 255)
        sigma = max(1.0, 0.03 * size)
        num = cv2.GaussianBlur(res * solid[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(solid, (0, 0), sigma)[..., None]
        # far from any solid pixel (where the mask is ~0 anyway): their mean colour
        mean = res[solid > 0].mean(0) if solid.any() else res.reshape(-1, 3).mean(0)
        fill = np.where(den > 1e-3, num / np.maximum(den, 1e-3), mean)
        res = np.where(solid[..., None] > 0, res, fill)
        r = max(1, int(round(edge * size)))
        inner = cv2.erode(a, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        mask = cv2.GaussianBlur(inner, (0, 0), r)
    f = max(1, int(round(feather * size)))
    ramp = np.clip((np.arange(size, dtype=np.float32) + 0.5) / f, 0, 1)
    ramp = np.minimum(ramp, ramp[::-1])
    mask = mask * np.minimum(ramp[None, :], ramp[:, None]) * crop.valid
    h, w = photo.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(np.ascontiguousarray(res), crop.matrix, (w, h), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    m = cv2.warpAffine(mask, crop.matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    m = m[..., None]
    out = back * m + photo.astype(np.float32) * (1.0 - m)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
