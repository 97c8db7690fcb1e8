"""Helpers shared by the benchmark scripts: machine facts, timing, one subprocess per variant.

Peak memory is the child's ``ru_maxrss`` (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA), so
each variant runs in a fresh process: a variant never inherits another's allocations.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def matmul_gflops(n: int = 2048, dtype=None, reps: int = 5) -> float:
    import torch

    a = torch.randn(n, n, dtype=dtype or torch.float32)
    b = torch.randn(n, n, dtype=dtype or torch.float32)
    for _ in range(2):
        a @ b
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_avg_1min": os.getloadavg()[0],
            "matmul_gflops_fp32": round(matmul_gflops(), 1),
            "matmul_gflops_bf16": round(matmul_gflops(dtype=torch.bfloat16), 1)}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def median_time(fn, warmup: int, iters: int, sync=None) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def cpu_time(fn, warmup: int, iters: int, sync=None) -> float:
    """Median process CPU time of ``fn`` (use with one thread: a busy shared machine inflates the
    wall clock of two threads 2-4×, one thread's CPU time barely; two threads also count spinning)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    return statistics.median(ts)


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_memory_mb(device: str = "cpu") -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mem_available_mb() -> float:
    """MemAvailable of /proc/meminfo (inf where there is none): presets that cannot fit are skipped."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def run_variant(script: str, args: list[str], timeout: int = 3600) -> dict:
    """Run ``python script args`` in a fresh process; its last stdout line is a JSON result."""
    r = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def table(rows: list[dict], cols: list[str]) -> str:
    """A Markdown table of ``rows`` (missing cells blank)."""
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def labelled_sheet(tiles, out, tile: int, aspect: float, columns: int):
    """A contact sheet of ``tiles`` ([(label, PIL image)]) in ``columns`` columns, each image
    ``tile`` px wide at ``aspect`` (height / width) under its label, saved as a 256-colour PNG."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    label, pad = 18, 4
    th = round(tile * aspect)
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, rows * (th + label + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (text, im) in enumerate(tiles):
        r, c = divmod(i, columns)
        x, y = pad + c * (tile + pad), pad + r * (th + label + pad)
        draw.text((x + 2, y + 2), text, fill="black", font=font)
        sheet.paste(im.resize((tile, th), Image.Resampling.LANCZOS), (x, y + label))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
    return out
