"""Every method's paper-default preset: parameter counts, generator inference latency, one full
training iteration and its peak memory.

    python benchmarks/methods.py [--presets cyclegan,ugatit-light,...] [--size 256] [--amp]
        [--device cpu] [--iters 2]

A preset is one of ``styleforge presets`` (the paper defaults; ``tiny/*`` and presets that need
a base model are left out unless named). The batch is real: the preset's dataset kind read from
the bundled sample (``data/horse2zebra`` for unpaired data, ``data/facades`` for paired data)
through the same data pipeline as training, at the preset's batch size, cropped to ``--size``
(or the network's fixed size). Each preset runs in a fresh process so that its peak memory
(``ru_maxrss`` on CPU, ``max_memory_allocated`` on CUDA) is its own. A preset whose weights,
gradients and Adam moments alone (16 bytes per parameter) would not fit in the memory available
is reported as skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))
import common  # noqa: E402

SAMPLE = {"unpaired": REPO / "data" / "horse2zebra", "paired_ab": REPO / "data" / "facades",
          "paired_folders": REPO / "data" / "facades"}


def default_presets() -> list[str]:
    from styleforge import config as C

    out = []
    for name in C.list_presets():
        if "/" in name:  # tiny/*, cyclegan/128, cyclegan/demo: variants of a default
            continue
        model = C.resolve(name)["model"]
        if any(v is None for k, v in model.items() if k in ("base_model", "group")):
            continue  # stage-2 presets need a trained base model
        out.append(name)
    return out


def resolved(preset: str, size: int) -> dict:
    from styleforge import config as C

    cfg = C.resolve(preset)
    kind = cfg["data"]["dataset"]
    if kind not in SAMPLE:
        raise SystemExit(f"{preset}: no bundled sample for dataset kind {kind}")
    if "img_size" in cfg["model"]:  # networks built for one size (U-GAT-IT's FC layers)
        cfg["model"]["img_size"] = size
    d = cfg["data"]
    load = round(size * d["load_size"] / d["crop_size"])  # keep the preset's load/crop ratio
    d |= {"root": str(SAMPLE[kind]), "crop_size": size, "load_size": load, "num_workers": 0}
    return cfg


def child(preset: str, size: int, device: str, amp: bool, warmup: int, iters: int) -> dict:
    from contextlib import nullcontext

    import torch
    from torch.utils.data import DataLoader

    from styleforge.registry import build_method
    from styleforge.training.trainer import build_datasets, build_optimizers, configure_backends, run_phases

    dev = torch.device(device)
    configure_backends(dev)
    cfg = resolved(preset, size)
    torch.manual_seed(0)
    method = build_method(cfg["method"], **cfg["model"]).to(dev)
    opts = build_optimizers(method, cfg["train"])
    train_set, _ = build_datasets(cfg)
    batch = next(iter(DataLoader(train_set, batch_size=cfg["data"]["batch_size"], shuffle=False)))
    batch = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in batch.items()}
    ctx = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if amp else nullcontext
    sync = torch.cuda.synchronize if dev.type == "cuda" else None

    def train():
        with ctx():
            run_phases(method, opts, batch)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_s = common.median_time(train, warmup, iters, sync)
    peak = common.peak_memory_mb(device)
    x = next(v for k, v in batch.items() if torch.is_tensor(v) and v.dim() == 4)[:1]
    method.eval()

    def infer():
        with torch.inference_mode(), ctx():
            method.translate(x)

    infer_s = common.median_time(infer, 1, 5, sync)
    counts = method.parameter_counts()
    return {"train_s": train_s, "infer_ms": infer_s * 1e3, "peak_mb": peak, "size": x.shape[-1],
            "batch": cfg["data"]["batch_size"], "params": counts}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", help="comma-separated presets (default: every paper-default preset)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (train.amp=true)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.size, a.device, a.amp, a.warmup, a.iters)))
        return
    import torch

    from styleforge.registry import build_method

    presets = a.presets.split(",") if a.presets else default_presets()
    info = common.machine()
    print(json.dumps(info), flush=True)
    rows = []
    for preset in presets:
        cfg = resolved(preset, a.size)
        with torch.device("meta"):
            counts = build_method(cfg["method"], **cfg["model"]).parameter_counts()
        total = sum(counts.values())
        row = {"preset": preset, "params (per network)": ", ".join(f"{k} {v:,}" for k, v in counts.items()),
               "total M": total / 1e6}
        need = total * 16 / 2 ** 20
        if a.device == "cpu" and need * 1.2 > common.mem_available_mb():
            row["note"] = f"skipped: needs > {need * 1.2 / 1024:.1f} GiB"
        else:
            res = common.run_variant(__file__, ["--child", preset, "--size", str(a.size), "--device", a.device,
                                                "--warmup", str(a.warmup), "--iters", str(a.iters)]
                                     + (["--amp"] if a.amp else []))
            if "error" in res:
                row["note"] = res["error"][:120]
            else:
                row |= {k: res[k] for k in ("size", "batch", "infer_ms", "train_s", "peak_mb")}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    print(f"\n{'bf16 autocast' if a.amp else 'fp32'} on {a.device}; machine: {json.dumps(info)}; "
          f"load after: {os.getloadavg()[0]:.2f}")
    print(common.table(rows, ["preset", "size", "batch", "total M", "infer_ms", "train_s", "peak_mb",
                              "params (per network)", "note"]))


if __name__ == "__main__":
    main()
