"""One Gatys iteration (VGG-19 to relu5_1 forward and backward, content + 5 Gram style losses +
TV, one L-BFGS update) at 512 px: styleforge's ``gatys`` beside neural-style-pt, on the same
machine, weights and images.

    python benchmarks/gatys_iteration.py --official /tmp/neural-style-pt [--size 512]
                                         [--rounds 2] [--threads 2] [--device cpu]

``--official`` is a neural-style-pt checkout (fetched to a temporary folder, never committed).
Both load the same random-weight ``vgg19-d01eb7cb.pth`` (the Caffe conversion's keys; speed does
not depend on the values) and stylise the bundled ``golden_gate.jpg`` with ``starry_night.jpg``
from the content (their ``-init image``), with their default layers and weights. Their script
imports ``torchvision.transforms`` only to load and save images: it is given a small stand-in
that does the same steps with PIL and torch. Each process runs the whole job with 1 and with 1+k
iterations (after a warm-up run) and counts the loss evaluations (forward + backward) of each
run by wrapping ``torch.optim.LBFGS.step``'s closure: the time difference divided by the
difference in evaluations is the time per iteration, so loading and saving cancel. (Counting
matters: their loop, ``while num_calls <= 1: optimizer.step(feval)``, makes ``-num_iterations 1``
evaluate twice, so dividing by k alone undercounts theirs by a third.) Rounds alternate the variants; the median is reported. pystiche is
not run: it needs torchvision, which styleforge does not install.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

CONTENT = REPO / "data" / "style_transfer" / "content" / "golden_gate.jpg"
STYLE = REPO / "data" / "style_transfer" / "style" / "starry_night.jpg"
VARIANTS = ("theirs", "ours", "ours-cl")  # ours-cl: VGG in channels_last (NHWC)


def _random_caffe_vgg(path: Path) -> None:
    import torch

    from styleforge.nn.vgg import VGGEncoder, torchvision_indices

    enc = VGGEncoder("vgg19", ("relu5_4",), "caffe")
    g = torch.Generator().manual_seed(0)
    sd = {}
    for name, idx in torchvision_indices("vgg19").items():
        conv = enc.features[enc.names.index(name)]
        sd[f"features.{idx}.weight"] = torch.randn(conv.weight.shape, generator=g) * 0.02
        sd[f"features.{idx}.bias"] = torch.zeros(conv.bias.shape)
    torch.save(sd, path)


def _stub_torchvision():
    """The ``torchvision.transforms`` calls neural_style.py makes, with PIL and torch."""
    import numpy as np
    import torch
    from PIL import Image

    tr = types.ModuleType("torchvision.transforms")

    class Compose:
        def __init__(self, fns):
            self.fns = fns

        def __call__(self, x):
            for f in self.fns:
                x = f(x)
            return x

    def Resize(size):  # (h, w) tuples only: that is what their preprocess passes
        return lambda img: img.resize((size[1], size[0]), Image.BILINEAR)

    def ToTensor():
        return lambda img: torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()

    def Lambda(fn):
        return fn

    def Normalize(mean, std):
        m = torch.tensor(mean).view(-1, 1, 1)
        s = torch.tensor(std).view(-1, 1, 1)
        return lambda t: (t - m) / s

    def ToPILImage():
        return lambda t: Image.fromarray((t.detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))

    for f in (Compose, Resize, ToTensor, Lambda, Normalize, ToPILImage):
        setattr(tr, f.__name__, f)
    tv = types.ModuleType("torchvision")
    tv.transforms = tr
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.transforms"] = tr


def _child(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    vgg = work / "vgg19-d01eb7cb.pth"
    if args.variant == "theirs":
        _stub_torchvision()
        sys.path.insert(0, args.official)
        sys.argv = ["neural_style.py", "-content_image", str(CONTENT), "-style_image", str(STYLE),
                    "-image_size", str(args.size), "-gpu", "c" if args.device == "cpu" else "0",
                    "-model_file", str(vgg), "-disable_check", "-init", "image", "-print_iter", "0",
                    "-save_iter", "0", "-output_image", str(work / "theirs.png"), "-num_iterations", "1"]
        import neural_style

        def run(n):
            neural_style.params.num_iterations = n
            neural_style.main()
    else:
        from styleforge.pipeline import Pipeline
        from styleforge.registry import build_method

        m = build_method("gatys", vgg_weights=str(vgg), sizes=[args.size], iterations=[1], progress=False,
                         stall_tol=0.0, channels_last=args.variant == "ours-cl")
        pipe = Pipeline(m, args.device)

        def run(n):
            pipe(str(CONTENT), style=[str(STYLE)], iterations=n).save(work / "ours.png")

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    evals = [0]
    step = torch.optim.LBFGS.step

    def counting_step(self, closure):
        def counted():
            evals[0] += 1
            return closure()
        return step(self, counted)

    torch.optim.LBFGS.step = counting_step
    run(1)  # warm-up: kernels, caches
    times, counts = {}, {}
    for n in (1, 1 + args.k):
        sync()
        evals[0] = 0
        t = time.perf_counter()
        run(n)
        sync()
        times[n], counts[n] = time.perf_counter() - t, evals[0]
    return {"variant": args.variant,
            "s_per_iter": (times[1 + args.k] - times[1]) / (counts[1 + args.k] - counts[1]),
            "evals": [counts[1], counts[1 + args.k]], "peak_mb": round(common.peak_memory_mb(args.device), 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="a neural-style-pt checkout")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--k", type=int, default=3, help="extra iterations timed")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variant", choices=VARIANTS)
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(_child(args)))
        return
    with tempfile.TemporaryDirectory() as work:
        _random_caffe_vgg(Path(work) / "vgg19-d01eb7cb.pth")
        results = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for v in VARIANTS:
                r = common.run_variant(__file__, ["--official", args.official, "--size", str(args.size),
                                                  "--k", str(args.k), "--threads", str(args.threads),
                                                  "--device", args.device, "--variant", v, "--work", work])
                if "error" in r:
                    sys.exit(f"{v}: {r['error']}")
                results[v].append(r)
    rows = [{"variant": v, "s/iteration": statistics.median(r["s_per_iter"] for r in rs),
             "peak MB": max(r["peak_mb"] for r in rs)} for v, rs in results.items()]
    speedup = rows[0]["s/iteration"] / rows[1]["s/iteration"]
    print(json.dumps(common.machine()))
    print(common.table(rows, ["variant", "s/iteration", "peak MB"]))
    print(f"ours is {speedup:.2f}x neural-style-pt's speed per iteration at {args.size} px on {args.device}")


if __name__ == "__main__":
    main()
