"""Face preprocessing for face stylisation (Photo2Cartoon, U-GAT-IT selfie2anime).

photo -> :class:`FaceDetector` (OpenCV Haar cascades, eyes) -> :func:`crop_face` (eyes level,
square with margin, resized) -> a matting (:class:`GrabCutMatting`, or a user's ONNX model via
:class:`OnnxMatting`) -> :func:`whiten` -> the model -> optionally :func:`paste_back`.
:class:`FacePreprocessor` chains them; :func:`prepare_faces` runs them over a folder.
See docs/faces.md.
"""
from .align import FaceCrop, crop_face, crop_matrix, paste_back, whiten
from .detect import Face, FaceDetector
from .pipeline import FacePreprocessor, Rejection, choose_faces
from .prepare import PrepareReport, prepare_faces
from .segment import GrabCutMatting, OnnxMatting, load_matting

__all__ = [
    "Face", "FaceCrop", "FaceDetector", "FacePreprocessor", "GrabCutMatting", "OnnxMatting", "PrepareReport",
    "Rejection", "choose_faces", "crop_face", "crop_matrix", "load_matting", "paste_back", "prepare_faces", "whiten",
]
