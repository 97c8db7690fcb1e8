"""Face preparation on the shared portraits: detection, alignment and matting, each path.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/faces.py [--sheet docs/faces_contact_sheet.png]

Prints, for photos (photo2cartoon trainA + testA, CelebA-HQ samples of stargan-v2) and
cartoons (photo2cartoon trainB + testB):

* detection: faces found and time per image, Haar cascades vs the bundled MediaPipe detector
  (BlazeFace + Face Mesh landmarks), and the fallback chain (``auto``);
* alignment: how the Haar box framing and Photo2Cartoon's landmark rule frame the same photos
  (IoU of the two crop squares in the photo, ratio of their sides, roll difference);
* matting on the aligned 256 px crops (context view 384 px): time per crop and two checks of
  the matte, the mean alpha of the band just above the face box (hair: should be near 1 on
  photos) and of the crop's two top corners (background: should be near 0), for GrabCut, the
  bundled selfie segmentation, and a user ONNX model through ``--matting-model`` (the bundled
  graph itself, NHWC in [0, 1], to time that path).

``--sheet``: also writes a contact sheet (input crop | GrabCut | bundled matte, whitened).
Needs ../shared/data. Numbers are in docs/faces.md with the machine they came from.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared" / "data"


def images(*globs: str) -> list[Path]:
    out = []
    for g in globs:
        out += sorted(SHARED.glob(g))
    return [p for p in out if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def band_and_corners(crop) -> tuple[float, float]:
    """Mean alpha above the face box (0.2 box heights, middle half of its width) and in the
    crop's top corners (squares of 12 % of the side)."""
    a = crop.alpha
    x0, y0, x1, y1 = crop.box
    bw, bh = x1 - x0, y1 - y0
    r0, r1 = max(0, int(y0 - 0.2 * bh)), max(1, int(y0))
    c0, c1 = int(x0 + 0.25 * bw), int(x1 - 0.25 * bw)
    band = float(a[r0:r1, c0:c1].mean())
    k = max(1, int(0.12 * a.shape[0]))
    corners = float(np.concatenate([a[:k, :k].ravel(), a[:k, -k:].ravel()]).mean())
    return band, corners


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def square_in_photo(m: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Centre and side (photo pixels) of a crop's square."""
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    c = inv @ np.array([size / 2, size / 2, 1.0])
    return c, size / math.hypot(m[0, 0], m[0, 1])


def iou_squares(c1, s1, c2, s2) -> float:
    """IoU of two axis-aligned squares (the rotation difference is small and ignored)."""
    lo = np.maximum(c1 - s1 / 2, c2 - s2 / 2)
    hi = np.minimum(c1 + s1 / 2, c2 + s2 / 2)
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    return inter / (s1 * s1 + s2 * s2 - inter)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sheet", type=Path, help="write the contact sheet PNG here")
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos, evenly spread (0: all)")
    ap.add_argument("--negatives", type=int, default=40,
                    help="pictures without people checked for false faces, from each of facades, "
                         "horse2zebra, AFHQ (default 40)")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    from styleforge.faces import FaceDetector, FacePreprocessor, GrabCutMatting, OnnxMatting
    from styleforge.faces.align import crop_matrix
    from styleforge.faces.mediapipe_models import MODELS_DIR, SEGMENTATION_MODEL, MediaPipeFaceDetector, SelfieMatting
    from styleforge.faces.pipeline import DOMAIN_SCORE, AutoDetector

    photos = images("photo2cartoon/trainA/*", "photo2cartoon/testA/*", "stargan_v2_representative/celeba_hq/*/*/*")
    if args.limit and args.limit < len(photos):  # evenly spread over the three sources
        photos = [photos[round(i * len(photos) / args.limit)] for i in range(args.limit)]
    cartoons = images("photo2cartoon/trainB/*", "photo2cartoon/testB/*")
    negatives = sum((images(g)[:args.negatives] for g in ("facades/test/*", "horse2zebra/testA/*",
                                                          "stargan_v2_representative/afhq/*/*/*")), [])
    print(f"# {len(photos)} photos, {len(cartoons)} cartoons; {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, load {os.getloadavg()[0]:.1f}")
    haar, mp = FaceDetector(), MediaPipeFaceDetector()
    mp_cartoon = MediaPipeFaceDetector(score_threshold=DOMAIN_SCORE["cartoon"])
    auto = AutoDetector(mp, haar)
    cache = {}

    print("\n## detection: found / total, ms per image")
    print("| set | Haar | MediaPipe (BlazeFace + mesh) | auto (MediaPipe, then Haar) |")
    print("|---|---|---|---|")
    for name, files, mpd in (("photos", photos, mp), ("cartoons (--domain cartoon)", cartoons, mp_cartoon),
                             ("no people (false faces)", negatives, mp)):
        row = []
        for det in (haar, mpd, auto):
            n, t = 0, 0.0
            for f in files:
                img = cache.setdefault(f, rgb(f))
                faces, dt = timed(det.detect, img)
                n += bool(faces)
                t += dt
                if det is mpd and faces:
                    cache[(f, "mp")] = faces[0]
                if det is haar and faces:
                    cache[(f, "haar")] = faces[0]
            row.append(f"{n}/{len(files)}, {1000 * t / len(files):.0f} ms")
        print(f"| {name} | " + " | ".join(row) + " |")

    print("\n## alignment: Haar box framing vs Photo2Cartoon's landmark rule (photos with both)")
    ious, ratios, rolls = [], [], []
    for f in photos + cartoons:
        fh, fm = cache.get((f, "haar")), cache.get((f, "mp"))
        if fh is None or fm is None:
            continue
        mh, ah = crop_matrix(fh, 256, framing="box")
        mm, am = crop_matrix(fm, 256)
        (ch, sh), (cm, sm) = square_in_photo(mh, 256), square_in_photo(mm, 256)
        ious.append(iou_squares(ch, sh, cm, sm))
        ratios.append(sh / sm)
        rolls.append(abs(ah - am))
    q = lambda v: f"median {np.median(v):.3f}, 10th pct {np.percentile(v, 10):.3f}"  # noqa: E731
    print(f"{len(ious)} faces: IoU of the crop squares {q(ious)}; side box/landmark median "
          f"{np.median(ratios):.3f}; |roll difference| median {np.median(rolls):.1f} deg, 90th pct "
          f"{np.percentile(rolls, 90):.1f} deg")

    print("\n## matting on the aligned 256 px crops: ms per crop, mean alpha above the face / top corners")
    print("| set | GrabCut | bundled selfie segmentation | user ONNX (--matting-model) |")
    print("|---|---|---|---|")
    mattings = {"grabcut": GrabCutMatting(), "selfie": SelfieMatting(),
                "onnx": OnnxMatting(MODELS_DIR / SEGMENTATION_MODEL, input_range="0,1")}
    pres = {k: FacePreprocessor(matting=m, detector=mp) for k, m in mattings.items()}
    for name, files in (("photos", photos), ("cartoons", cartoons)):
        row = []
        for key, pre in pres.items():
            t, bands, corners = 0.0, [], []
            for f in files:
                face = cache.get((f, "mp"))
                if face is None:
                    continue
                crop, dt = timed(pre.crop, cache[f], face)
                t += dt
                b, c = band_and_corners(crop)
                bands.append(b)
                corners.append(c)
                if args.sheet and name == "photos" and key != "onnx":
                    cache[(f, key)] = crop
            n = max(1, len(bands))
            row.append(f"{1000 * t / n:.0f} ms, {np.mean(bands):.2f} / {np.mean(corners):.3f} "
                       f"(band < 0.5: {sum(b < 0.5 for b in bands)})")
        print(f"| {name} | " + " | ".join(row) + " |")

    if args.sheet:
        # photos where the two mattes disagree most above the face, and two typical ones
        cands = [f for f in photos if (f, "grabcut") in cache]
        gap = sorted(cands, key=lambda f: band_and_corners(cache[(f, "grabcut")])[0]
                     - band_and_corners(cache[(f, "selfie")])[0])
        pick = gap[:4] + gap[len(gap) // 2:len(gap) // 2 + 2]
        tiles = []
        for f in pick:
            g, s = cache[(f, "grabcut")], cache[(f, "selfie")]
            tiles.append(np.concatenate([g.image, g.whitened(), s.whitened()], axis=1))
        sheet = np.concatenate(tiles, axis=0)
        Image.fromarray(sheet).resize((sheet.shape[1] // 2, sheet.shape[0] // 2), Image.LANCZOS).save(args.sheet)
        print(f"\ncontact sheet ({', '.join(p.name for p in pick)}): {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
