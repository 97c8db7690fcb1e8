"""The face preprocessing chain: detect -> choose -> align + crop -> segment -> (whiten).

:class:`FacePreprocessor` is what ``styleforge cartoonize`` and ``styleforge prepare faces``
run. The matte is computed on a wider view of the face than the crop (``context`` times its
side, photo edges replicated): a portrait crop framed like the Photo2Cartoon data is mostly
person, and GrabCut (or a matting network) needs to see enough background to tell them apart.
The matte is then mapped into the crop and zeroed outside the photo.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, NoFaceError
from ..utils.opencv import opencv
from .align import FaceCrop, crop_matrix, warp
from .detect import Face, FaceDetector
from .segment import load_matting, matting_name


@dataclass(frozen=True)
class Rejection:
    """Why an image gave no usable face: ``kind`` is ``no face``, ``too small`` or
    ``several faces``; ``detail`` says more."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return self.kind + (f" ({self.detail})" if self.detail else "")


def choose_faces(faces: list[Face], policy: str = "largest", min_face: float = 0.0,
                 several_ratio: float = 0.5) -> list[Face] | Rejection:
    """Pick faces from ``faces`` (largest first, as :meth:`FaceDetector.detect` gives them).

    ``policy``: ``largest`` (one face), ``all``, or ``reject`` (a :class:`Rejection` when
    another face is at least ``several_ratio`` times the largest one's size: smaller ones are
    taken for people in the background). ``min_face``: faces smaller than this (detector box
    side, photo pixels) are not used; when that leaves none: ``too small``.
    """
    if policy not in ("largest", "all", "reject"):
        raise ConfigError(f"face policy must be largest, all or reject; got {policy!r}")
    if not faces:
        return Rejection("no face")
    big = [f for f in faces if f.size >= min_face]
    if not big:
        return Rejection("too small", f"largest face {faces[0].size:.0f} px < {min_face:.0f} px")
    if policy == "all":
        return big
    if policy == "reject":
        rivals = [f for f in big[1:] if f.size >= several_ratio * big[0].size]
        if rivals:
            return Rejection("several faces", f"{1 + len(rivals)} faces")
    return big[:1]


DETECTORS = ("auto", "mediapipe", "haar")
DOMAINS = ("auto", "photo", "cartoon")
# BlazeFace score a face needs: MediaPipe's 0.5. The lowest of the 70 shared cartoon portraits
# scores 0.82 (of the 266 shared photos: 0.88), so one setting serves both; --domain cartoon
# accepts down to 0.4 for drawn styles further from photos (Face Mesh's presence check stays)
DOMAIN_SCORE = {"auto": 0.5, "photo": 0.5, "cartoon": 0.4}


class AutoDetector:
    """The bundled MediaPipe detector, and the Haar cascades for an image where it finds no
    face (it is trained on faces filling a good part of the image: small faces are missed)."""

    name = "auto"

    def __init__(self, mediapipe, haar: FaceDetector | None = None):
        self.mediapipe, self._haar = mediapipe, haar
        self.fallbacks = 0
        """Images on which the Haar cascades found the faces (the commands report it)."""

    @property
    def haar(self) -> FaceDetector:
        if self._haar is None:
            self._haar = FaceDetector()
        return self._haar

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = self.mediapipe.detect(image)
        if not faces:
            faces = self.haar.detect(image)
            self.fallbacks += bool(faces)
        return faces


def load_detector(spec="auto", domain: str = "auto"):
    """``auto``: :class:`AutoDetector` when the bundled models can run, else the Haar
    :class:`FaceDetector`; ``mediapipe``: the bundled detector only; ``haar``: the cascades
    only; an object with ``detect(image)`` is returned as it is. ``domain``: see DOMAIN_SCORE."""
    from . import mediapipe_models

    if domain not in DOMAINS:
        raise ConfigError(f"face domain must be one of {', '.join(DOMAINS)}; got {domain!r}")
    if spec is not None and not isinstance(spec, str):
        return spec
    spec = spec or "auto"
    if spec not in DETECTORS:
        raise ConfigError(f"face detector must be one of {', '.join(DETECTORS)}; got {spec!r}")
    if spec == "haar" or (spec == "auto" and mediapipe_models.unavailable() is not None):
        return FaceDetector()
    mp = mediapipe_models.MediaPipeFaceDetector(score_threshold=DOMAIN_SCORE[domain])
    return mp if spec == "mediapipe" else AutoDetector(mp)


def detector_name(detector) -> str:
    from . import mediapipe_models

    if isinstance(detector, AutoDetector):
        return "bundled MediaPipe BlazeFace + Face Mesh landmarks (Haar cascades where it finds no face)"
    if isinstance(detector, mediapipe_models.MediaPipeFaceDetector):
        return "bundled MediaPipe BlazeFace + Face Mesh landmarks"
    if isinstance(detector, FaceDetector):
        why = mediapipe_models.unavailable()
        return "OpenCV Haar cascades + eyes" + (f" (bundled models unavailable: {why})" if why else "")
    return type(detector).__name__


class FacePreprocessor:
    """Detect, align, crop and segment faces in RGB uint8 photos.

    ``size``: side of the output crops. ``margin``, ``center_y``, ``align``, ``framing``: the
    framing, see :mod:`styleforge.faces.align` (faces with landmarks follow the authors' rule
    unless ``framing="box"``; ``margin`` and ``center_y`` are the box rule's). ``matting``:
    ``"auto"`` (default: the bundled selfie segmentation, GrabCut without it), ``"selfie"``,
    ``"grabcut"``, an ``.onnx`` path, a callable ``(image, face_box) -> alpha`` or ``None`` (no
    segmentation: crops are not whitened). ``context``: the matte is computed on a view
    ``context`` times the crop's side around it, at most ``seg_size`` pixels wide.
    ``detector``: ``"auto"`` (default), ``"mediapipe"``, ``"haar"`` or an object with
    ``detect(image)`` (e.g. a :class:`FaceDetector`); ``domain``: ``auto``, ``photo`` or
    ``cartoon`` (see :func:`load_detector`). :meth:`describe` names the paths taken.
    """

    def __init__(self, size: int = 256, margin: float = 0.3, center_y: float = 0.535, align: bool = True,
                 matting="auto", context: float = 2.0, seg_size: int = 384,
                 detector=None, matting_options: dict | None = None, framing: str = "auto",
                 domain: str = "auto"):
        crop_matrix(Face(center=(0.0, 0.0), size=1.0), size, margin, center_y, framing=framing)  # validates
        opencv()  # a broken or shadowed OpenCV is named before any work
        if context < 1:
            raise ConfigError(f"segmentation context must be >= 1 (times the crop side), got {context}")
        self.size, self.margin, self.center_y, self.align = size, margin, center_y, align
        self.framing = framing
        self.context, self.seg_size = context, seg_size
        self.matting = load_matting(matting, **(matting_options or {}))
        self.detector = load_detector(detector, domain)

    def fallback_note(self) -> str:
        """``"; Haar fallback on N image(s)"`` when the auto detector needed it, else ``""``."""
        n = getattr(self.detector, "fallbacks", 0)
        return f"; faces found by the Haar fallback in {n} image(s)" if n else ""

    def describe(self) -> str:
        """One line: which detector, framing and matte this preprocessor uses."""
        framing = ("Photo2Cartoon's landmark rule where landmarks exist, else the face box"
                   if self.framing == "auto" else "the face box")
        return (f"face path: detector {detector_name(self.detector)}; crop {framing}; "
                f"matte {matting_name(self.matting)}")

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def crop(self, image: np.ndarray, face: Face) -> FaceCrop:
        """The aligned crop of ``face``, segmented when a matting is set."""
        m, angle = crop_matrix(face, self.size, self.margin, self.center_y, self.align, self.framing)
        pixels, valid = warp(image, m, self.size, "white")
        crop = FaceCrop(image=pixels, matrix=m, face=face, angle=angle, valid=valid)
        if self.matting is not None:
            crop.alpha = self.segment(image, crop)
        return crop

    def segment(self, image: np.ndarray, crop: FaceCrop) -> np.ndarray:
        """The person matte of ``crop`` (size×size float32), computed on the wider view."""
        cv2 = opencv()
        size = crop.size
        n = int(min(self.seg_size, round(size * self.context)))
        k = n / (size * self.context)
        # crop pixels -> view pixels: scale about the crop's centre onto the n×n view
        view_from_crop = np.array([[k, 0, n / 2 - k * size / 2], [0, k, n / 2 - k * size / 2], [0, 0, 1.0]])
        m_view = (view_from_crop @ np.vstack([crop.matrix, [0, 0, 1.0]]))[:2]
        view, _ = warp(image, m_view, n, "replicate")
        x0, y0, x1, y1 = crop.box
        box = (k * x0 + view_from_crop[0, 2], k * y0 + view_from_crop[1, 2],
               k * x1 + view_from_crop[0, 2], k * y1 + view_from_crop[1, 2])
        alpha = np.asarray(self.matting(view, box), np.float32)
        if alpha.shape != (n, n):
            raise ConfigError(f"the matting returned a matte of shape {alpha.shape} for a {n}×{n} image")
        alpha = cv2.warpAffine(alpha, view_from_crop[:2], (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return np.clip(alpha, 0.0, 1.0) * crop.valid

    def __call__(self, image: np.ndarray, all_faces: bool = False, source: str = "the image") -> list[FaceCrop]:
        """Crops of the largest face (or of every face): raises :class:`NoFaceError`."""
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(source)
        return [self.crop(image, f) for f in (faces if all_faces else faces[:1])]


@dataclass
class Cartoonized:
    """What :func:`cartoonize_image` made from one photo."""

    faces: list
    """The translated face crops (PIL RGB, crop size, background whitened when segmented),
    largest face first."""
    crops: list[FaceCrop]
    """The matching crops of the photo (matrix, matte, detection)."""
    image: object = None
    """With ``paste_back``: the photo (PIL RGB, its size) with every translated face blended
    back along its matte; else None."""


def cartoonize_image(pipe, image, preprocessor: FacePreprocessor | None = None, *, direction=None,
                     all_faces: bool = False, paste_back: bool = False, source: str = "the image",
                     **inputs) -> Cartoonized:
    """Photo -> faces -> ``pipe`` -> crops (and the photo with them pasted back): the one
    cartoonize path of the CLI and the web app.

    ``pipe``: a loaded model (``styleforge.load``); each whitened crop goes through
    ``pipe.translate_pil(crop, direction, **inputs)`` (``direction`` None: the model's
    default; ``inputs``: the model's declared inputs, e.g. ``group=``). ``image``: a PIL image
    or an RGB uint8 array. ``preprocessor``: the default :class:`FacePreprocessor` when None.
    As in the Photo2Cartoon authors' test.py, the output is whitened again with the crop's
    matte. Raises :class:`NoFaceError` (naming ``source``) when no face is found.
    """
    from PIL import Image

    from .align import paste_back as paste, whiten

    pre = preprocessor or FacePreprocessor()
    photo = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ConfigError(f"cartoonize needs an RGB uint8 image, got an array of shape {photo.shape} and "
                          f"dtype {photo.dtype}")
    faces = pre.detect(photo)
    if not faces:
        raise NoFaceError(source)
    crops, outs = [], []
    for face in faces if all_faces else faces[:1]:
        crop = pre.crop(photo, face)
        x = crop.image if crop.alpha is None else crop.whitened()
        # at the crop's size: the pipeline brings the network's output back to its input's size
        y = np.asarray(pipe.translate_pil(Image.fromarray(x), direction, **inputs).convert("RGB"))
        if crop.alpha is not None:
            y = whiten(y, crop.alpha)
        crops.append(crop)
        outs.append(y)
    result = Cartoonized(faces=[Image.fromarray(y) for y in outs], crops=crops)
    if paste_back:
        canvas = photo
        for crop, y in zip(crops, outs):
            canvas = paste(canvas, crop, y)
        result.image = Image.fromarray(canvas)
    return result
