"""U-GAT-IT and Photo2Cartoon: peak memory and time of one training step, full vs light, 128 and
256 px, with the options that cut memory without changing the model, beside the authors' code.

    python benchmarks/ugatit_memory.py [--method ugatit|photo2cartoon] [--official DIR]
        [--sizes 128,256] [--models light,full]
        [--variants ours,ours-ckpt,ours-bf16,ours-ckpt-bf16,theirs]

Official options. U-GAT-IT (znxlwm/UGATIT-pytorch): ch 64, 4 residual blocks, global (7-layer) +
local (5-layer) discriminators, Adam 1e-4 (0.5, 0.999) weight decay 1e-4, batch 1; ``--official``
is a folder holding their ``networks.py``. Photo2Cartoon (minivision-ai/photo2cartoon): ch 32,
the same discriminators and optimiser, face-ID loss through a MobileFaceNet (random weights
here, written once in the ``model_mobilefacenet.pth`` layout and read by both sides);
``--official`` is a folder holding their ``models/`` package (``networks.py``,
``mobilefacenet.py``, ``face_features.py`` and an empty ``__init__.py``). Every measurement runs in a fresh process
(peak memory = its ``ru_maxrss`` on CPU, ``torch.cuda.max_memory_allocated`` on CUDA).

Variants:
  ours            styleforge's U-GAT-IT through the trainer's ``run_phases``
  ours-ckpt       ``model.checkpoint_blocks=true`` (residual stacks recomputed in the backward)
  ours-bf16       under bf16 autocast (``train.amp=true``)
  ours-ckpt-bf16  both
  theirs          the authors' networks (``--official``: fetched by you to /tmp, never
                  committed) driven by their training loop's body as their UGATIT.py /
                  UGATIT_sadalin_hourglass.py write it (D update, then G update with one backward
                  of the summed loss, then the rho (and w) clippers); needs only torch

A configuration whose weights + gradients + Adam state alone (16 bytes per parameter) would not
fit in the memory available now is skipped and reported as such.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

VARIANTS = ("ours", "ours-ckpt", "ours-bf16", "ours-ckpt-bf16", "theirs")
OPTIONS = {"ugatit": dict(ch=64, n_res=4), "photo2cartoon": dict(ch=32)}
FACEID_WEIGHT = 1.0  # photo2cartoon's default


def param_count(method: str, light: bool, size: int) -> int:
    """Parameters of the whole model (2 generators, 4 discriminators), built on the meta device."""
    import torch

    sys.path.insert(0, str(HERE.parent / "src"))
    from styleforge.registry import build_method

    with torch.device("meta"):
        m = build_method(method, light=light, img_size=size, **OPTIONS[method])
    return sum(p.numel() for p in m.parameters())


def facenet_file() -> str:
    """A randomly initialised MobileFaceNet in the layout of the authors' model_mobilefacenet.pth."""
    import tempfile

    import torch

    sys.path.insert(0, str(HERE.parent / "src"))
    from styleforge.nn.mobilefacenet import MobileFaceNet

    path = Path(tempfile.gettempdir()) / "styleforge_bench_mobilefacenet.pth"
    if not path.is_file():
        torch.manual_seed(0)
        torch.save(MobileFaceNet().state_dict(), path)
    return str(path)


def theirs_step(method: str, official: str, light: bool, size: int, dev):
    """The authors' networks and the body of their training loop (UGATIT.train)."""
    import torch
    from torch import nn

    sys.path.insert(0, official)
    ch = OPTIONS[method]["ch"]
    torch.manual_seed(0)
    if method == "ugatit":
        from networks import Discriminator, ResnetGenerator, RhoClipper

        gen = lambda: ResnetGenerator(3, 3, ch, OPTIONS[method]["n_res"], size, light).to(dev)  # noqa: E731
        clippers, facenet = [RhoClipper(0, 1)], None
    else:
        from models.face_features import FaceFeatures
        from models.networks import Discriminator, ResnetGenerator, RhoClipper, WClipper

        gen = lambda: ResnetGenerator(ngf=ch, img_size=size, light=light).to(dev)  # noqa: E731
        clippers, facenet = [RhoClipper(0, 1), WClipper(0, 1)], FaceFeatures(facenet_file(), dev)
    gA2B, gB2A = gen(), gen()
    dGA, dGB = Discriminator(3, ch, 7).to(dev), Discriminator(3, ch, 7).to(dev)
    dLA, dLB = Discriminator(3, ch, 5).to(dev), Discriminator(3, ch, 5).to(dev)
    G_opt = torch.optim.Adam(itertools.chain(gA2B.parameters(), gB2A.parameters()), lr=1e-4,
                             betas=(0.5, 0.999), weight_decay=1e-4)
    D_opt = torch.optim.Adam(itertools.chain(dGA.parameters(), dGB.parameters(), dLA.parameters(),
                                             dLB.parameters()), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
    mse, l1, bce = nn.MSELoss(), nn.L1Loss(), nn.BCEWithLogitsLoss()
    cycle_w = 10 if method == "ugatit" else 50
    ones = lambda t: mse(t, torch.ones_like(t))
    zeros = lambda t: mse(t, torch.zeros_like(t))

    def step(real_A, real_B):
        D_opt.zero_grad()
        fA2B, _, _ = gA2B(real_A)
        fB2A, _, _ = gB2A(real_B)
        d_loss = 0
        for d, real, fake in ((dGA, real_A, fB2A), (dLA, real_A, fB2A), (dGB, real_B, fA2B), (dLB, real_B, fA2B)):
            r, r_cam, _ = d(real)
            f, f_cam, _ = d(fake)
            d_loss = d_loss + ones(r) + zeros(f) + ones(r_cam) + zeros(f_cam)
        d_loss.backward()
        D_opt.step()
        G_opt.zero_grad()
        fA2B, fA2B_cam, _ = gA2B(real_A)
        fB2A, fB2A_cam, _ = gB2A(real_B)
        fA2B2A, _, _ = gB2A(fA2B)
        fB2A2B, _, _ = gA2B(fB2A)
        fA2A, fA2A_cam, _ = gB2A(real_A)
        fB2B, fB2B_cam, _ = gA2B(real_B)
        g_loss = 0
        for d, fake in ((dGA, fB2A), (dLA, fB2A), (dGB, fA2B), (dLB, fA2B)):
            f, f_cam, _ = d(fake)
            g_loss = g_loss + ones(f) + ones(f_cam)
        g_loss = g_loss + cycle_w * (l1(fA2B2A, real_A) + l1(fB2A2B, real_B)) + 10 * (l1(fA2A, real_A) + l1(fB2B, real_B))
        if facenet is not None:
            g_loss = g_loss + FACEID_WEIGHT * (facenet.cosine_distance(real_A, fA2B).mean()
                                               + facenet.cosine_distance(real_B, fB2A).mean())
        g_loss = g_loss + 1000 * (bce(fB2A_cam, torch.ones_like(fB2A_cam)) + bce(fA2A_cam, torch.zeros_like(fA2A_cam))
                                  + bce(fA2B_cam, torch.ones_like(fA2B_cam)) + bce(fB2B_cam, torch.zeros_like(fB2B_cam)))
        g_loss.backward()
        G_opt.step()
        for c in clippers:
            gA2B.apply(c)
            gB2A.apply(c)

    return step, gA2B


def child(method: str, variant: str, official: str, light: bool, size: int, device: str, warmup: int,
          iters: int) -> dict:
    from contextlib import nullcontext

    import torch

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    g = torch.Generator().manual_seed(0)
    real_A = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(dev)
    real_B = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if variant.endswith("bf16") else nullcontext()
    if variant == "theirs":
        step, G = theirs_step(method, official, light, size, dev)
        train_step = lambda: step(real_A, real_B)
    else:
        sys.path.insert(0, str(HERE.parent / "src"))
        from styleforge.registry import build_method
        from styleforge.training.trainer import build_optimizers, run_phases

        torch.manual_seed(0)
        extra = {"facenet_weights": facenet_file(), "faceid_weight": FACEID_WEIGHT} if method == "photo2cartoon" else {}
        if "ckpt" in variant:
            extra["checkpoint_blocks"] = True
        model = build_method(method, light=light, img_size=size, **OPTIONS[method], **extra).to(dev)
        opts = build_optimizers(model, {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4})
        batch = {"A": real_A, "B": real_B}

        def train_step():
            with amp:
                run_phases(model, opts, batch)

        G = model.genA2B
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_s = common.median_time(train_step, warmup, iters, sync)
    peak = common.peak_memory_mb(device)

    def infer():
        with torch.inference_mode(), amp:
            G(real_A)

    infer_s = common.median_time(infer, 1, 3, sync)
    return {"variant": variant, "train_s": train_s, "infer_s": infer_s, "peak_mb": peak}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="ugatit", choices=tuple(OPTIONS))
    p.add_argument("--official", help="folder with the authors' code (for the 'theirs' variant; see above)")
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--models", default="light,full")
    p.add_argument("--variants", default=",".join(VARIANTS[:4]))
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--light", type=int, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.method, a.child, a.official, bool(a.light), a.size, a.device, a.warmup, a.iters)))
        return
    variants = a.variants.split(",")
    need = "networks.py" if a.method == "ugatit" else "models/networks.py"
    if "theirs" in variants and not (a.official and (Path(a.official) / need).is_file()):
        sys.exit(f"error: the 'theirs' variant needs --official DIR holding the authors' {need}")
    info = common.machine()
    print(json.dumps(info), flush=True)
    rows = []
    for model, size in itertools.product(a.models.split(","), [int(s) for s in a.sizes.split(",")]):
        light = model == "light"
        n = param_count(a.method, light, size)
        static_mb = n * 16 / 2 ** 20  # fp32 weights, gradients, Adam's two moments
        for v in variants:
            row = {"model": model, "size": size, "variant": v, "params_M": n / 1e6, "static_mb": static_mb}
            avail = common.mem_available_mb()
            if a.device == "cpu" and static_mb * 1.2 > avail:
                row["note"] = f"skipped: needs > {static_mb * 1.2 / 1024:.1f} GiB, {avail / 1024:.1f} GiB available"
            else:
                res = common.run_variant(__file__, ["--method", a.method, "--child", v, "--light", str(int(light)), "--size", str(size),
                                                    "--device", a.device, "--warmup", str(a.warmup),
                                                    "--iters", str(a.iters)]
                                         + (["--official", a.official] if a.official else []))
                row |= {k: res[k] for k in ("train_s", "infer_s", "peak_mb") if k in res}
                if "error" in res:
                    row["note"] = res["error"][:120]
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    for r in rows:
        base = next((b for b in rows if (b["model"], b["size"], b["variant"]) == (r["model"], r["size"], "ours")
                     and "peak_mb" in b), None)
        if base and "peak_mb" in r:
            r["mem vs ours"] = r["peak_mb"] / base["peak_mb"]
            r["time vs ours"] = r["train_s"] / base["train_s"]
    print(f"\n{a.method} {OPTIONS[a.method]}, batch 1 on {a.device}; machine: {json.dumps(info)}; "
          f"load after: {os.getloadavg()[0]:.2f}")
    print(common.table(rows, ["model", "size", "variant", "params_M", "static_mb", "peak_mb", "train_s",
                              "infer_s", "mem vs ours", "time vs ours", "note"]))


if __name__ == "__main__":
    main()
