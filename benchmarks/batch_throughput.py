"""Batch translation throughput: images/s at 256×256 for the CycleGAN generator on 2 CPU cores.

    python benchmarks/batch_throughput.py [--images 16] [--rounds 2] [--batch-sizes 1,4]
        [--cores 2] [--preset cyclegan] [--no-bf16] [--runtime torch|compile|onnx]

Two measurements per precision (fp32, and bf16 autocast where the CPU has native bf16):

* ``network``: the generator alone (``Pipeline.run_tensor``, through the chosen runtime) on a batch of B images,
  median of a few calls: the ceiling;
* ``translate``: ``styleforge.batch.translate_files`` end to end over a folder of real 256×256
  JPEGs (decoding worker, equal-size batches of B, PNG encoding and atomic writes), the way
  ``styleforge translate DIR -o OUT`` runs: what a user gets.

``--runtime``: how the network runs (``Pipeline.use_runtime``, what ``translate --runtime``
calls; ``compile`` is torch.compile, compiled for each batch size during the warm-up, outside
the timing; bf16 then comes from the runtime's autocast, as ``translate --bf16`` gives it).

The generator is the preset's (``cyclegan``: ResNet-9, ngf 64, the paper's), with random weights
(speed does not depend on their values). Images: ``../shared/data/horse2zebra/testA`` (256×256
real photos) when present, else the bundled 128 px sample upscaled. The process is pinned to
``--cores`` CPUs with that many torch threads; one DataLoader worker decodes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))
import common  # noqa: E402


def bf16_native() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def make_inputs(folder: Path, n: int) -> str:
    from PIL import Image

    shared = REPO.parent / "shared" / "data" / "horse2zebra" / "testA"
    src = sorted(shared.iterdir()) if shared.is_dir() else sorted((REPO / "data" / "horse2zebra" / "testA").iterdir())
    folder.mkdir(parents=True)
    for i in range(n):
        with Image.open(src[i % len(src)]) as im:
            im = im.convert("RGB")
            if im.size != (256, 256):
                im = im.resize((256, 256), Image.BICUBIC)
            im.save(folder / f"{i:05d}.jpg", quality=95)
    return "shared/data/horse2zebra/testA" if shared.is_dir() else "data/horse2zebra/testA upscaled"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-sizes", default="1,4")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch threads (default: --cores); on a busy machine 1 "
                    "thread avoids OpenMP threads waiting for each other at every operation")
    ap.add_argument("--preset", default="cyclegan")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--bf16-only", action="store_true", help="bf16 alone (a compile per batch size is minutes)")
    ap.add_argument("--runtime", default="torch", choices=("torch", "compile", "onnx"),
                    help="how the network runs (translate --runtime); compile is warmed up per batch size")
    args = ap.parse_args()

    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:args.cores]
        os.sched_setaffinity(0, cpus)
    import torch

    torch.set_num_threads(args.threads or args.cores)
    os.environ["STYLEFORGE_DEVICE"] = "cpu"
    import styleforge
    from styleforge import config as C
    from styleforge.batch import BatchOptions, Shard, translate_files
    from styleforge.checkpoint import save_model
    from styleforge.commands.inputs import output_name
    from styleforge.registry import build_method

    info = common.machine()
    info["bf16_native"] = bf16_native()
    print(json.dumps(info))
    tmp = Path(tempfile.mkdtemp(prefix="sf-batch-bench-"))
    try:
        cfg = C.resolve(args.preset)
        torch.manual_seed(0)
        save_model(tmp / "model", build_method(cfg["method"], **cfg["model"]))
        source = make_inputs(tmp / "in", args.images)
        pipe = styleforge.load(tmp / "model", device="cpu")
        files = sorted((tmp / "in").iterdir())
        names = [output_name(f) for f in files]
        precisions = ["bf16"] if args.bf16_only else ["fp32"] + ([] if args.no_bf16 else ["bf16"])
        variants = [(p, int(b)) for p in precisions for b in args.batch_sizes.split(",")]
        runs = {v: {"net": [], "e2e": []} for v in variants}
        pipes = {}
        for prec in precisions:  # one pipeline per precision, its runtime chosen once
            pipes[prec] = styleforge.load(tmp / "model", device="cpu")
            if args.runtime != "torch":
                if args.runtime == "onnx":
                    from styleforge.export import export_model

                    export_model(tmp / "model", tmp / "model" / f"{cfg['method']}-AtoB.onnx", "onnx")
                print(pipes[prec].use_runtime(args.runtime, bf16=prec == "bf16", size=256).note, file=sys.stderr)
        for rnd in range(args.rounds):  # rounds interleave the variants: load drift hits all alike
            for prec, b in variants:
                pipe = pipes[prec]
                amp = prec == "bf16" and args.runtime == "torch"  # other runtimes: bf16 is theirs
                x = torch.rand(b, 3, 256, 256) * 2 - 1

                def net():
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                        pipe.run_tensor(x)  # the runtime's path (torch: translate_tensor)
                runs[(prec, b)]["net"].append(b / common.median_time(net, warmup=1, iters=max(1, 4 // b)))
                # end to end, as `styleforge translate` runs: a warm-up on two images, then the folder
                opts = dict(direction=None, batch_size=b, workers=1, amp=amp, progress=False)
                warm = max(2, b)  # the batch size's own shape (torch.compile compiles it here)
                translate_files(pipe, files[:warm], names[:warm], tmp / "warm", BatchOptions(**opts), shard=Shard())
                shutil.rmtree(tmp / "warm")
                t0 = time.perf_counter()
                r = translate_files(pipe, files, names, tmp / "out", BatchOptions(**opts), shard=Shard())
                runs[(prec, b)]["e2e"].append(len(files) / (time.perf_counter() - t0))
                assert r.translated == len(files)
                shutil.rmtree(tmp / "out")
                print(json.dumps({"round": rnd, "precision": prec, "batch": b, "network img/s": runs[(prec, b)]["net"][-1],
                                  "translate img/s": runs[(prec, b)]["e2e"][-1],
                                  "load": os.getloadavg()[0]}), file=sys.stderr, flush=True)
        rows = [{"precision": p, "batch": b,
                 "network img/s (median)": statistics.median(runs[(p, b)]["net"]),
                 "network img/s (best)": max(runs[(p, b)]["net"]),
                 "translate img/s (median)": statistics.median(runs[(p, b)]["e2e"]),
                 "translate img/s (best)": max(runs[(p, b)]["e2e"])} for p, b in variants]
        print(f"\n{args.preset} generator ({sum(p.numel() for p in pipe.method.G_A.parameters()):,} parameters), "
              f"256×256, runtime {args.runtime}, {args.images} images from {source}, {args.cores} cores, {args.threads or args.cores} torch threads, {args.rounds} rounds, load avg "
              f"{os.getloadavg()[0]:.1f} at the end\n")
        print(common.table(rows, list(rows[0])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
