"""styleforge.data.images: listing folders, loading every mode as RGB, clear errors."""
import numpy as np
import pytest
from PIL import Image, ImageFile

from styleforge.data.images import IMG_EXTENSIONS, check_image, list_images, load_rgb
from styleforge.errors import DataError, ImageLoadError


def rgb(path):
    img = load_rgb(path)
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


# ---- listing ---------------------------------------------------------------------------
def test_extensions_cover_the_usual_formats():
    for ext in "jpg jpeg png bmp webp tif tiff gif ppm pgm".split():
        assert "." + ext in IMG_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMG_EXTENSIONS)


def test_list_images_sorted_case_insensitive_and_filtered(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JPeG", "notes.txt", "._a.jpg", "d.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.bmp").write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()  # a folder with an image-like name is not an image
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.JPeG", "d.webp"]
    rec = list_images(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in rec] == [
        "a.jpg", "b.PNG", "c.JPeG", "d.webp", "sub/e.bmp"]


def test_list_images_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="folder not found") as e:
        list_images(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in") as e:
        list_images(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no images in"):
        list_images(tmp_path / "text")


# ---- modes -----------------------------------------------------------------------------
def test_grayscale_modes(tmp_path):
    Image.new("L", (3, 2), 77).save(tmp_path / "l.png")
    assert (rgb(tmp_path / "l.png") == 77).all()
    one = Image.new("1", (4, 1), 0)
    one.putpixel((1, 0), 1)
    one.save(tmp_path / "one.png")
    assert rgb(tmp_path / "one.png")[0, :, 0].tolist() == [0, 255, 0, 0]
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (100, 255))
    la.putpixel((1, 0), (100, 0))
    la.save(tmp_path / "la.png")
    assert rgb(tmp_path / "la.png")[0].tolist() == [[100] * 3, [255] * 3]  # transparent -> white


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_with_and_without_transparency(tmp_path, fmt):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 0, 255, 0, 200, 0] + [0] * 759)
    p.putpixel((1, 0), 1)
    p.putpixel((2, 0), 2)
    p.save(tmp_path / f"t.{fmt}", transparency=0)
    with Image.open(tmp_path / f"t.{fmt}") as im:
        assert im.mode == "P"
    assert rgb(tmp_path / f"t.{fmt}")[0].tolist() == [[255, 255, 255], [0, 0, 255], [0, 200, 0]]
    p.save(tmp_path / f"o.{fmt}")  # no transparency: index 0 stays red
    assert rgb(tmp_path / f"o.{fmt}")[0].tolist() == [[255, 0, 0], [0, 0, 255], [0, 200, 0]]


def test_rgba_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (3, 1))
    im.putpixel((0, 0), (255, 0, 0, 255))
    im.putpixel((1, 0), (0, 0, 255, 0))
    im.putpixel((2, 0), (0, 0, 0, 128))
    im.save(tmp_path / "a.png")
    out = rgb(tmp_path / "a.png")[0]
    assert out[0].tolist() == [255, 0, 0]
    assert out[1].tolist() == [255, 255, 255]
    assert np.abs(out[2] - 127).max() <= 1  # half-transparent black over white: mid grey


@pytest.mark.parametrize("fmt", ["tif", "jpg"])
def test_cmyk(tmp_path, fmt):
    c = Image.new("CMYK", (16, 8), (0, 0, 0, 0))
    c.paste((0, 255, 255, 0), (0, 0, 8, 8))    # no cyan, full magenta + yellow: red
    c.paste((0, 0, 0, 255), (8, 0, 16, 8))     # full black
    c.save(tmp_path / f"c.{fmt}", **({"quality": 100} if fmt == "jpg" else {}))
    with Image.open(tmp_path / f"c.{fmt}") as im:
        assert im.mode == "CMYK"
    out = rgb(tmp_path / f"c.{fmt}")
    tol = 0 if fmt == "tif" else 6
    assert np.abs(out[4, 3] - [255, 0, 0]).max() <= tol
    assert np.abs(out[4, 12] - [0, 0, 0]).max() <= tol


VALUES_16 = [0, 65535, 32768, 1000, 25700, 257]
EXPECTED_8 = [0, 255, 128, 4, 100, 1]   # round(v * 255 / 65535): scaled, not clipped


@pytest.mark.parametrize("case", ["png", "tif_big_endian", "tif_int32", "tif_float"])
def test_high_bit_depth_is_scaled_not_clipped(tmp_path, case):
    a = np.array([VALUES_16], dtype=np.uint16)
    img = {"png": lambda: Image.fromarray(a),
           "tif_big_endian": lambda: Image.fromarray(a.astype(">u2")),
           "tif_int32": lambda: Image.fromarray(a.astype(np.int32)),
           "tif_float": lambda: Image.fromarray((a / 65535).astype(np.float32))}[case]()
    assert img.mode in ("I;16", "I;16B", "I", "F")
    path = tmp_path / ("x.png" if case == "png" else "x.tif")
    img.save(path)
    out = rgb(path)
    assert out.shape == (1, len(VALUES_16), 3)
    assert out[0, :, 0].tolist() == EXPECTED_8
    assert (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("orientation, size, red_at", [
    (1, (40, 20), (2, 2)),      # as stored
    (6, (20, 40), (17, 2)),     # rotate 90° clockwise: stored top-left -> top-right
    (3, (40, 20), (37, 17)),    # 180°: -> bottom-right
    (8, (20, 40), (2, 37)),     # 90° counter-clockwise: -> bottom-left
])
def test_exif_orientation_is_applied(tmp_path, orientation, size, red_at):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 8, 8))      # mark the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_rgb(tmp_path / "r.jpg")
    assert out.size == size
    arr = np.asarray(out).astype(int)
    x, y = red_at
    assert arr[y, x, 0] > 200 and arr[y, x, 2] < 60   # red corner
    w, h = size
    for cx, cy in [(2, 2), (w - 3, 2), (2, h - 3), (w - 3, h - 3)]:
        if (cx, cy) != red_at:
            assert arr[cy, cx, 2] > 200 and arr[cy, cx, 0] < 60  # the other corners stay blue


def test_real_jpeg_loads_unchanged(h2z):
    f = sorted((h2z / "trainA").iterdir())[0]
    with Image.open(f) as im:
        assert np.array_equal(np.asarray(load_rgb(f)), np.asarray(im.convert("RGB")))


# ---- errors ----------------------------------------------------------------------------
def one_line(e, path, *words):
    msg = str(e.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert e.value.path == str(path)
    for w in words:
        assert w in msg.lower()


def test_missing_empty_and_not_an_image(tmp_path):
    with pytest.raises(ImageLoadError) as e:
        load_rgb(tmp_path / "missing.jpg")
    one_line(e, tmp_path / "missing.jpg", "not found")
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ImageLoadError) as e:
        load_rgb(tmp_path / "zero.png")
    one_line(e, tmp_path / "zero.png", "empty")
    (tmp_path / "text.jpg").write_text("hello, I am text\n" * 20)
    with pytest.raises(ImageLoadError) as e:
        load_rgb(tmp_path / "text.jpg")
    one_line(e, tmp_path / "text.jpg", "not an image")
    with pytest.raises(ImageLoadError) as e:
        load_rgb(tmp_path)
    one_line(e, tmp_path, "folder")


@pytest.mark.parametrize("kind", ["jpg", "png"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_files_are_errors(tmp_path, good_bytes, kind, keep):
    data = good_bytes[0] if kind == "jpg" else good_bytes[1]
    path = tmp_path / f"cut.{kind}"
    path.write_bytes(data[: int(len(data) * keep)])
    Image.open(path).close()  # the header alone is fine ...
    with pytest.raises(ImageLoadError) as e:
        load_rgb(path)     # ... the full decode is not
    one_line(e, path, "truncated")
    with pytest.raises(ImageLoadError):
        check_image(path)  # the cheap check catches a missing end marker too
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_damage_inside_a_png_is_found_by_full_decode_only(tmp_path, bad_files):
    f = bad_files(tmp_path / "bad")["decode_only"]
    check_image(f)   # header and end marker look fine
    with pytest.raises(ImageLoadError) as e:
        load_rgb(f)
    one_line(e, f)


@pytest.mark.parametrize("pixels, limit", [(1600, 1000), (10_000, 1000)])  # warning / error range
def test_decompression_bomb(tmp_path, monkeypatch, pixels, limit):
    side = int(pixels ** 0.5)
    Image.new("RGB", (side, side)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    for fn in (load_rgb, check_image):
        with pytest.raises(ImageLoadError) as e:
            fn(tmp_path / "big.png")
        one_line(e, tmp_path / "big.png", f"{pixels:,} pixels", "decompression bomb")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels)
    assert load_rgb(tmp_path / "big.png").size == (side, side)


def test_bytes_and_file_objects_load_like_the_file(tmp_path, good_bytes):
    import io

    jpg = good_bytes[0]
    (tmp_path / "a.jpg").write_bytes(jpg)
    want = np.asarray(load_rgb(tmp_path / "a.jpg"))
    assert np.array_equal(np.asarray(load_rgb(jpg, "up.jpg")), want)
    assert np.array_equal(np.asarray(load_rgb(io.BytesIO(jpg))), want)
    w, h = Image.open(io.BytesIO(jpg)).size
    cases = [(b"", {}, "empty", "empty file"), (b"some words", {}, "not_image", "not an image"),
             (jpg, {"max_pixels": w * h - 1}, "too_large", f"{w}×{h} = {w * h:,} pixels"),
             (jpg, {"modes": ("L",)}, "mode", "unsupported image mode RGB"),
             (jpg[: len(jpg) // 2], {}, "truncated", "truncated")]
    for data, kw, kind, needle in cases:  # errors name the given name and say which check failed
        with pytest.raises(ImageLoadError) as e:
            load_rgb(data, "up.jpg", **kw)
        assert e.value.kind == kind and e.value.path == "up.jpg" and needle in str(e.value), str(e.value)
    assert load_rgb(jpg, "up.jpg", max_pixels=w * h, modes=("RGB",)).size == (w, h)


def test_list_images_follows_a_symlink_loop_once_and_counts_dangling_links(tmp_path, caplog):
    import logging
    import os

    root = tmp_path / "set"
    (root / "sub").mkdir(parents=True)
    for p in (root / "a.png", root / "sub" / "b.png"):
        Image.new("RGB", (8, 8)).save(p)
    os.symlink(".", root / "loop")  # loop -> .: evaluate counted the folder 41 times
    os.symlink("..", root / "sub" / "up")
    os.symlink(root / "sub", root / "again")  # a second link to a folder already listed
    os.symlink(tmp_path / "gone.png", root / "dangling.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "c.png")
    os.symlink(outside, root / "linked")  # a linked folder seen once is listed
    with caplog.at_level(logging.WARNING, logger="styleforge"):
        rec = list_images(root, recursive=True)
    # each file once, under its real folder (not under the link "again" that sorts first)
    assert [p.relative_to(root).as_posix() for p in rec] == ["a.png", "linked/c.png", "sub/b.png"]
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "1 dangling link" in msgs[0] and "3 symlinked folder(s)" in msgs[0], msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="styleforge"):
        assert [p.name for p in list_images(root)] == ["a.png"]
    assert ["1 dangling link" in r.getMessage() for r in caplog.records] == [True]
