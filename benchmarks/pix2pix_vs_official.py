"""Pix2Pix side by side with the authors' implementation, on the same machine and inputs; then
eager PyTorch vs TorchScript vs onnxruntime inference latency for every generator.

    python benchmarks/pix2pix_vs_official.py --official /tmp/official [--size 256] [--rounds 2]
    python benchmarks/pix2pix_vs_official.py --runtimes-only      # the second table alone

``--official`` is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (fetched to a temporary
folder, never committed; the numbers in docs/benchmarks.md used upstream commit 2a7afba, see
benchmarks/official_cyclegan_notes.md). Every variant runs in a fresh process (peak memory = that
process's ru_maxrss, or CUDA max_memory_allocated); variants run round-robin ``--rounds`` times so
a change of load hits all of them, and the median of the rounds is reported.

Options are pix2pix's defaults for facades: U-Net-256 with dropout, ngf/ndf 64, 70×70 PatchGAN
on 6 channels, batch norm, vanilla GAN, λ_L1 100, Adam 2e-4 β1 0.5, batch 1, 256 px.
Train = one full step (D then G). Infer = one generator forward as the paper runs it (the
authors' test.py without --eval: batch statistics of the test image, dropout on), under
``no_grad`` for theirs (their ``model.test()``) and ``inference_mode`` for ours.

Variants: theirs (``Pix2PixModel.optimize_parameters``), ours (styleforge's method through the
trainer's ``run_phases``), ours-cl (the same with ``channels_last=True``), ``-bf16`` (``train.amp``'s
bf16 autocast: a numerics change), ours-unfused (Adam's default per-tensor loop, as theirs, where
the trainer builds ``Adam(fused=True)``), ours-onnx (inference only: the exported U-Net, without
dropout, in onnxruntime).

``--clock cpu`` times one thread by process CPU time instead: on a machine shared with other
jobs, wall-clock times of two threads swing 2-4×, CPU time of one thread barely moves.
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

VARIANTS = ("theirs", "ours", "ours-unfused", "ours-cl", "ours-bf16", "ours-cl-bf16", "ours-onnx")


def child(variant: str, official: str, size: int, device: str, warmup: int, iters: int,
          clock: str = "wall") -> dict:
    import argparse as ap
    from contextlib import nullcontext

    import torch

    if clock == "cpu":  # one thread, process CPU time: what a busy shared machine does not inflate
        torch.set_num_threads(1)

    torch.manual_seed(0)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    real_A = (torch.rand(1, 3, size, size) * 2 - 1).to(dev)
    real_B = (torch.rand(1, 3, size, size) * 2 - 1).to(dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if "bf16" in variant else nullcontext()
    if variant == "ours-onnx":  # inference only: the exported U-Net (no dropout) in onnxruntime
        import tempfile

        sys.path.insert(0, str(HERE.parent / "src"))
        import styleforge
        from styleforge.export import export_model
        from styleforge.registry import build_method

        timer = common.median_time if clock == "wall" else cpu_time
        with tempfile.TemporaryDirectory() as tmp:
            r = export_model(build_method("pix2pix").eval(), Path(tmp) / "g.onnx", "onnx")
            run = styleforge.load(r.path, runtime="onnx").method
            infer_s = timer(lambda: run(real_A), 3, max(iters, 5))
        return {"variant": variant, "infer_s": infer_s}
    if variant == "theirs":
        sys.path.insert(0, official)
        from models.pix2pix_model import Pix2PixModel

        opt = ap.Namespace(
            isTrain=True, checkpoints_dir="/tmp/sf_bench_ckpt", name="bench_p2p", device=dev,
            preprocess="resize_and_crop", input_nc=3, output_nc=3, ngf=64, ndf=64, netG="unet_256",
            netD="basic", n_layers_D=3, norm="batch", no_dropout=False, init_type="normal",
            init_gain=0.02, pool_size=0, gan_mode="vanilla", lr=2e-4, beta1=0.5, lambda_L1=100.0,
            direction="AtoB", continue_train=False, load_iter=0, epoch="latest", verbose=False,
            lr_policy="linear", epoch_count=1, n_epochs=100, n_epochs_decay=100)
        model = Pix2PixModel(opt)
        model.setup(opt)
        data = {"A": real_A, "B": real_B, "A_paths": ["a"], "B_paths": ["b"]}

        def train_step():
            model.set_input(data)
            model.optimize_parameters()

        def infer():  # their test.py: model.test() = no_grad forward, networks left in train mode
            with torch.no_grad():
                model.netG(real_A)
    else:
        sys.path.insert(0, str(HERE.parent / "src"))
        from styleforge.registry import build_method
        from styleforge.training.trainer import build_optimizers, configure_backends, run_phases

        configure_backends(dev)
        method = build_method("pix2pix", channels_last="-cl" in variant).to(dev)
        opts = build_optimizers(method, {"lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0})
        if "unfused" in variant:  # Adam's per-tensor loop, as theirs (the trainer uses fused)
            opts = {k: torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999))
                    for k, ps in method.optimizer_groups().items()}
        batch = {"A": real_A, "B": real_B}

        def train_step():
            method.train()
            with amp:
                run_phases(method, opts, batch)

        def infer():
            method.eval()
            with torch.inference_mode(), amp:
                method.translate(real_A)
    base_mb = _rss_mb()  # networks and optimisers built; Adam's moments not yet allocated
    timer = common.median_time if clock == "wall" else cpu_time
    train_s = timer(train_step, warmup, iters, sync)
    peak_train = common.peak_memory_mb(device)
    infer_s = timer(infer, 3, max(iters, 5), sync)
    return {"variant": variant, "train_s": train_s, "infer_s": infer_s, "peak_mb": peak_train,
            "base_mb": base_mb}


cpu_time = common.cpu_time


_rss_mb = common.rss_mb


# ---- eager vs TorchScript vs onnxruntime, per generator ---------------------------------
GENERATORS = {  # name: (preset, size); the networks at their paper sizes
    "CycleGAN ResNet-9": ("cyclegan", 256),
    "Pix2Pix U-Net-256": ("pix2pix-facades", 256),
    "U-GAT-IT light": ("ugatit-light", 256),
    "Photo2Cartoon": ("photo2cartoon", 256),
}


def runtime_child(name: str, iters: int, clock: str = "wall") -> dict:
    import tempfile

    import torch

    if clock == "cpu":  # onnxruntime takes torch's thread count (styleforge.export)
        torch.set_num_threads(1)
    timer = common.median_time if clock == "wall" else cpu_time

    sys.path.insert(0, str(HERE.parent / "src"))
    import styleforge
    from styleforge import config as C
    from styleforge.export import export_model, export_module
    from styleforge.registry import build_method

    preset, size = GENERATORS[name]
    cfg = C.resolve(preset)
    torch.manual_seed(0)
    try:
        method = build_method(cfg["method"], **cfg["model"]).eval()
    except Exception as e:  # a method still landing (Photo2Cartoon)
        return {"generator": name, "error": str(e).splitlines()[0][:120]}
    direction = method.directions[0]
    x = torch.rand(1, 3, size, size) * 2 - 1
    module = export_module(method, direction, x).eval()  # the one generator that direction runs
    row = {"generator": name, "params_M": sum(p.numel() for p in module.parameters()) / 1e6}

    def eager():
        with torch.inference_mode():
            module(x)

    row["eager_s"] = timer(eager, 2, iters)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("torchscript", "onnx"):
            r = export_model(method, Path(tmp) / f"g.{fmt}", fmt, direction)
            pipe = styleforge.load(r.path, runtime=fmt)
            run = pipe.method  # the exported network itself, no padding
            row[f"{fmt}_s"] = timer(lambda: run(x), 2, iters)
            row[f"{fmt}_max_diff"] = r.max_abs_diff
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", help="checkout of the authors' repository")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall-clock time with torch's threads (default); cpu: one thread, "
                   "process CPU time (robust to other load on a shared machine)")
    p.add_argument("--runtimes-only", action="store_true", help="only the eager/TorchScript/ONNX table")
    p.add_argument("--no-runtimes", action="store_true", help="skip the eager/TorchScript/ONNX table")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--runtime-child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.official, a.size, a.device, a.warmup, a.iters, a.clock)))
        return
    if a.runtime_child:
        print(json.dumps(runtime_child(a.runtime_child, a.iters, a.clock)))
        return
    info = common.machine()
    print(json.dumps(info))
    if not a.runtimes_only:
        if not a.official or not (Path(a.official) / "models" / "pix2pix_model.py").is_file():
            sys.exit(f"error: --official {a.official} is not a checkout of pytorch-CycleGAN-and-pix2pix")
        variants = a.variants.split(",")
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(a.rounds):
            for v in variants:
                res = common.run_variant(__file__, ["--official", a.official, "--size", str(a.size),
                                                    "--device", a.device, "--warmup", str(a.warmup),
                                                    "--iters", str(a.iters), "--clock", a.clock,
                                                    "--child", v])
                print(f"round {r + 1} {v}: {json.dumps(res)} load {os.getloadavg()[0]:.2f}",
                      file=sys.stderr, flush=True)
                runs[v].append(res)
        rows = []
        for v in variants:
            ok = [x for x in runs[v] if "error" not in x]
            if not ok:
                rows.append({"variant": v, "train_s": runs[v][0]["error"]})
                continue
            rows.append({"variant": v, **{k: statistics.median(x[k] for x in ok)
                                          for k in ("train_s", "infer_s", "peak_mb", "base_mb")
                                          if k in ok[0]}})
        base = next((r for r in rows if r["variant"] == "theirs" and "infer_s" in r), None)
        for r in rows:
            if base and "infer_s" in r:
                r["infer speed-up"] = base["infer_s"] / r["infer_s"]
            if base and "train_s" in r:
                r["train speed-up"] = base["train_s"] / r["train_s"]
                r["memory ratio"] = r["peak_mb"] / base["peak_mb"]
        print(f"\nPix2Pix {a.size}px batch 1 on {a.device}, clock {a.clock}; "
              f"load after: {os.getloadavg()[0]:.2f}")
        print(common.table(rows, ["variant", "train_s", "infer_s", "peak_mb", "base_mb",
                                  "train speed-up", "infer speed-up", "memory ratio"]))
    if not a.no_runtimes:
        rows = []
        for name in GENERATORS:
            res = common.run_variant(__file__, ["--iters", str(a.iters), "--clock", a.clock,
                                                "--runtime-child", name])
            print(f"{name}: {json.dumps(res)} load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
            rows.append(res if "error" not in res else {"generator": name, "eager_s": res["error"]})
        print(f"\nInference latency, batch 1, CPU, clock {a.clock}; load after: {os.getloadavg()[0]:.2f}")
        for r in rows:
            if isinstance(r.get("eager_s"), float):
                r["onnx speed-up"] = r["eager_s"] / r["onnx_s"]
        print(common.table(rows, ["generator", "params_M", "eager_s", "torchscript_s", "onnx_s",
                                  "onnx speed-up", "onnx_max_diff"]))


if __name__ == "__main__":
    main()
