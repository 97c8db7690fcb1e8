"""Data-parallel CycleGAN training, 2 CPU processes (gloo): the trainer's flat all-reduce per
optimizer step against PyTorch's DistributedDataParallel wrapping each network.

Each variant runs ``--steps`` steps of the trainer's own ``run_phases`` on real bundled images
(rank r takes samples r, r+2, ...) after 2 warm-up steps, and prints the median step time, the
bytes all-reduced per step and the largest difference of the final weights from the flat
all-reduce's (the reference: it is checked against one process with twice the batch in
tests/training/test_trainer.py). DDP variants:

* ``ddp``: ``DistributedDataParallel(net)`` as the documentation shows;
* ``ddp_unused``: ``find_unused_parameters=True`` (a discriminator runs frozen in the G phase);
* ``ddp_static``: ``static_graph=True``;

and ``single``: one process with both ranks' samples in one batch, what data parallelism should
reproduce (its difference from ``flat`` is the rounding noise the others can be judged by).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ddp.py --preset tiny/cyclegan --steps 10
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ddp.py --preset cyclegan/demo --steps 10
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

VARIANTS = ("flat", "single", "ddp", "ddp_unused", "ddp_static")
NETS = ("G_A", "G_B", "D_A", "D_B")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world, variant, preset, steps, port, queue):
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from styleforge import config as C
    from styleforge.registry import build_method
    from styleforge.training import distributed, trainer as T

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        cfg = C.resolve(preset, overrides=["model.pool_size=0", "data.flip=false"])
        cfg["data"]["root"] = str(REPO / "data" / "horse2zebra")
        T.seed_everything(0)
        m = build_method(cfg["method"], **cfg["model"])
        T.freeze_modules(m)
        distributed.broadcast_module(m)
        opts = T.build_optimizers(m, cfg["train"])
        reduced = {"bytes": 0}
        if variant == "single":  # one process, both ranks' samples in one batch: the reference
            info = None
        elif variant == "flat":
            info = distributed.DistInfo(rank, world)
            orig = distributed.average_gradients

            def counting(params, n):
                reduced["bytes"] += sum(p.grad.numel() * 4 for p in params if p.grad is not None)
                orig(params, n)

            distributed.average_gradients = counting
        else:
            info = None
            kw = {"ddp": {}, "ddp_unused": {"find_unused_parameters": True},
                  "ddp_static": {"static_graph": True}}[variant]
            for name in NETS:
                net = DDP(getattr(m, name), **kw)

                def hook(state, bucket, _r=reduced):
                    _r["bytes"] += bucket.buffer().numel() * 4
                    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
                    return fut.then(lambda f: f.value()[0].div_(world))

                net.register_comm_hook(None, hook)
                m._modules[name] = net
        train, _ = T.build_datasets(cfg)
        train.set_epoch(0)
        times = []
        for i in range(steps + 2):
            ranks = range(2) if variant == "single" else [rank]
            batch = torch.utils.data.default_collate([train[(i * 2 + r) % len(train)] for r in ranks])
            t0 = time.perf_counter()
            T.run_phases(m, opts, batch, info)
            times.append(time.perf_counter() - t0)
            if i == 1:
                reduced["bytes"] = 0
        # conv biases in front of an InstanceNorm have a true gradient of 0: they carry rounding
        # noise only (Adam scales it up) and change no output, so they are left out of the check
        weights = torch.cat([p.detach().reshape(-1) for n in NETS
                             for k, p in getattr(m, n).named_parameters() if not k.endswith(".bias")])
        per_net = {n: torch.cat([p.detach().reshape(-1) for k, p in getattr(m, n).named_parameters()
                                 if not k.endswith(".bias")]).numpy().copy() for n in NETS}
        if rank == 0:
            queue.put({"ok": True, "per_net": per_net, "step_s": statistics.median(times[2:]),
                       "mb_per_step": reduced["bytes"] / steps / 1e6,
                       "weights": weights.numpy().copy()})  # by value: a tensor would go by shared memory
    except Exception as e:  # report the failure of a variant, keep measuring the others
        if rank == 0:
            queue.put({"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}",
                       "trace": traceback.format_exc(limit=3)})
    finally:
        dist.destroy_process_group()


def run(variant, preset, steps):
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    world = 1 if variant == "single" else 2
    procs = [ctx.Process(target=worker, args=(r, world, variant, preset, steps, port, q)) for r in range(world)]
    for p in procs:
        p.start()
    try:
        out = q.get(timeout=600)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny/cyclegan")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    a = ap.parse_args()
    import torch

    from common import machine

    print(f"# {a.preset}, 2 gloo processes x 1 thread, {a.steps} steps; {machine()}")
    ref = None
    print("| variant | step (s) | all-reduced per step (MB) | max weight difference vs flat |")
    print("|---|---|---|---|")
    for v in a.variants:
        r = run(v, a.preset, a.steps)
        if not r["ok"]:
            print(f"| {v} | fails: {r['error']} | | |")
            continue
        if v == "flat":
            ref, ref_nets = r["weights"], r["per_net"]
        elif ref is not None:
            print("#   per network:", {n: float(abs(r["per_net"][n] - ref_nets[n]).max()) for n in NETS})
        diff = float(abs(r["weights"] - ref).max()) if ref is not None else float("nan")
        print(f"| {v} | {r['step_s']:.3f} | {r['mb_per_step']:.2f} | {diff:.2e} |")
        sys.stdout.flush()
    del torch


if __name__ == "__main__":
    main()
