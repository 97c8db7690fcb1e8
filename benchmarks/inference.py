"""Inference at the machine's limit: every feed-forward method at its usual sizes, per runtime.

    python benchmarks/inference.py [--official /tmp/official] [--only cyclegan-256,johnson-512]
        [--cyclegan-weights DIR] [--cin-weights DIR] [--no-compile] [--repeats 2] [--json OUT]

For each case (method, side) it prints the multiply-adds per image (convolutions, transposed
convolutions and linear layers, counted by hooks on one run), and for each runtime of
:mod:`styleforge.accel` (torch eager fp32, channels_last, torch+bf16, compile, onnx fp32, int8)
the seconds per image, the fraction of the machine's limit for that arithmetic (MACs/s over the
conv throughput measured at the start of the same run: fp32 and bf16 by oneDNN through torch,
int8 by ONNX Runtime on a QDQ convolution), and the PSNR and max |Δ| against fp32 eager on a
real image of ``data/`` (the paths' own check, ``Pipeline._measure``). Times are the process's
CPU time with one thread (``common.cpu_time``'s reasoning: on a shared machine the wall clock
is inflated 2-5×, one thread's CPU time barely). ``theirs``: the authors'
fp32 network on the same input size, where their code is in ``--official`` (a folder with the
checkouts ``examples/`` (pytorch/examples), ``pytorch-AdaIN/``, ``MUNIT/``, ``UNIT/``,
``FUNIT/``, ``pytorch-CycleGAN-and-pix2pix/`` (upstream 2a7afba, see
official_cyclegan_notes.md), ``UGATIT-pytorch/`` and ``photo2cartoon/``, fetched outside the
repository as for the other ``*_vs_official`` scripts, whose loaders this reuses; CIN has no
authors' PyTorch code, only magenta's TensorFlow); ``ratio`` = theirs ÷ the best path within the
quality bound.

int8 files are calibrated on the case's image folder (``export_int8`` with ``min_psnr=0``, so
that the table shows the PSNR that makes ``export --int8`` refuse them). Each case runs in its
own process, one thread, a warm-up and ``--repeats`` timed runs (the best is kept): on a loaded
machine the numbers are noisy, and ratios are only meaningful within one run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

# (case, preset, side, image folder, style folder or None)
CASES = [
    ("cyclegan-256", "cyclegan", 256, "data/horse2zebra/testA", None),
    ("cyclegan-512", "cyclegan", 512, "data/horse2zebra/testA", None),
    ("pix2pix-256", "pix2pix-facades", 256, "data/facades/test", None),
    ("pix2pix-512", "pix2pix-facades", 512, "data/facades/test", None),
    ("ugatit-light-256", "ugatit-light", 256, "data/horse2zebra/testA", None),
    ("photo2cartoon-256", "photo2cartoon", 256, "data/style_transfer/content", None),
    ("johnson-512", "johnson", 512, "data/style_transfer/content", None),
    ("johnson-1024", "johnson", 1024, "data/style_transfer/content", None),
    ("cin-512", "cin", 512, "data/style_transfer/content", None),
    ("cin-1024", "cin", 1024, "data/style_transfer/content", None),
    ("adain-512", "adain", 512, "data/style_transfer/content", "data/style_transfer/style"),
    ("munit-256", "munit/edges2handbags", 256, "data/horse2zebra/testA", None),
    ("unit-256", "unit", 256, "data/horse2zebra/testA", None),
    ("funit-128", "funit", 128, "data/animals/cat", "data/animals/dog"),
]
CYCLEGAN_REPO = "pytorch-CycleGAN-and-pix2pix"  # upstream 2a7afba (official_cyclegan_notes.md)
PATHS = ("channels_last", "torch+bf16", "compile", "onnx", "int8")
LIMIT_KIND = {"torch": "fp32", "channels_last": "fp32", "compile": "fp32", "onnx": "fp32",
              "torch+bf16": "bf16", "channels_last+bf16": "bf16", "compile+bf16": "bf16", "int8": "int8"}


# ---- the machine's conv limit ----------------------------------------------------------------------
def conv_limits(reps: int = 3) -> dict:
    """GMAC/s of a 3×3 256→256 convolution on 1×256×64×64 (CycleGAN's residual block): fp32 and
    bf16 through torch (oneDNN, channels-last), int8 through ONNX Runtime (QDQ, per-channel); and
    ``mem_read_gbs``, the GB/s one thread reads from memory (the bound of weight-heavy networks)."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).eval()
    x = torch.randn(1, 256, 64, 64)
    macs = 256 * 256 * 9 * 64 * 64
    out = {}
    cc = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).eval()
    cc.load_state_dict(conv.state_dict())
    cc = cc.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        xc = x.contiguous(memory_format=torch.channels_last)
        out["fp32"] = macs / common.cpu_time(lambda: cc(xc), 1, reps) / 1e9
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out["bf16"] = macs / common.cpu_time(lambda: cc(xc), 1, reps) / 1e9
    big = torch.ones(64 * 2 ** 20)  # 256 MiB, far beyond the caches: what one thread reads per second
    out["mem_read_gbs"] = big.numel() * 4 / common.cpu_time(big.sum, 1, reps) / 1e9
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "c.onnx", Path(tmp) / "q.onnx"
            with torch.no_grad():
                torch.onnx.export(conv, (x,), str(src), dynamo=False, opset_version=17, input_names=["x"])
            feeds = iter([{"x": x.numpy()}])

            class R(CalibrationDataReader):
                def get_next(self):
                    return next(feeds, None)

            quantize_static(str(src), str(dst), R(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            so = ort.SessionOptions()
            so.intra_op_num_threads = torch.get_num_threads()
            for name, f in (("fp32_ort", src), ("int8", dst)):
                s = ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"])
                xn = np.ascontiguousarray(x.numpy())
                out[name] = macs / common.cpu_time(lambda: s.run(None, {"x": xn}), 1, reps) / 1e9
    except ImportError:
        pass
    return {k: round(v, 1) for k, v in out.items()}


# ---- one case, in a child process -------------------------------------------------------------------
def count_macs(pipe, x, values) -> int:
    """Multiply-adds of one run (conv, transposed conv, linear), by forward hooks."""
    import torch

    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.ConvTranspose2d):
            total[0] += inp[0].numel() * (m.out_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            total[0] += out.numel() * m.in_features

    method = pipe.method
    nets = [getattr(method, n) for n in method.inference_modules]
    handles = [m.register_forward_hook(hook) for net in nets for m in net.modules()]
    try:
        pipe.run_tensor(x, **values)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def _images(folder: str, side: int, n: int):
    from styleforge.data.images import list_images, load_rgb
    from styleforge.data.transforms import to_tensor

    files = list_images(REPO / folder, recursive=True)[:n]
    return [to_tensor(load_rgb(f).resize((side, side)))[None] for f in files]


def theirs_seconds(case: str, official: str, side: int, repeats: int) -> float | None:
    """The authors' fp32 network on a ``side`` input, timed as ours (one warm-up, best of)."""
    import torch

    root = Path(official)
    x = torch.rand(1, 3, side, side) * 2 - 1
    method = case.split("-")[0]
    if method == "johnson" and (root / "examples/fast_neural_style/neural_style").is_dir():
        sys.path.insert(0, str(root / "examples/fast_neural_style/neural_style"))
        from transformer_net import TransformerNet

        net = TransformerNet().eval()
        x255 = (x + 1) * 127.5

        def infer():
            with torch.no_grad():
                net(x255)
    elif method == "adain" and (root / "pytorch-AdaIN").is_dir():
        import adain as adain_bench  # benchmarks/adain.py

        net = adain_bench.their_networks(str(root / "pytorch-AdaIN"))
        sys.path.insert(0, str(root / "pytorch-AdaIN"))
        from function import adaptive_instance_normalization

        vgg = torch.nn.Sequential(*list(net.vgg.children())[:31]).eval()
        dec = net.decoder.eval()
        c, s = (x + 1) / 2, torch.rand(1, 3, side, side)

        def infer():  # their test.py's style_transfer, alpha 1
            with torch.no_grad():
                dec(adaptive_instance_normalization(vgg(c), vgg(s)))
    elif method in ("cyclegan", "pix2pix") and (root / CYCLEGAN_REPO / "models/networks.py").is_file():
        sys.path.insert(0, str(root / CYCLEGAN_REPO))
        from models import networks

        # their options: cycle_gan forces --no_dropout with resnet_9blocks and instance norm;
        # pix2pix uses unet_256, batch norm and keeps dropout; both through define_G + init_net
        # (normal, 0.02) as BaseModel.setup does. test.py runs model.test() = no_grad forward
        # with the networks left in train mode (no --eval): pix2pix normalises by the test
        # image's own statistics and keeps dropout, as our pix2pix preset does.
        if method == "cyclegan":
            net = networks.define_G(3, 3, 64, "resnet_9blocks", "instance", use_dropout=False)
        else:
            net = networks.define_G(3, 3, 64, "unet_256", "batch", use_dropout=True)
        networks.init_net(net, "normal", 0.02)

        def infer():
            with torch.no_grad():
                net(x)
    elif method == "ugatit" and (root / "UGATIT-pytorch/networks.py").is_file():
        gen = _module_from(root / "UGATIT-pytorch/networks.py").ResnetGenerator
        # main.py's defaults with --light True: ch 64, n_res 4, img_size = the input side
        net = gen(input_nc=3, output_nc=3, ngf=64, n_blocks=4, img_size=side, light=True).eval()

        def infer():  # their test() calls genA2B(real_A) in eval mode (without no_grad: we
            with torch.no_grad():  # give theirs no_grad, which only makes it faster)
                net(x)
    elif method == "photo2cartoon" and (root / "photo2cartoon/models/networks.py").is_file():
        # the file alone: their models/__init__ imports the trainer, which needs torchvision
        gen = _module_from(root / "photo2cartoon/models/networks.py").ResnetGenerator
        net = gen(ngf=32, img_size=side, light=True).eval()  # test.py's generator

        def infer():  # test.py: no_grad, net(face)[0]
            with torch.no_grad():
                net(x)
    elif method in ("munit", "unit", "funit") and (root / method.upper()).is_dir():
        import latent_vs_official as lv

        dev = torch.device("cpu")
        xs = lv.inputs(method, side, 1, 1, dev)
        _, infer, _ = lv.theirs(method, str(root), xs, dev)
    else:
        return None
    _, best, _ = time_best(infer, repeats)
    return best


def _module_from(path: Path):
    """Import one file of the authors' code as a module of its own (no package __init__)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"theirs_{path.parent.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def time_best(fn, repeats):
    from styleforge import accel

    return accel.time_call(fn, repeats)


def child(a) -> dict:
    import torch

    torch.set_num_threads(1)
    from styleforge import accel
    from styleforge import config as C
    from styleforge.checkpoint import load_model
    from styleforge.export import export_int8, export_model
    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method

    accel.AUTO_REPEATS = a.repeats
    if not a.wall:
        accel.CLOCK = time.process_time  # one thread: CPU time, which other processes barely inflate
    case, preset, side, folder, style_folder = next(c for c in CASES if c[0] == a.child)
    weights = {"cyclegan": a.cyclegan_weights, "cin": a.cin_weights}.get(preset)
    torch.manual_seed(0)
    if weights:
        method = load_model(weights)
    else:
        cfg = C.resolve(preset)
        if "vgg_weights" in cfg["model"]:
            cfg["model"]["vgg_weights"] = "random"
        method = build_method(cfg["method"], **cfg["model"])
    method = method.eval()
    pipe = Pipeline(method, device="cpu")
    x = _images(folder, side, 1)[0]
    values = {}
    for inp in pipe.inputs[1:]:
        if inp.kind == "reference" and inp.required:
            values[inp.name] = _images(style_folder or folder, side, 1)[0]
        elif inp.kind == "images" and inp.required:
            values[inp.name] = list(_images(style_folder or folder, side, max(1, int(inp.min or 1))))
    if any(i.kind == "reference" for i in pipe.inputs[1:]) and values:
        from styleforge.data.transforms import to_pil

        values = {k: (to_pil(v[0]) if isinstance(v, torch.Tensor) else [to_pil(t[0]) for t in v])
                  for k, v in values.items()}
    seed = next((i.name for i in pipe.inputs if i.kind == "seed"), None)
    if seed:
        values[seed] = 0
    with torch.inference_mode():
        macs = count_macs(pipe, x, dict(values))
    pipe._eager = method
    names = [p for p in (a.paths.split(",") if a.paths else PATHS) if not (p == "compile" and a.no_compile)]
    files, notes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        if "onnx" in names or "int8" in names:
            try:
                files["onnx"] = export_model(method, Path(tmp) / "m.onnx", "onnx", check=False).path
            except Exception as e:
                notes["onnx"] = str(e).splitlines()[0][:120]
            try:
                t = time.perf_counter()
                files["int8"] = export_int8(method, REPO / folder, Path(tmp) / "m.int8.onnx", min_psnr=0,
                                             calibration_limit=4).path
                notes["int8_export_s"] = round(time.perf_counter() - t, 1)
            except Exception as e:
                notes["int8"] = str(e).splitlines()[0][:120]
        names = [n for n in names if n not in ("onnx", "int8") or n in files]
        rows = pipe._measure(names, x, values, files)
    theirs = None
    if a.official:
        try:
            theirs = theirs_seconds(case, a.official, side, a.repeats)
        except Exception as e:
            notes["theirs"] = f"{e.__class__.__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"
    return {"case": case, "macs": macs, "rows": [r.row() for r in rows], "theirs": theirs, "notes": notes,
            "weights": "trained (" + weights + ")" if weights else "random init"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", help="folder with the authors' checkouts (see the module docstring)")
    ap.add_argument("--only", help="comma-separated case names (default all)")
    ap.add_argument("--cyclegan-weights", help="a trained CycleGAN model directory for the PSNR")
    ap.add_argument("--cin-weights", help="a trained CIN model directory")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--wall", action="store_true", help="wall-clock times (compile's time is mostly in "
                    "compiler processes, which the CPU time of this one does not count)")
    ap.add_argument("--paths", help=f"comma-separated runtimes to run beside torch (default {','.join(PATHS)})")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--timeout", type=int, default=1500)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a)))
        return
    import torch

    torch.set_num_threads(1)
    info = common.machine()
    info["conv_gmacs"] = conv_limits()
    print(json.dumps(info), flush=True)
    wanted = a.only.split(",") if a.only else [c[0] for c in CASES]
    results = []
    for case in wanted:
        args = ["--child", case, "--repeats", str(a.repeats)]
        for flag in ("official", "cyclegan_weights", "cin_weights"):
            if getattr(a, flag):
                args += [f"--{flag.replace('_', '-')}", getattr(a, flag)]
        if a.no_compile:
            args.append("--no-compile")
        if a.paths:
            args += ["--paths", a.paths]
        if a.wall:
            args.append("--wall")
        t = time.time()
        try:
            r = common.run_variant(__file__, args, timeout=a.timeout)
        except Exception as e:  # a timeout
            r = {"error": e.__class__.__name__}
        r.setdefault("case", case)
        r["wall_s"] = round(time.time() - t)
        results.append(r)
        print(json.dumps(r), flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps({"machine": info, "results": results}, indent=1))
    print(render(info, results))


def render(info: dict, results: list[dict]) -> str:
    lim = info.get("conv_gmacs", {})
    out = []
    for r in results:
        if "rows" not in r:
            out.append(f"| {r['case']} | error: {r.get('error')} |")
            continue
        gmac = r["macs"] / 1e9
        ok = [x for x in r["rows"] if x["ok"]]
        best = min(ok, key=lambda x: x["seconds"])
        for x in r["rows"]:
            kind = LIMIT_KIND.get(x["name"], "fp32")
            frac = (gmac / x["seconds"]) / lim[kind] if lim.get(kind) and x["seconds"] and math.isfinite(x["seconds"]) else None
            ratio = r["theirs"] / x["seconds"] if r.get("theirs") and x["seconds"] and math.isfinite(x["seconds"]) else None
            db = x["psnr"]
            out.append("| {} | {:.1f} | {} | {} | {} | {} | {} | {} |".format(
                r["case"], gmac, x["name"] + (" **best**" if x is best else "") + ("" if x["ok"] else " (refused)"),
                f"{x['seconds']:.3g}" if math.isfinite(x["seconds"] or math.inf) else "failed",
                f"{frac:.0%}" if frac else "", "inf" if db is None else f"{db:.1f}",
                f"{x['max_diff']:.2g}" if x["max_diff"] is not None else "",
                f"{ratio:.2f}×" if ratio else ""))
        if r.get("theirs"):
            out.append(f"| {r['case']} | {gmac:.1f} | theirs (fp32 eager) | {r['theirs']:.3g} | | | | 1.00× |")
    head = ("| case | GMAC/img | runtime | s/img | of limit | PSNR dB | max abs diff | vs authors |\n"
            "|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(out)


if __name__ == "__main__":
    main()
