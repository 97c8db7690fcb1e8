"""vintagify 0.1.2's CycleGAN (modern -> vintage photos) imported by ``styleforge import
cyclegan``, against the package's own code: largest output difference per size, time per image,
and the before/after sheet docs/cyclegan_vintagify.png.

    python benchmarks/cyclegan_vintagify.py [--device cpu|cuda] [--iters 5] [--clock wall|cpu]
        [--timing-only | --no-compare] [--sheet docs/cyclegan_vintagify.png] [--json FILE]

Needs the wheel unpacked by scripts/setup.sh (``<venv>/share/styleforge/vintagify-0.1.2``).
Theirs is their ``generator.py`` ``ResnetGenerator`` with ``G_A2B_epoch33.pth`` and the tensor
of their ``preprocess.py`` (Resize(size + 30), CenterCrop(size), ToTensor, Normalize(0.5, 0.5)),
both as tests/methods/vintagify_reference.py reproduces them without torchvision (which does
not import beside the CPU torch). Ours is the imported model directory through
``styleforge.load``: ``translate`` on the same tensor for the differences and the timings, and
the public path (image file -> PIL image) for the sheet.

Differences are on the [0, 1] scale of the images their inference saves ((y + 1) / 2), over
every pixel and channel, on the bundled data/ photos (128 px, upscaled by their Resize) and on
full-size photos of ../shared/data where present. Timing: one 512×512 image (their default
size), fp32, ``no_grad`` for both, ours and theirs interleaved, median of ``--iters`` after 2
warm-up passes, the order alternating (``--clock cpu``: one thread, process CPU time).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "methods"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import common  # noqa: E402
from vintagify_reference import their_crop, their_generator, their_input, vintagify_pth  # noqa: E402

SAMPLE = ROOT / "data" / "style_transfer" / "content"
SHARED = ROOT.parent / "shared" / "data"
COMPARE = [SAMPLE / n for n in ("golden_gate.jpg", "chicago.jpg", "cornell.jpg")] + [
    SHARED / "adain_examples" / "content" / "newyork.jpg", SHARED / "msgnet_styles" / "content" / "shenyang.jpg"]
SIZES = (256, 512, (384, 512))
SHEET = [SHARED / "adain_examples" / "content" / "cornell.jpg",
         SHARED / "msgnet_styles" / "content" / "venice-boat.jpg",
         SHARED / "coco_stuff_samples" / "val_img" / "000000001584.jpg",  # a London bus
         SHARED / "coco_stuff_samples" / "val_img" / "000000000139.jpg"]  # a living room


def label(size) -> str:
    return f"{size}×{size}" if isinstance(size, int) else f"{size[0]}×{size[1]}"


def differences(pipe, theirs, device) -> list[dict]:
    rows = []
    for photo in [p for p in COMPARE if p.is_file()]:
        for size in SIZES:
            x = their_input(photo, size).to(device)
            with torch.no_grad():
                d = ((pipe.method.translate(x) - theirs(x)).abs().max() / 2).item()
            rows.append({"photo": photo.name, "size": label(size), "max_abs_diff": d, "in_255ths": d * 255})
    return rows


def timings(pipe, theirs, device, iters: int, clock: str = "wall") -> dict:
    x = their_input(SAMPLE / "cornell.jpg", 512).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    now = time.process_time if clock == "cpu" else time.perf_counter
    fns = {"theirs": lambda: theirs(x), "ours": lambda: pipe.method.translate(x)}
    times = {k: [] for k in fns}
    with torch.no_grad():
        for _ in range(2):
            for fn in fns.values():
                fn()
        for i in range(iters):  # the order alternates: neither always runs on the other's leftovers
            for k, fn in (list(fns.items()) if i % 2 == 0 else list(fns.items())[::-1]):
                sync()
                t = now()
                fn()
                sync()
                times[k].append(now() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def change_stats(before: Image.Image, after: Image.Image) -> dict:
    """What the network did to one photo: mean R, G, B (0-255), mean HSV saturation (0-255),
    RMS contrast of the luma, before and after; mean |after - before|."""
    def stats(im):
        a = np.asarray(im, dtype=np.float64)
        luma = a @ [0.299, 0.587, 0.114]
        sat = np.asarray(im.convert("HSV"), dtype=np.float64)[..., 1]
        return {"rgb": [round(float(v), 1) for v in a.reshape(-1, 3).mean(0)],
                "saturation": round(float(sat.mean()), 1), "contrast": round(float(luma.std()), 1)}
    diff = np.abs(np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)).mean()
    return {"before": stats(before), "after": stats(after), "mean_abs_change": round(float(diff), 1)}


def sheet(pipe, out: Path, tile: int = 224, size: int = 512, gain: int = 4) -> dict:
    """Rows: the photo (their 512 px crop), ours on it (the public path: file -> PIL image),
    ``gain`` × |after - before| averaged over R, G, B (grey). Tiles are downscaled to ``tile`` px
    (the sheet stays under 1 MB)."""
    photos = [p for p in SHEET if p.is_file()] or [SAMPLE / n for n in ("cornell.jpg", "chicago.jpg", "sailboat.jpg")]
    pad, head = 6, 22
    img = Image.new("RGB", (3 * tile + 4 * pad, head + len(photos) * (tile + pad) + pad), "white")
    draw = ImageDraw.Draw(img)
    for j, text in enumerate(("photo (their 512 px crop)", "vintagify G_A2B, imported",
                              f"|after - before| x{gain}, grey")):
        draw.text((pad + j * (tile + pad), 6), text, fill="black")
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, photo in enumerate(photos):
            crop = their_crop(photo, size)
            crop.save(Path(tmp) / "in.png")
            after = pipe(Path(tmp) / "in.png")  # the public path: file -> PIL image
            found[photo.name] = change_stats(crop, after)
            diff = np.abs(np.asarray(after, dtype=np.int16) - np.asarray(crop, dtype=np.int16)).mean(-1) * gain
            y = head + i * (tile + pad)
            grey = Image.fromarray(np.clip(diff, 0, 255).astype(np.uint8)).convert("RGB")
            for j, im in enumerate((crop, after, grey)):
                img.paste(im.resize((tile, tile), Image.LANCZOS), (pad + j * (tile + pad), y))
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: one thread, timed by process CPU time (steady on a machine shared with other jobs)")
    p.add_argument("--sheet", type=Path, help="write the before/after sheet here (e.g. docs/cyclegan_vintagify.png)")
    p.add_argument("--no-compare", action="store_true", help="skip the differences and timings")
    p.add_argument("--timing-only", action="store_true", help="skip the differences")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    a = p.parse_args(argv)
    pth = vintagify_pth()
    if pth is None:
        sys.exit("error: the vintagify wheel is not unpacked: run scripts/setup.sh")
    import styleforge

    device = torch.device(a.device)
    if a.clock == "cpu":
        torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "vintagify"
        subprocess.run([sys.executable, "-m", "styleforge", "import", "cyclegan", str(pth), str(model_dir),
                        "--quiet"], check=True)
        pipe = styleforge.load(model_dir, device=a.device)
    theirs = their_generator(pth).to(device)
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    result = {"device": where, "machine": common.machine()}
    if not a.no_compare:
        result["differences"] = [] if a.timing_only else differences(pipe, theirs, device)
        result["seconds_per_512_image"] = timings(pipe, theirs, device, a.iters, a.clock)
        result["clock"] = a.clock
        for r in result["differences"]:
            print(f"{r['photo']:>16} {r['size']:>8}: max |ours - theirs| = {r['max_abs_diff']:.3g} "
                  f"({r['in_255ths']:.3g}/255)")
        t = result["seconds_per_512_image"]
        print(f"512×512 on {result['device']} ({a.clock} clock): theirs {t['theirs'] * 1000:.1f} ms, "
              f"ours {t['ours'] * 1000:.1f} ms")
    if a.sheet:
        result["sheet"] = sheet(pipe, a.sheet)
        print(f"wrote {a.sheet} ({a.sheet.stat().st_size / 1e3:.0f} kB)")
        for name, st in result["sheet"].items():
            print(f"{name:>18}: {st}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
