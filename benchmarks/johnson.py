"""Johnson et al. fast style transfer side by side with pytorch/examples ``fast_neural_style``, on
the same machine, weights and inputs: inference (one TransformerNet forward) and one training step
(TransformerNet + VGG-16 perceptual loss + Adam), with peak memory.

    python benchmarks/johnson.py --official /tmp/examples/fast_neural_style [--size 256]
                                 [--batch 4] [--rounds 2] [--device cpu] [--clock cpu]

``--official`` is the ``fast_neural_style`` folder of a pytorch/examples checkout (fetched to a
temporary folder, never committed). Their ``vgg.py`` takes the VGG-16 from torchvision, which
styleforge does not use: their ``Vgg16`` is given a stand-in ``torchvision.models.vgg16`` whose
``features`` is the same 31-layer ``nn.Sequential`` (random weights: speed does not depend on
them). Their step is their ``train`` loop body (``normalize_batch``, ``gram_matrix``,
``MSELoss``); ours is ``Johnson.training_step`` with Adam on its ``G`` group. Inference: their
``stylize`` (``no_grad``, 0..255 input) and our ``translate`` (``inference_mode``, [-1, 1], the
conversions included); ``ours-bf16`` runs both under bf16 autocast (a numerics change: the table
gives its largest output difference, in 0..255 units, for random weights). Each variant runs in
a fresh process; rounds alternate the variants and the median is reported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

VARIANTS = ("theirs", "ours", "ours-bf16")


def _stub_torchvision(features):
    """``torchvision.models.vgg16(weights=...)`` returning an object with ``.features``."""
    models = types.ModuleType("torchvision.models")
    models.VGG16_Weights = types.SimpleNamespace(IMAGENET1K_V1=None)
    models.vgg16 = lambda *a, **k: types.SimpleNamespace(features=features)
    tv = types.ModuleType("torchvision")
    tv.models = models
    sys.modules["torchvision"], sys.modules["torchvision.models"] = tv, models


def _vgg16_features():
    """torchvision's ``vgg16().features`` layer list: conv3×3 + ReLU(inplace), max-pool per block."""
    from torch import nn

    layers, ch = [], 3
    for widths in ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3):
        for w in widths:
            layers += [nn.Conv2d(ch, w, 3, padding=1), nn.ReLU(inplace=True)]
            ch = w
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


cpu_time = common.cpu_time


def child(variant, official, size, batch, device, warmup, iters, clock="wall"):
    import tempfile

    import torch

    if clock == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(0)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    features = _vgg16_features()
    x255 = (torch.rand(batch, 3, size, size) * 255).to(dev)
    style_u8 = (torch.rand(1, 3, size, size) * 255).to(torch.uint8)
    style255 = style_u8.float().to(dev)
    sys.path.insert(0, str(Path(official) / "neural_style"))
    from transformer_net import TransformerNet

    weights = TransformerNet().state_dict()
    extra = {}
    if variant == "theirs":
        _stub_torchvision(features)
        import utils
        from vgg import Vgg16

        net = TransformerNet().to(dev)
        net.load_state_dict(weights)
        vgg = Vgg16(requires_grad=False).to(dev)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        mse = torch.nn.MSELoss()
        gram_style = [utils.gram_matrix(y) for y in vgg(utils.normalize_batch(style255.repeat(batch, 1, 1, 1)))]

        def infer():
            with torch.no_grad():
                net(x255[:1])

        def step():
            opt.zero_grad()
            y = utils.normalize_batch(net(x255))
            x = utils.normalize_batch(x255.clone())  # their normalize_batch divides in place
            fy, fx = vgg(y), vgg(x)
            content = 1e5 * mse(fy.relu2_2, fx.relu2_2)
            style = 0.
            for ft_y, gm_s in zip(fy, gram_style):
                style += mse(utils.gram_matrix(ft_y), gm_s[:batch])
            (content + 1e10 * style).backward()
            opt.step()
    else:
        sys.path.insert(0, str(HERE.parent / "src"))
        from styleforge.methods.johnson import Johnson, from_pixels

        sd = {f"features.{i}.{p}": getattr(m, p).detach() for i, m in enumerate(features)
              if isinstance(m, torch.nn.Conv2d) for p in ("weight", "bias")}
        with tempfile.TemporaryDirectory() as tmp:
            from PIL import Image

            torch.save(sd, Path(tmp) / "vgg16-397923af.pth")
            Image.fromarray(style_u8[0].permute(1, 2, 0).numpy()).save(Path(tmp) / "style.png")
            m = Johnson(style_image=str(Path(tmp) / "style.png"), vgg_weights=str(Path(tmp) / "vgg16-397923af.pth"))
            m.transformer.load_state_dict(weights)
            m.to(dev)
            opt = torch.optim.Adam(m.optimizer_groups()["G"], 1e-3)  # reads both files
        content = from_pixels(x255)

        amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=variant == "ours-bf16")

        def infer():
            with torch.inference_mode(), amp:
                return m.translate(content[:1])

        def step():
            opt.zero_grad()
            with amp:
                for ph in m.training_step({"content": content}):
                    sum(ph.losses.values()).backward()
            opt.step()

        if variant == "ours-bf16":  # what bf16 changes in the output, in their 0..255 units
            with torch.inference_mode():
                exact = m.translate(content[:1])
            extra["bf16_max_diff_255"] = ((infer().float() - exact).abs().max() * 127.5).item()

    timer = common.median_time if clock == "wall" else cpu_time
    infer_s = timer(infer, warmup, iters, sync)
    step_s = timer(step, max(1, warmup // 2), max(2, iters // 3), sync)
    return {"variant": variant, "infer_s": infer_s, "step_s": step_s,
            "peak_mb": round(common.peak_memory_mb(device), 1), **extra}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=False, help="pytorch/examples' fast_neural_style folder")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: one thread timed by process CPU time (for a shared, busy machine)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.official, a.size, a.batch, a.device, a.warmup, a.iters, a.clock)))
        return
    if not a.official:
        ap.error("--official FOLDER is needed (pytorch/examples' fast_neural_style)")
    args = ["--official", a.official, "--size", str(a.size), "--batch", str(a.batch), "--device", a.device,
            "--warmup", str(a.warmup), "--iters", str(a.iters), "--clock", a.clock]
    runs = {v: [] for v in VARIANTS}
    for _ in range(a.rounds):
        for v in VARIANTS:
            runs[v].append(common.run_variant(__file__, [*args, "--child", v]))
    rows = []
    for v, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            rows.append({"variant": v, "infer_s": rs[0]["error"]})
            continue
        rows.append({k: statistics.median(r[k] for r in ok) if k != "variant" else v for k in ok[0]})
    theirs = rows[0]
    for r in rows:
        if isinstance(r.get("infer_s"), float) and isinstance(theirs.get("infer_s"), float):
            r["infer_speedup"] = theirs["infer_s"] / r["infer_s"]
            r["step_speedup"] = theirs["step_s"] / r["step_s"]
    print(json.dumps(common.machine()))
    print(f"size {a.size}, train batch {a.batch}, device {a.device}, clock {a.clock}, {a.rounds} rounds")
    print(common.table(rows, ["variant", "infer_s", "infer_speedup", "step_s", "step_speedup", "peak_mb",
                              "bf16_max_diff_255"]))


if __name__ == "__main__":
    main()
