"""Threads on a busy machine: torch's OpenMP threads spin-wait at the end of every parallel region,
so beside other busy processes two threads can be many times slower than one. This measures two
of styleforge's workloads — a training step of the demo's new style (cin, VGG-19 losses, 128 px,
batch 2, bf16) and a 512 px Gatys iteration (VGG-19 forward and backward) — on this machine
idle and beside 2 and 4 busy processes, for 1 and 2 threads and OpenMP's two wait policies.

    python benchmarks/threads.py            # prints a Markdown table (docs/benchmarks.md keeps one)

Each cell runs in a fresh process (OMP_* must be set before torch starts its thread pool) and is
the median wall time of a few repetitions after a warm-up. The busy processes are plain Python
loops (each holds one core), started before and stopped after each row.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

SETTINGS = [("1 thread", {"OMP_NUM_THREADS": "1"}),
            ("2 threads, active wait", {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}),
            ("2 threads, passive wait", {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"})]

CHILD = r"""
import json, statistics, sys, time, torch
from styleforge import config as C
from styleforge.registry import build_method
work = sys.argv[1]
if work == "gatys":
    cfg = C.resolve("gatys")["model"]; cfg.update(sizes=[512], iterations=[2], progress=False)
    m = build_method("gatys", **cfg)
    x = torch.rand(1, 3, 341, 512) * 2 - 1; s = torch.rand(1, 3, 341, 512) * 2 - 1
    def run(): m.stylize(x, style=[s])
else:
    cfg = C.resolve("cin/new-style", overrides=["model.base_model=null", "model.num_styles=2",
                                                 "model.train_only_styles=[1]"])["model"]
    cfg.update(channels=[32, 32, 32, 8, 4], num_residual=6, style_size=64)
    m = build_method("cin", **cfg)
    opt = torch.optim.Adam([p for g in m.optimizer_groups().values() for p in g], lr=1e-2)
    m._style_grams["s"] = {n: torch.rand(1, c, c) for n, c in
                           (("relu1_2", 64), ("relu2_2", 128), ("relu3_4", 256), ("relu4_4", 512))}
    m._targets = lambda p: m._style_grams["s"]
    batch = {"content": torch.rand(2, 3, 128, 128) * 2 - 1, "style_label": torch.ones(2, dtype=torch.long),
             "style_path": ["s", "s"]}
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            for ph in m.training_step(batch):
                loss = sum(ph.losses.values())
        loss.backward(); opt.step(); opt.zero_grad()
run()
ts = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); run(); ts.append(time.perf_counter() - t)
print(json.dumps(statistics.median(ts) / (2 if work == "gatys" else 1)))
"""


def _spin(stop):
    while not stop.is_set():
        sum(range(10000))


def cell(work: str, env: dict, reps: int) -> float:
    full = {**os.environ, **env}
    for k in ("OMP_WAIT_POLICY",):
        if k not in env:
            full.pop(k, None)
    r = subprocess.run([sys.executable, "-c", CHILD, work, str(reps)], env=full, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    info = machine()
    rows = []
    for busy in (0, 2, 4):
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in procs:
            p.start()
        try:
            for work, reps in (("cin step", 5), ("gatys", 3)):
                vals = [cell("gatys" if work == "gatys" else "cin", env, reps) for _, env in SETTINGS]
                rows.append((busy, work, vals))
                print(f"busy {busy}, {work}: " + ", ".join(f"{n} {v:.3f} s" for (n, _), v in zip(SETTINGS, vals)),
                      flush=True)
        finally:
            stop.set()
            for p in procs:
                p.join()
    print(f"\n{info['cpu']}, torch {info['torch']}, matmul fp32 {info['matmul_gflops_fp32']} / bf16 "
          f"{info['matmul_gflops_bf16']} GFLOP/s, load before the run {info['load_avg_1min']:.1f}\n")
    print("| busy processes | workload | " + " | ".join(n for n, _ in SETTINGS) + " |")
    print("|---|---|" + "---|" * len(SETTINGS))
    for busy, work, vals in rows:
        best = min(vals)
        cells = [f"{v:.3f} s ({v / best:.1f}×)" for v in vals]
        print(f"| {busy} | {work} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
