"""A change timed before and after, on the same machine and inputs: training steps and inference
of a few presets, in alternating child processes, with the outputs compared.

    python benchmarks/before_after.py BEFORE_SRC AFTER_SRC [--presets cyclegan,munit] [--size 128]
        [--steps 4] [--rounds 3]

``BEFORE_SRC`` and ``AFTER_SRC`` are ``src/`` folders of two styleforge checkouts (e.g. a
``git worktree`` of an older commit and this one). Each round runs one child per side per preset,
alternately (before, after, before, ...), so a machine busy with other work disturbs both alike;
each child uses one thread and measures process CPU time (robust to other load): 2 warm-up
training steps, then the median of ``--steps`` steps (``run_phases`` on one real batch of the
bundled sample at the preset's batch size), and the median of 3 translations of a real image at
``--size``. The children also report the first step's losses and a digest of the translation,
so "nothing changed an output" is checked beside the times (equal digests: bit-identical
pictures). Prints one table: CPU seconds per side, after/before ratio, and whether the losses
and pictures are equal.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = {"unpaired": REPO / "data" / "horse2zebra", "paired_ab": REPO / "data" / "facades",
          "content_style": REPO / "data" / "style_transfer", "class_folders": REPO / "data" / "animals"}


def child(src: str, preset: str, size: int, steps: int) -> dict:
    sys.path.insert(0, src)
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(1)
    import styleforge
    from styleforge import config as C

    if not Path(styleforge.__file__).resolve().is_relative_to(Path(src).resolve()):
        raise SystemExit(f"styleforge imported from {styleforge.__file__}, not from {src}")
    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method
    from styleforge.training.trainer import build_datasets, build_optimizers, run_phases

    cfg = C.resolve(preset, overrides=[f"data.crop_size={size}", f"data.load_size={size}", "data.num_workers=0"])
    cfg["data"]["root"] = str(SAMPLE[cfg["data"]["dataset"]])
    torch.manual_seed(0)
    method = build_method(cfg["method"], **cfg["model"]).train()
    train, _ = build_datasets(cfg)
    batch = torch.utils.data.default_collate([train[i] for i in range(cfg["data"]["batch_size"])])
    opts = build_optimizers(method, cfg["train"])
    times, first = [], None
    for i in range(2 + steps):
        torch.manual_seed(i)
        t = time.process_time()
        logs = run_phases(method, opts, batch, step=i + 1)
        times.append(time.process_time() - t)
        first = first or logs
    method.eval()
    pipe = Pipeline(method, "cpu")
    img = Image.open(sorted((REPO / "data" / "horse2zebra" / "testA").iterdir())[0]).convert("RGB").resize((size, size))
    values = {}
    for inp in pipe.inputs[1:]:
        if inp.kind == "reference" and inp.required:
            style = sorted((REPO / "data" / "style_transfer" / "style").iterdir())[0]
            values[inp.name] = [style] if inp.multiple else style
        elif inp.kind == "images" and inp.required:
            cls = sorted(d for d in (REPO / "data" / "animals").iterdir() if d.is_dir())[0]
            values[inp.name] = sorted(cls.iterdir())[:max(1, int(inp.min or 1))]
    inf, digest = [], None
    for _ in range(3):
        t = time.process_time()
        out = pipe.run(img, seed=0, **values)[0]["image"] if pipe.stochastic else pipe.run(img, **values)[0]["image"]
        inf.append(time.process_time() - t)
        digest = hashlib.sha256(np.asarray(out).tobytes()).hexdigest()[:16]
    return {"step": statistics.median(times[2:]), "infer": statistics.median(inf), "digest": digest,
            "first_losses": {k: round(float(v), 6) for k, v in first.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", nargs="?")
    p.add_argument("after", nargs="?")
    p.add_argument("--presets", default="cyclegan,munit")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", nargs=4, metavar=("SRC", "PRESET", "SIZE", "STEPS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        src, preset, size, steps = a.child
        print(json.dumps(child(src, preset, int(size), int(steps))))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| preset | before step s | after step s | after/before | before infer s | after infer s | "
          "after/before | first losses equal | picture equal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in a.presets.split(","):
        res = {"before": [], "after": []}
        for _ in range(a.rounds):
            for side in ("before", "after"):
                src = str(Path(getattr(a, side)).resolve())
                out = subprocess.run([sys.executable, __file__, "--child", src, preset, str(a.size), str(a.steps)],
                                     capture_output=True, text=True, env=env, check=True)
                res[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
        med = {s: {k: statistics.median(r[k] for r in res[s]) for k in ("step", "infer")} for s in res}
        b, f = res["before"][0], res["after"][0]
        print(f"| {preset} {a.size} px | {med['before']['step']:.3f} | {med['after']['step']:.3f} | "
              f"{med['after']['step'] / med['before']['step']:.2f} | {med['before']['infer']:.3f} | "
              f"{med['after']['infer']:.3f} | {med['after']['infer'] / med['before']['infer']:.2f} | "
              f"{b['first_losses'] == f['first_losses']} | {b['digest'] == f['digest']} |")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
