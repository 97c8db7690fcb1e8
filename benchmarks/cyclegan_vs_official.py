"""CycleGAN side by side with the authors' implementation, on the same machine and inputs.

    python benchmarks/cyclegan_vs_official.py --official /tmp/official [--size 256] [--rounds 2]

``--official`` is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (fetched by you to a
temporary folder, never committed; the numbers in docs/benchmarks.md used upstream commit
2a7afba). Every variant runs in a fresh process (peak memory = that process's ru_maxrss or CUDA
max_memory_allocated); variants are run round-robin ``--rounds`` times so that a change of load on
the machine hits all of them, and the median of the rounds is reported. Options are CycleGAN's
defaults: ResNet-9, ngf/ndf 64, instance norm, LSGAN, pool 50, λ 10/10/0.5, Adam 2e-4, batch 1.

Variants: theirs (their ``CycleGANModel.optimize_parameters``), ours (styleforge's method through
the trainer's ``run_phases``), ours-bf16 (the same under ``train.amp``'s bf16 autocast).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

VARIANTS = ("theirs", "ours", "ours-bf16")


def child(variant: str, official: str, size: int, device: str, warmup: int, iters: int) -> dict:
    import argparse as ap
    from contextlib import nullcontext

    import torch

    torch.manual_seed(0)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    real_A = (torch.rand(1, 3, size, size) * 2 - 1).to(dev)
    real_B = (torch.rand(1, 3, size, size) * 2 - 1).to(dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if variant.endswith("bf16") else nullcontext()
    if variant == "theirs":
        sys.path.insert(0, official)
        from models.cycle_gan_model import CycleGANModel

        opt = ap.Namespace(
            isTrain=True, checkpoints_dir="/tmp/sf_bench_ckpt", name="bench", device=dev,
            preprocess="resize_and_crop", input_nc=3, output_nc=3, ngf=64, ndf=64,
            netG="resnet_9blocks", netD="basic", n_layers_D=3, norm="instance", no_dropout=True,
            init_type="normal", init_gain=0.02, pool_size=50, gan_mode="lsgan", lr=2e-4, beta1=0.5,
            lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5, direction="AtoB", continue_train=False,
            load_iter=0, epoch="latest", verbose=False, lr_policy="linear", epoch_count=1,
            n_epochs=100, n_epochs_decay=100)
        model = CycleGANModel(opt)
        model.setup(opt)
        data = {"A": real_A, "B": real_B, "A_paths": ["a"], "B_paths": ["b"]}

        def train_step():
            model.set_input(data)
            model.optimize_parameters()

        G = model.netG_A
    else:
        sys.path.insert(0, str(HERE.parent / "src"))
        from styleforge.registry import build_method
        from styleforge.training.trainer import build_optimizers, configure_backends, run_phases

        configure_backends(dev)  # what the trainer does (cuDNN autotune on CUDA)
        method = build_method("cyclegan").to(dev)
        opts = build_optimizers(method, {"lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0})
        batch = {"A": real_A, "B": real_B}

        def train_step():
            with amp:
                run_phases(method, opts, batch)

        G = method.G_A
    train_s = common.median_time(train_step, warmup, iters, sync)
    peak_train = common.peak_memory_mb(device)

    def infer():
        with torch.inference_mode(), amp:
            G(real_A)

    infer_s = common.median_time(infer, 3, max(iters, 5), sync)
    return {"variant": variant, "train_s": train_s, "infer_s": infer_s, "peak_mb": peak_train}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="checkout of the authors' repository")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.official, a.size, a.device, a.warmup, a.iters)))
        return
    if not (Path(a.official) / "models" / "cycle_gan_model.py").is_file():
        sys.exit(f"error: {a.official} is not a checkout of pytorch-CycleGAN-and-pix2pix")
    info = common.machine()
    print(json.dumps(info))
    variants = a.variants.split(",")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(a.rounds):
        for v in variants:
            res = common.run_variant(__file__, ["--official", a.official, "--size", str(a.size),
                                                "--device", a.device, "--warmup", str(a.warmup),
                                                "--iters", str(a.iters), "--child", v])
            print(f"round {r + 1} {v}: {json.dumps(res)}", file=sys.stderr, flush=True)
            runs[v].append(res)
    rows = []
    for v in variants:
        ok = [x for x in runs[v] if "error" not in x]
        if not ok:
            rows.append({"variant": v, "train s/iter": runs[v][0]["error"]})
            continue
        rows.append({"variant": v, **{k: statistics.median(x[k] for x in ok)
                                      for k in ("train_s", "infer_s", "peak_mb")}})
    base = next((r for r in rows if r["variant"] == "theirs" and "train_s" in r), None)
    for r in rows:
        if base and "train_s" in r:
            r["train speed-up"] = base["train_s"] / r["train_s"]
            r["infer speed-up"] = base["infer_s"] / r["infer_s"]
            r["memory ratio"] = r["peak_mb"] / base["peak_mb"]
    print(f"\nCycleGAN {a.size}px batch 1 on {a.device}; machine: {json.dumps(info)}; "
          f"load after: {os.getloadavg()[0]:.2f}")
    print(common.table(rows, ["variant", "train_s", "infer_s", "peak_mb", "train speed-up",
                              "infer speed-up", "memory ratio"]))


if __name__ == "__main__":
    main()
