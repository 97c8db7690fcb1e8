"""Threads on a busy machine: torch's OpenMP threads spin-wait at the end of every parallel region,
so beside other busy processes two threads can be many times slower than one. This measures
styleforge's workloads on this machine as it is and beside 2 and 4 busy processes, for 1 thread,
2 threads with OpenMP's active (spinning) wait, and the CLI's default (torch's thread count, one
per core, with the passive wait ``styleforge.utils.threads`` sets):

* ``cin step``: a training step of the demo's new style (cin, VGG-19 losses, 128 px, batch 2, bf16);
* ``johnson 512``: one feed-forward inference of the real-size Johnson network (random weights)
  on a 512×512 image;
* ``batch 16``: ``styleforge translate`` of 16 real photos from data/ (--size 256, the Johnson
  network; its DataLoader decode processes included), after a warm-up run on two;
* ``web``: ``styleforge serve`` of the Johnson network, a request loop of 512 px photos through
  the app's worker thread (FastAPI's TestClient in place of the uvicorn server), seconds a request;
* ``web 2 workers``: the same with ``--workers 2`` on a real uvicorn server on 127.0.0.1, two
  clients at once (two inferences, each with the setting's threads), seconds per request;
* ``gatys`` (``--gatys``): one 512 px Gatys iteration (VGG-19 forward and backward).

    python benchmarks/threads.py [--gatys] [--only "web,web 2 workers"] [--busy 0,4]
    # prints a Markdown table (docs/benchmarks.md keeps one); all rows: about 30 min at load 6-10 on 2 cores

Each cell runs in a fresh process (OMP_* must be set before torch starts its thread pool) and is
the median wall time of a few repetitions after a warm-up. The busy processes are plain Python
loops (each holds one core), started before and stopped after each row. On a machine shared with
other jobs compare the ratios within a row, never absolute times across runs.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT = "default: 2 threads, passive wait" if (os.cpu_count() or 1) == 2 else "default (one per core, passive)"
SETTINGS = [("1 thread", {"OMP_NUM_THREADS": "1"}),
            ("2 threads, active wait", {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}),
            (DEFAULT, {})]  # what the CLI does when nothing is set

CHILD = r"""
import json, os, statistics, sys, time
from pathlib import Path
work, reps, tmp = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
from styleforge.utils.threads import configure_threads
configure_threads()  # as the CLI does first thing
import torch
from styleforge import config as C
from styleforge.registry import build_method
from styleforge.cli import main
if work == "gatys":
    cfg = C.resolve("gatys")["model"]; cfg.update(sizes=[512], iterations=[2], progress=False)
    m = build_method("gatys", **cfg)
    x = torch.rand(1, 3, 341, 512) * 2 - 1; s = torch.rand(1, 3, 341, 512) * 2 - 1
    def run(): m.stylize(x, style=[s])
elif work == "johnson 512":
    import styleforge
    pipe = styleforge.load(tmp / "johnson", device="cpu")
    x = torch.rand(1, 3, 512, 512) * 2 - 1
    def run():
        with torch.no_grad():
            pipe.run_tensor(x)
elif work == "batch 16":
    import shutil
    def run():
        shutil.rmtree(tmp / f"out{os.getpid()}", ignore_errors=True)
        assert main(["translate", str(tmp / "johnson"), str(tmp / "photos"), "--out", str(tmp / f"out{os.getpid()}"),
                     "--size", "256", "--quiet"]) == 0
    assert main(["translate", str(tmp / "johnson"), str(tmp / "warm"), "--out", str(tmp / f"warm{os.getpid()}"),
                 "--size", "256", "--quiet"]) == 0
elif work == "web":
    import uvicorn, warnings
    photos = sorted((tmp / "photos").iterdir())
    def loop(app, **kw):  # in place of the server: the same app, its worker thread, its limits
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient
        global run
        with TestClient(app) as c:
            def run(i=[0]):
                f = photos[i[0] % 6]; i[0] += 1
                r = c.post("/api/translate", files={"image": (f.name, f.read_bytes())})
                assert r.status_code == 200, r.text
            run(); out.extend(timed())
    uvicorn.run = loop
elif work == "web 2 workers":
    import socket, threading, uvicorn, httpx
    from concurrent.futures import ThreadPoolExecutor
    photos = sorted((tmp / "photos").iterdir())[:6]
    def loop(app, **kw):  # a real server on loopback, two clients at once
        global run
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        def post(f):
            r = httpx.post(f"http://127.0.0.1:{port}/api/translate", files={"image": (f.name, f.read_bytes())},
                           timeout=600)
            assert r.status_code == 200, r.text
        def run(n=4):
            with ThreadPoolExecutor(2) as ex:
                list(ex.map(post, photos[:n]))
        run(2); out.extend(t / 4 for t in timed())
        server.should_exit = True
    uvicorn.run = loop
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
def timed():
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); run(); ts.append(time.perf_counter() - t)
    return ts
out = []
if work.startswith("web"):
    main(["serve", str(tmp / "johnson"), "--workers", "2" if "2 workers" in work else "1"])
else:
    run(); out = timed()
print(json.dumps(statistics.median(out) / (2 if work == "gatys" else 1)))
"""

WORKS = [("cin step", 3), ("johnson 512", 3), ("batch 16", 2), ("web", 3), ("web 2 workers", 1)]


def _spin(stop):
    while not stop.is_set():
        sum(range(10000))


def cell(work: str, env: dict, reps: int, tmp: Path) -> float:
    thread_vars = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "STYLEFORGE_THREADS")
    full = {k: v for k, v in os.environ.items() if k not in thread_vars}
    full.update(env, STYLEFORGE_DEVICE="cpu", STYLEFORGE_RUNTIME="torch", PYTHONPATH=str(REPO / "src"))
    r = subprocess.run([sys.executable, "-c", CHILD, work, str(reps), str(tmp)], env=full, capture_output=True,
                       text=True)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def prepare(tmp: Path) -> None:
    """The real-size Johnson network (random weights: timing is what matters) and 16 real photos."""
    import torch
    from PIL import Image

    from styleforge import config as C
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    torch.manual_seed(0)
    cfg = C.resolve("johnson")
    save_model(tmp / "johnson", build_method(cfg["method"], **cfg["model"]))
    photos = sorted((REPO / "data" / "style_transfer_512").glob("*/*.jpg"))
    photos += sorted((REPO / "data" / "facades" / "test").glob("*.jpg"))[:16 - len(photos)]
    for d in ("photos", "warm"):
        (tmp / d).mkdir()
    for i, p in enumerate(photos[:16]):
        Image.open(p).convert("RGB").save(tmp / "photos" / f"{i:02d}_{p.name}")
    for p in photos[:2]:
        shutil.copy(p, tmp / "warm" / p.name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gatys", action="store_true", help="add the 512 px Gatys iteration (about 1 min a row)")
    ap.add_argument("--only", help="these workloads alone, comma-separated")
    ap.add_argument("--busy", default="0,2,4", help="numbers of busy processes, one row each (default 0,2,4)")
    args = ap.parse_args()
    works = WORKS + ([("gatys", 3)] if args.gatys else [])
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        works = [w for w in works if w[0] in names]
    info = machine()
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="sf-threads-"))
    try:
        prepare(tmp)
        for busy in map(int, args.busy.split(",")):
            stop = mp.Event()
            procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
            for p in procs:
                p.start()
            try:
                for work, reps in works:
                    load = os.getloadavg()[0]
                    vals = [cell(work, env, reps, tmp) for _, env in SETTINGS]
                    rows.append((busy, work, vals, load))
                    print(f"busy {busy}, {work} (load {load:.1f}): "
                          + ", ".join(f"{n} {v:.3f} s" for (n, _), v in zip(SETTINGS, vals)), flush=True)
            finally:
                stop.set()
                for p in procs:
                    p.join()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{info['cpu']}, {os.cpu_count()} cores, torch {info['torch']}, matmul fp32 {info['matmul_gflops_fp32']} / "
          f"bf16 {info['matmul_gflops_bf16']} GFLOP/s, load before the run {info['load_avg_1min']:.1f}\n")
    print("| busy processes | workload | load | " + " | ".join(n for n, _ in SETTINGS) + " |")
    print("|---|---|---|" + "---|" * len(SETTINGS))
    for busy, work, vals, load in rows:
        best = min(vals)
        cells = [f"{v:.3f} s ({v / best:.1f}×)" for v in vals]
        print(f"| {busy} | {work} | {load:.1f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
