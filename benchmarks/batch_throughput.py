"""Batch translation throughput: images/s at 256×256 for the CycleGAN generator on 2 CPU cores.

    python benchmarks/batch_throughput.py [--images 16] [--rounds 2] [--batch-sizes 1,4,auto]
        [--cores 2] [--preset cyclegan] [--no-bf16] [--runtime torch|compile|onnx]

Two measurements per precision (fp32, and bf16 autocast where the CPU has native bf16):

* ``network``: the generator alone (``Pipeline.run_tensor``, through the chosen runtime) on a batch of B images,
  median of a few calls: the ceiling;
* ``translate``: ``styleforge.batch.translate_files`` end to end over a folder of real 256×256
  JPEGs (decoding worker, equal-size batches of B, PNG encoding and atomic writes), the way
  ``styleforge translate DIR -o OUT`` runs: what a user gets.

``--runtime``: how the network runs (``Pipeline.use_runtime``, what ``translate --runtime``
calls; ``compile`` is torch.compile, compiled for each batch size during the warm-up, outside
the timing; bf16 comes from the runtime's autocast, as ``translate --bf16`` gives it).

``auto`` among the batch sizes: the size ``translate --runtime auto`` takes on this path
(``Pipeline.choose_batch``, measured once per precision before the rounds on the first image, for
a job taken as long; its line is printed), then timed like the others. Its choice is cached in a
temporary file, not the user's.

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
    ap.add_argument("--batch-sizes", default="1,4", help="comma-separated; auto: the size auto chooses")
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
        from styleforge import accel

        accel.cache_file = lambda: tmp / "runtimes.json"  # auto's batch choice: not into the user's cache
        pipes, auto = {}, {}
        for prec in precisions:  # one pipeline per precision, its runtime chosen once
            pipes[prec] = styleforge.load(tmp / "model", device="cpu")
            if args.runtime == "onnx" and not (tmp / "model" / f"{cfg['method']}-AtoB.onnx").exists():
                from styleforge.export import export_model

                export_model(tmp / "model", tmp / "model" / f"{cfg['method']}-AtoB.onnx", "onnx")
            note = pipes[prec].use_runtime(args.runtime, bf16=prec == "bf16", size=256).note
            print(f"{prec}: {note or 'runtime: ' + pipes[prec].runtime}", file=sys.stderr)
            if "auto" in args.batch_sizes.split(","):
                choice = pipes[prec].choose_batch(files[0], size=256, images=10 ** 6)
                auto[prec] = choice.size or 1
                print(f"{prec}: {choice.note}", file=sys.stderr)
        variants = [(p, auto[p] if b == "auto" else int(b), b == "auto") for p in precisions
                    for b in args.batch_sizes.split(",")]
        runs = {v: {"net": [], "e2e": []} for v in variants}
        for rnd in range(args.rounds):  # rounds interleave the variants: load drift hits all alike
            for prec, b, chosen in variants:
                pipe = pipes[prec]  # bf16: the runtime's autocast (torch+bf16, compile+bf16)
                x = torch.rand(b, 3, 256, 256) * 2 - 1

                def net():
                    pipe.run_tensor(x)  # the runtime's path (torch: translate_tensor)
                runs[(prec, b, chosen)]["net"].append(b / common.median_time(net, warmup=1, iters=max(1, 4 // b)))
                # end to end, as `styleforge translate` runs: a warm-up on two images, then the folder
                opts = dict(direction=None, batch_size=b, workers=1, progress=False)
                warm = max(2, b)  # the batch size's own shape (torch.compile compiles it here)
                translate_files(pipe, files[:warm], names[:warm], tmp / "warm", BatchOptions(**opts), shard=Shard())
                shutil.rmtree(tmp / "warm")
                t0 = time.perf_counter()
                r = translate_files(pipe, files, names, tmp / "out", BatchOptions(**opts), shard=Shard())
                runs[(prec, b, chosen)]["e2e"].append(len(files) / (time.perf_counter() - t0))
                assert r.translated == len(files)
                shutil.rmtree(tmp / "out")
                print(json.dumps({"round": rnd, "precision": prec, "batch": f"auto: {b}" if chosen else b,
                                  "network img/s": runs[(prec, b, chosen)]["net"][-1],
                                  "translate img/s": runs[(prec, b, chosen)]["e2e"][-1],
                                  "load": os.getloadavg()[0]}), file=sys.stderr, flush=True)
        rows = [{"precision": p, "batch": f"auto: {b}" if c else b,
                 "network img/s (median)": statistics.median(runs[(p, b, c)]["net"]),
                 "network img/s (best)": max(runs[(p, b, c)]["net"]),
                 "translate img/s (median)": statistics.median(runs[(p, b, c)]["e2e"]),
                 "translate img/s (best)": max(runs[(p, b, c)]["e2e"])} for p, b, c in variants]
        print(f"\n{args.preset} generator ({sum(p.numel() for p in pipe.method.G_A.parameters()):,} parameters), "
              f"256×256, runtime {args.runtime}, {args.images} images from {source}, {args.cores} cores, {args.threads or args.cores} torch threads, {args.rounds} rounds, load avg "
              f"{os.getloadavg()[0]:.1f} at the end\n")
        print(common.table(rows, list(rows[0])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
