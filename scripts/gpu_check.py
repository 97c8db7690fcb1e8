"""A CUDA smoke check of the trainer and inference (run it where a GPU is present).

    python scripts/gpu_check.py [--data data/horse2zebra] [--out /tmp/gpu_check]

Trains the tiny CycleGAN on cuda (fp32, then bf16 autocast), stops and resumes it, and compares
CUDA and CPU translations of the sample test images. Prints one JSON line per check; exits 1 if
a check fails. The test suite never needs a GPU; this is for the machines that have one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from styleforge import config as C  # noqa: E402
from styleforge.training.logging import read_log  # noqa: E402
from styleforge.training.trainer import Trainer  # noqa: E402


def cfg_for(data, **over):
    cfg = C.resolve("tiny/cyclegan", overrides=[f"{k}={v}" for k, v in over.items()])
    cfg["data"]["root"] = str(data)
    cfg["train"]["device"] = "cuda"
    return cfg


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/horse2zebra")
    p.add_argument("--out", default="/tmp/gpu_check")
    a = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device here")
    out, ok = Path(a.out), True

    def report(name, passed, **info):
        nonlocal ok
        ok &= bool(passed)
        print(json.dumps({"check": name, "ok": bool(passed), **info}), flush=True)

    common = {"train.steps": 12, "train.steps_decay": 6, "train.checkpoint_every": 6, "model.ngf": 16}
    full = Trainer(cfg_for(a.data, **common), out / "full").fit()
    run = json.loads((out / "full" / "run.json").read_text())["sessions"][0]
    report("train on cuda", "cuda" in str(run.get("device")), device=run.get("device"))

    Trainer(cfg_for(a.data, **common), out / "part").fit(stop_at=6)
    Trainer(cfg_for(a.data, **common), out / "part", resume=True).fit()
    la = [r["cycle_A"] for r in read_log(out / "full")]
    lb = [r["cycle_A"] for r in read_log(out / "part")][-len(la):]
    diff = max(abs(x - y) for x, y in zip(la, lb))
    # CUDA convolutions are not bit-deterministic; resume must still follow the same run
    report("resume follows the uninterrupted run", diff < 0.05 * max(la), max_abs_diff=diff)

    Trainer(cfg_for(a.data, **{**common, "train.amp": True}), out / "bf16").fit()
    bl = [r["cycle_A"] for r in read_log(out / "bf16")]
    report("bf16 autocast trains", all(map(lambda v: v == v, bl)) and len(bl) == 18, first=bl[0], last=bl[-1])

    import styleforge
    from styleforge.data.images import list_images, load_rgb

    gpu, cpu = styleforge.load(full, device="cuda"), styleforge.load(full, device="cpu")
    worst = 0.0
    for f in list_images(Path(a.data) / "testA"):
        x = load_rgb(f)
        ya = torch.tensor(list(gpu(x).getdata()), dtype=torch.float32)
        yb = torch.tensor(list(cpu(x).getdata()), dtype=torch.float32)
        worst = max(worst, float((ya - yb).abs().max()))
    report("cuda and cpu translations agree", worst <= 2, max_abs_diff_8bit=worst)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
