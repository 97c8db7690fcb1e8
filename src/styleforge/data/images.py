"""Finding and loading images robustly.

:func:`load_rgb` is the one way the library reads an image (a file, or uploaded bytes in
``styleforge serve``). It always returns a fully
decoded RGB image or raises :class:`~styleforge.errors.ImageLoadError` (whose message names the
file and the problem), never a half-read one:

* The whole file is decoded at once (``img.load()``) and Pillow's
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at its default (False), so truncated JPEG/PNG
  files are errors instead of silently grey-filled images.
* Decompression bombs (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``) are errors that give
  the pixel count; Pillow's warning for them is turned into the same error.
* The EXIF orientation tag is applied (``ImageOps.exif_transpose``), so a phone photo comes
  out the way it is shown.
* Every mode becomes RGB: grayscale (``1``, ``L``), palette (``P``, with or without a
  transparent colour), CMYK, YCbCr/LAB/HSV via Pillow's conversions, 16-bit grayscale
  (``I;16``, ``I;16B``, ``I;16L``, and ``I`` holding 0..65535) scaled to 8 bits as
  ``round(v * 255 / 65535)`` (not clipped), other ``I`` and ``F`` images scaled by their value
  range. **Transparency is composited on a white background** (``RGBA``, ``LA``, ``PA``,
  palette/grayscale/RGB images with a transparent colour): the colour under fully transparent
  pixels is undefined, and white is what most viewers show.
"""
from __future__ import annotations

import io
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError, ImageLoadError

log = logging.getLogger(__name__)

IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm",
)
"""Lower-case file suffixes (with the dot) taken as images; compare with ``suffix.lower()``."""

_BOMB_RE = re.compile(r"\((\d+) pixels\)")
_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def is_image_file(path) -> bool:
    """True for a file name with an image suffix (case-insensitive) that is not hidden."""
    p = Path(path)
    return p.suffix.lower() in IMG_EXTENSIONS and not p.name.startswith(".")


def list_images(folder, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` sorted by name (by relative path when ``recursive``).

    Hidden files (names starting with ``.``, such as macOS ``._x.jpg`` resource forks) are
    not images and are left out. Raises :class:`DataError` for a missing folder or one with no
    images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder} (expected a folder of images)")
    repeated = 0
    if recursive:
        # a symlinked folder is followed once, unless it leads to a folder of the tree itself or
        # one already listed (``loop -> .``, a second link): so a file keeps its real path
        def key(path):
            st = os.stat(path)
            return st.st_dev, st.st_ino

        seen = {key(d) for d, _, _ in os.walk(folder)}  # the real folders, links not followed
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            seen.add(key(dirpath))  # a folder inside a linked one
            keep = []
            for d in sorted(d for d in dirnames if not d.startswith(".")):
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    if key(full) in seen:
                        repeated += 1
                        continue
                    seen.add(key(full))
                keep.append(d)
            dirnames[:] = keep
            found += [Path(dirpath) / f for f in filenames if is_image_file(f)]
        found.sort(key=lambda p: p.relative_to(folder).as_posix())
    else:
        found = sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)
    dangling = sum(1 for p in found if not p.exists() and p.is_symlink())
    found = [p for p in found if p.is_file()]
    if repeated or dangling:
        parts = ([f"{repeated} symlinked folder(s) already listed (a link loop or a second link)"] * bool(repeated)
                 + [f"{dangling} dangling link(s)"] * bool(dangling))
        log.warning("skipped %s in %s", " and ".join(parts), folder)
    if not found:
        raise DataError(f"no images in {folder}" + (" (searched subfolders too)" if recursive else ""))
    return found


def _bomb_reason(exc: Exception) -> str:
    m = _BOMB_RE.search(str(exc))
    pixels = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
    limit = Image.MAX_IMAGE_PIXELS
    lim = f" (limit {limit:,}, PIL.Image.MAX_IMAGE_PIXELS)" if limit else ""
    return f"image is too large: {pixels}{lim}, possibly a decompression bomb"


def _open(path, strict: bool = True) -> Image.Image:
    """``Image.open`` with the decompression-bomb warning raised as an error (``strict``)."""
    with warnings.catch_warnings():
        if strict:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _error(path, reason: str, kind: str) -> ImageLoadError:
    """An :class:`ImageLoadError` with ``kind`` saying which check failed, for callers that
    map it (the web app: HTTP statuses): missing, empty, not_image, too_large, no_pixels, mode,
    truncated, corrupt."""
    e = ImageLoadError(path, reason)
    e.kind = kind
    return e


def _translate_error(path, exc: Exception) -> ImageLoadError:
    if isinstance(exc, ImageLoadError):
        return exc
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return _error(path, _bomb_reason(exc), "too_large")
    if isinstance(exc, UnidentifiedImageError):
        return _error(path, "not an image (unrecognised file format)", "not_image")
    if isinstance(exc, FileNotFoundError):
        return _error(path, "file not found", "missing")
    if isinstance(exc, PermissionError):
        return _error(path, "permission denied", "missing")
    if isinstance(exc, MemoryError):
        return _error(path, "out of memory while decoding", "too_large")
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if "truncated" in detail.lower():
        return _error(path, f"truncated file ({detail})", "truncated")
    return _error(path, f"corrupt image data ({type(exc).__name__}: {detail})", "corrupt")


def _check_path(path: Path) -> None:
    if not path.exists():
        raise _error(path, "file not found", "missing")
    if path.is_dir():
        raise _error(path, "is a folder, not an image file", "not_image")
    if path.stat().st_size == 0:
        raise _error(path, "empty file (0 bytes)", "empty")


def _scale_to_u8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.clip(np.rint((arr - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer / float grayscale -> 8-bit ``L`` by scaling, not clipping."""
    arr = np.asarray(im).astype(np.float64)
    if im.mode in _MODES_16BIT:
        out = _scale_to_u8(arr, 0.0, 65535.0)
    else:
        finite = np.isfinite(arr)
        arr = np.where(finite, arr, 0.0)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if im.mode == "I" and lo >= 0 and hi <= 65535:
            out = _scale_to_u8(arr, 0.0, 65535.0)   # 16-bit data read as I (older Pillow, TIFF)
        elif im.mode == "F" and lo >= 0 and hi <= 1:
            out = _scale_to_u8(arr, 0.0, 1.0)
        elif im.mode == "F" and lo >= 0 and hi <= 255:
            out = _scale_to_u8(arr, 0.0, 255.0)
        else:
            out = _scale_to_u8(arr, lo, hi)          # arbitrary range: stretch to 0..255
    return Image.fromarray(out, "L")


def _on_white(rgba: Image.Image) -> Image.Image:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> ``RGB`` (see the module docstring for the rules)."""
    mode = im.mode
    has_alpha_key = "transparency" in im.info
    if mode == "RGB" and not has_alpha_key:
        return im
    if mode in _MODES_16BIT or mode in ("I", "F"):
        return _high_depth_to_l(im).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (has_alpha_key and mode in ("P", "L", "RGB")):
        return _on_white(im.convert("RGBA"))
    if mode == "1":
        return im.convert("L").convert("RGB")
    return im.convert("RGB")


def _orient(im: Image.Image) -> Image.Image:
    try:
        out = ImageOps.exif_transpose(im)
    except Exception:  # unreadable EXIF: keep the pixels as stored
        return im
    return im if out is None else out


def load_rgb(source, name=None, *, max_pixels: int | None = None, modes=None) -> Image.Image:
    """Read an image fully and return it as an RGB image (EXIF orientation applied).

    ``source`` is a path, the file's bytes, or a binary file object (``io.BytesIO``); ``name``
    is what errors call it (default: the path, or ``<bytes>``). ``max_pixels`` refuses an image
    whose header states more pixels, before any pixel is decoded (the error names width ×
    height); with it, Pillow's own bomb warning is left a warning and only its error stops.
    ``modes`` refuses (kind ``mode``) an image whose Pillow mode is not listed.

    Raises :class:`~styleforge.errors.ImageLoadError` for a missing, empty, non-image,
    truncated, corrupt or too-large file; its ``kind`` attribute says which check failed.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        if len(source) == 0:
            raise _error(label, "empty file (0 bytes)", "empty")
        fp = io.BytesIO(source)
    elif hasattr(source, "read"):
        label, fp = name or getattr(source, "name", None) or "<bytes>", source
    else:
        path = Path(source)
        _check_path(path)
        label, fp = name or path, path
    opened = False
    try:
        with _open(fp, strict=max_pixels is None) as im:
            opened = True
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise _error(label, f"image is too large: {w}×{h} = {w * h:,} pixels, more than "
                             f"{max_pixels:,}; not decoded", "too_large")
            if w < 1 or h < 1:
                raise _error(label, f"image has no pixels ({w}x{h})", "no_pixels")
            if modes is not None and im.mode not in modes:
                raise _error(label, f"unsupported image mode {im.mode} ({im.format})", "mode")
            im.load()
            out = to_rgb(_orient(im))
            if out is im:
                out = im.copy()
    except Exception as e:  # noqa: BLE001 - every failure becomes one message naming the file
        err = _translate_error(label, e)
        if not opened and getattr(err, "kind", None) == "corrupt":  # the header itself is unreadable
            err.kind = "not_image"
        raise err from e
    return out


def _tail_suspicious(path: Path, fmt: str | None) -> bool:
    """Cheap truncation hint: a JPEG without its end marker, a PNG without IEND."""
    if fmt not in ("JPEG", "PNG"):
        return False
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64))
        tail = f.read()
    if fmt == "JPEG":
        return not tail.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
    return not tail.endswith(_PNG_IEND)


def check_image(path) -> None:
    """Cheap test that ``path`` is a usable image, raising :class:`ImageLoadError` if not.

    Opens the header (format, size, decompression-bomb limit). A JPEG missing its end marker
    or a PNG missing its IEND chunk is then fully decoded to tell a truncated file from a
    merely unusual one. Damage deeper inside a file is only found by :func:`load_rgb`.
    """
    path = Path(path)
    _check_path(path)
    try:
        with _open(path) as im:
            if im.width < 1 or im.height < 1:
                raise _error(path, f"image has no pixels ({im.width}x{im.height})", "no_pixels")
            fmt = im.format
        if _tail_suspicious(path, fmt):
            load_rgb(path)
    except Exception as e:  # noqa: BLE001
        raise _translate_error(path, e) from e


def image_size(path) -> tuple[int, int]:
    """(width, height) from the header, as stored (before EXIF orientation)."""
    path = Path(path)
    _check_path(path)
    try:
        with _open(path) as im:
            return im.size
    except Exception as e:  # noqa: BLE001
        raise _translate_error(path, e) from e

