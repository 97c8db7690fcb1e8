"""Fixtures for the data tests: images whose pixels encode their position, and bad files."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def position_image(w: int, h: int, blue: int = 0) -> Image.Image:
    """RGB image with R = x, G = y (both < 256) and a constant B channel."""
    assert w <= 256 and h <= 256
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    arr[..., 1] = np.arange(h, dtype=np.uint8)[:, None]
    arr[..., 2] = blue
    return Image.fromarray(arr, "RGB")


def noise_image(seed: int, w: int = 40, h: int = 40) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def write_bad_files(folder: Path, good_jpeg: bytes, good_png: bytes) -> dict[str, Path]:
    """Files that fail the cheap check at construction (text, empty, truncated JPEG/PNG) and one
    that only fails at full decode (a cut PNG closed with an IEND chunk)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "text": folder / "notes.jpg",
        "empty": folder / "empty.png",
        "trunc_jpg": folder / "cut.jpg",
        "trunc_png": folder / "cut.png",
        "decode_only": folder / "zz_decode_fails.png",
    }
    files["text"].write_text("this is not an image\n")
    files["empty"].write_bytes(b"")
    files["trunc_jpg"].write_bytes(good_jpeg[: len(good_jpeg) // 2])
    files["trunc_png"].write_bytes(good_png[: len(good_png) // 2])
    files["decode_only"].write_bytes(good_png[: len(good_png) * 6 // 10] + PNG_IEND)
    return files


@pytest.fixture
def good_bytes(tmp_path):
    """(JPEG bytes, PNG bytes) of a 64x64 noise image."""
    img = noise_image(123, 64, 64)
    img.save(tmp_path / "_g.jpg", quality=90)
    img.save(tmp_path / "_g.png")
    out = (tmp_path / "_g.jpg").read_bytes(), (tmp_path / "_g.png").read_bytes()
    (tmp_path / "_g.jpg").unlink()
    (tmp_path / "_g.png").unlink()
    return out


@pytest.fixture
def pos_img():
    return position_image


@pytest.fixture
def noise_img():
    return noise_image


@pytest.fixture
def bad_files(good_bytes):
    """``bad_files(folder)`` writes the bad files into ``folder`` and returns them by kind."""
    return lambda folder: write_bad_files(folder, *good_bytes)
