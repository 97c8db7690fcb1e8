"""Rebuild the bundled sample in data/ from the full images in ../shared/data.

Usage (from the repository root, or anywhere):

    python data/make_sample.py                 # source: <repo>/../shared/data
    python data/make_sample.py --src DIR       # another copy of the same files

Needs only Pillow. Takes the first files in sorted file-name order of each source folder and
writes new thumbnails (existing images in the target folders are deleted first):

* horse2zebra/{trainA,trainB,testA,testB}: 60/60/8/8 images, 256x256 -> 128x128, bicubic,
  JPEG quality 90, names unchanged.
* facades/{train,test}: 40/8 pix2pix "AB" images, 512x256 -> 256x128; each 256x256 half is
  resized on its own (bicubic, so nothing bleeds across the seam), JPEG quality 90.
* animals/{cat,dog,wild,meerkat}: one folder per class (FUNIT's class_folders layout): the first
  6 AFHQ reference images of each of cat/dog/wild (512x512) and the 5 meerkat crops of FUNIT's
  example (128x128), resized to 64x64, bicubic, JPEG quality 90, names unchanged.
* style_transfer/{content,style}: named AdaIN example photos without people and paintings
  (adain_examples, msgnet_styles), longer side -> 128 (bicubic, aspect kept), JPEG quality 90.
* style_transfer_512/{content,style}: the same files with the longer side -> 512 (the demo's
  pictures; photos already 512 px are only re-encoded).
* videos/box_2s.mp4: the first 2 s of OpenCV's box.mp4 (videos/box.mp4), its streams copied
  unchanged (ffmpeg -t 2 -c copy: 60 frames and the sound), with OpenCV's licence beside it.
  Needs imageio-ffmpeg (its ffmpeg binary); skipped with a line without it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE.parent.parent / "shared" / "data"
EXTS = {".jpg", ".jpeg", ".png"}
QUALITY = 90
SIZE = 128
# the demo's pictures: the same style-transfer photos and paintings at a size worth looking at
LARGE_SIDE = 512

HORSE2ZEBRA = {"trainA": 60, "trainB": 60, "testA": 8, "testB": 8}
FACADES = {"train": 40, "test": 8}
# (source folder under shared/data, file): content photos without people, style paintings
STYLE_CONTENT = [("adain_examples/content", f) for f in
                 ("chicago.jpg", "cornell.jpg", "flowers.jpg", "golden_gate.jpg", "modern.jpg", "sailboat.jpg")]
STYLE_STYLE = [("msgnet_styles/21styles", f) for f in
               ("starry_night.jpg", "the_scream.jpg", "wave.jpg", "composition_vii.jpg")] + \
              [("adain_examples/style", f) for f in ("woman_with_hat_matisse.jpg", "mondrian.jpg")]
ANIMAL_SIZE = 64
# class folder here -> (folder under shared/data, number of images)
ANIMALS = {"cat": ("stargan_v2_representative/afhq/ref/cat", 6),
           "dog": ("stargan_v2_representative/afhq/ref/dog", 6),
           "wild": ("stargan_v2_representative/afhq/ref/wild", 6),
           "meerkat": ("funit_examples/n02138411", 5)}


def first_images(folder: Path, n: int) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in EXTS), key=lambda p: p.name)
    if len(files) < n:
        raise SystemExit(f"{folder}: need {n} images, found {len(files)}")
    return files[:n]


def read_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return ImageOps.exif_transpose(im).convert("RGB")


def clear(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in EXTS:
            p.unlink()


def save(img: Image.Image, path: Path) -> None:
    img.save(path.with_suffix(".jpg"), "JPEG", quality=QUALITY)


def make_horse2zebra(src: Path, dst: Path) -> int:
    n = 0
    for split, count in HORSE2ZEBRA.items():
        out = dst / split
        clear(out)
        for f in first_images(src / split, count):
            save(read_rgb(f).resize((SIZE, SIZE), Image.Resampling.BICUBIC), out / f.name)
            n += 1
    return n


def make_facades(src: Path, dst: Path) -> int:
    n = 0
    for split, count in FACADES.items():
        out = dst / split
        clear(out)
        for f in first_images(src / split, count):
            img = read_rgb(f)
            w, h = img.size
            half = w // 2
            ab = Image.new("RGB", (2 * SIZE, SIZE))
            for i, box in enumerate(((0, 0, half, h), (half, 0, 2 * half, h))):
                ab.paste(img.crop(box).resize((SIZE, SIZE), Image.Resampling.BICUBIC), (i * SIZE, 0))
            save(ab, out / f.name)
            n += 1
    return n


def make_animals(src: Path, dst: Path) -> int:
    n = 0
    for name, (folder, count) in ANIMALS.items():
        out = dst / name
        clear(out)
        for f in first_images(src / folder, count):
            save(read_rgb(f).resize((ANIMAL_SIZE, ANIMAL_SIZE), Image.Resampling.BICUBIC), out / f.name)
            n += 1
    return n


def make_style_transfer(src: Path, dst: Path, side: int = SIZE) -> int:
    n = 0
    for split, files in (("content", STYLE_CONTENT), ("style", STYLE_STYLE)):
        out = dst / split
        clear(out)
        for folder, name in files:
            img = read_rgb(src / folder / name)
            w, h = img.size
            scale = side / max(w, h)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            save(img.resize(size, Image.Resampling.BICUBIC), out / name)
            n += 1
    return n


def make_video(src: Path, dst: Path, seconds: float = 2.0) -> int:
    """The first ``seconds`` of box.mp4, streams copied (no re-encoding), and the licence."""
    import shutil
    import subprocess

    try:
        import imageio_ffmpeg
    except ImportError:
        print("videos/ skipped: it needs imageio-ffmpeg (pip install imageio-ffmpeg)")
        return 0
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-i", str(src / "box.mp4"), "-t", f"{seconds:g}", "-c", "copy", "-map_metadata", "-1",
                    str(dst / f"box_{seconds:g}s.mp4")], check=True)
    licence = Path("/usr/share/common-licenses/Apache-2.0")
    if licence.is_file() and not (dst / "LICENSE-Apache-2.0").is_file():
        shutil.copyfile(licence, dst / "LICENSE-Apache-2.0")
    return 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="the shared/data folder")
    ap.add_argument("--dst", type=Path, default=HERE, help="where to write (default: data/)")
    args = ap.parse_args(argv)
    if not (args.src / "horse2zebra").is_dir() or not (args.src / "facades").is_dir():
        raise SystemExit(f"{args.src} has no horse2zebra/ and facades/ folders (give --src)")
    n1 = make_horse2zebra(args.src / "horse2zebra", args.dst / "horse2zebra")
    n2 = make_facades(args.src / "facades", args.dst / "facades")
    n3 = make_animals(args.src, args.dst / "animals")
    n4 = make_style_transfer(args.src, args.dst / "style_transfer")
    n4 += make_style_transfer(args.src, args.dst / "style_transfer_512", LARGE_SIDE)
    n5 = make_video(args.src / "videos", args.dst / "videos")
    print(f"wrote {n1} horse2zebra, {n2} facades, {n3} animals and {n4} style-transfer images and {n5} video "
          f"under {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
