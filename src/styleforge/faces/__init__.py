"""Face preprocessing for face stylisation (Photo2Cartoon, U-GAT-IT selfie2anime).

photo -> a detector (the bundled MediaPipe BlazeFace + Face Mesh landmarks,
:class:`MediaPipeFaceDetector`; OpenCV Haar cascades + eyes, :class:`FaceDetector`, as the
fallback) -> :func:`crop_face` (eyes level; Photo2Cartoon's landmark framing, or a square with
margin around the box) -> a matting (the bundled selfie segmentation, :class:`SelfieMatting`;
:class:`GrabCutMatting` as the fallback; or a user's ONNX model, :class:`OnnxMatting`) ->
:func:`whiten` -> the model -> optionally :func:`paste_back`. :class:`FacePreprocessor` chains
them; :func:`prepare_faces` runs them over a folder; :func:`cartoonize_image` runs a photo
through a loaded model (the CLI's and the web app's cartoonize). See docs/faces.md.
"""
from .align import FaceCrop, crop_face, crop_matrix, landmark_crop_matrix, paste_back, whiten
from ..utils.opencv import diagnose_cv2
from .detect import Face, FaceDetector
from .mediapipe_models import MediaPipeFaceDetector, SelfieMatting
from .pipeline import (AutoDetector, Cartoonized, FacePreprocessor, Rejection, cartoonize_image, choose_faces,
                       load_detector)
from .prepare import PrepareReport, prepare_faces
from .segment import GrabCutMatting, OnnxMatting, load_matting

__all__ = [
    "AutoDetector", "Cartoonized", "Face", "FaceCrop", "FaceDetector", "FacePreprocessor", "GrabCutMatting",
    "MediaPipeFaceDetector", "OnnxMatting", "PrepareReport", "Rejection", "SelfieMatting", "cartoonize_image",
    "choose_faces", "crop_face", "crop_matrix", "diagnose_cv2", "landmark_crop_matrix", "load_detector",
    "load_matting", "paste_back", "prepare_faces", "whiten",
]
