"""Load test of ``styleforge serve``: a real server on 127.0.0.1 answers a bounded number of mixed
requests, good and bad, built from each model's declared inputs; the table says how many came
back 2xx / 4xx / 503 / other 5xx, how many 4xx lacked the JSON ``{"error": ...}`` body, and the
server's resident memory before, half-way and after.

    python benchmarks/serve_load.py [--models munit,funit] [--requests 600] [--concurrency 6]
        [--seconds 300] [--seed 0] [--json] [--src OTHER_CHECKOUT/src] [-- extra serve options]

The models are the tiny presets (``configs/tiny``; random weights: speed and robustness do not
depend on their values), saved to a temporary folder. Requests go only to 127.0.0.1, stop after
``--requests`` or ``--seconds`` (whichever comes first), and the server is stopped at the end.

Each request picks a model and one case: a good request (declared inputs with valid values) or
one thing wrong with it (a bad file, a tiny or thin image, an out-of-range number, NaN, a code of
the wrong length, too many files, an unknown field, ...). Any answer other than 200, 4xx with a
JSON error, or 503 (queue full) counts as unexpected. ``--json`` prints one JSON line instead of
the table (tests/commands/test_serve.py runs a small bounded version).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

PHOTOS = sorted((REPO / "data" / "horse2zebra" / "testA").iterdir()) + \
    sorted((REPO / "data" / "style_transfer" / "style").iterdir())
EXPECTED = {200, 400, 413, 415, 422, 503}


# ---- files ------------------------------------------------------------------------------------
def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def photo(rng: random.Random, side: int | None = None, mode: str = "RGB") -> bytes:
    from PIL import Image

    with Image.open(rng.choice(PHOTOS)) as im:
        im = im.convert("RGB")
        s = side or rng.randint(24, 96)
        im = im.resize((s, max(8, int(s * rng.uniform(0.6, 1.4)))))
        return _png(im.convert(mode))


def sized(w: int, h: int, colour=(90, 140, 200)) -> bytes:
    from PIL import Image

    return _png(Image.new("RGB", (w, h), colour))


def bomb(w: int, h: int) -> bytes:
    """An 8×8 PNG whose header claims w × h."""
    data = bytearray(sized(8, 8))
    data[16:24] = w.to_bytes(4, "big") + h.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def odd_format(rng: random.Random) -> bytes:
    """A valid image in a less common format or mode."""
    from PIL import Image

    im = Image.open(io.BytesIO(photo(rng, 48))).convert("RGB")
    kind = rng.choice(["I;16", "CMYK", "LA", "P", "1", "gif", "webp", "tiff", "F"])
    buf = io.BytesIO()
    if kind == "CMYK":
        im.convert("CMYK").save(buf, format="JPEG")
    elif kind == "gif":
        im.save(buf, format="GIF", save_all=True, append_images=[im.rotate(90)])
    elif kind in ("webp", "tiff"):
        im.save(buf, format=kind.upper())
    elif kind == "F":
        im.convert("F").save(buf, format="TIFF")
    else:
        im.convert(kind).save(buf, format="PNG")
    return buf.getvalue()


BAD_FILES = {
    "text": lambda rng: b"just some words, not pixels",
    "empty": lambda rng: b"",
    "truncated": lambda rng: photo(rng, 64)[:300],
    "tiny": lambda rng: sized(1, 1),
    "small": lambda rng: sized(3, 2),
    "thin": lambda rng: sized(400, 2),
    "bomb": lambda rng: bomb(20_000, 20_000),
}


# ---- cases from the declared inputs -----------------------------------------------------------
def good_value(inp: dict, rng: random.Random):
    """(text fields, files) of a valid value of the declared input ``inp``."""
    name, kind = inp["name"], inp["kind"]
    if kind == "reference":
        n = rng.randint(1, 2) if inp.get("multiple") else 1
        return {}, [(name, photo(rng)) for _ in range(n)]
    if kind == "images":
        k = rng.randint(int(inp.get("min") or 1), int(inp.get("min") or 1) + 2)
        return {}, [(name, photo(rng)) for _ in range(k)]
    if kind == "mask":
        return {}, [(name, photo(rng, mode="L"))]
    if kind == "code":
        return {name: " ".join(f"{rng.gauss(0, 1):.3f}" for _ in range(int(inp["size"])))}, []
    if kind in ("float", "int"):
        lo = inp["min"] if inp["min"] is not None else 0
        hi = inp["max"] if inp["max"] is not None else lo + 2
        if inp["name"] in ("iterations", "style_size"):  # the server's limits decide these
            hi = min(hi, 64)
        v = rng.uniform(lo, hi)
        return {name: str(int(v) if kind == "int" else round(v, 3))}, []
    if kind == "choice":
        return {name: str(rng.choice(inp["choices"]))}, []
    if kind == "flag":
        return {name: rng.choice(["true", "false"])}, []
    if kind == "seed":
        return {name: str(rng.randint(0, 1000))}, []
    return {}, []  # floats: leave out (its count depends on other inputs)


def bad_value(inp: dict, rng: random.Random):
    """(label, text fields, files): one wrong value for ``inp``."""
    name, kind = inp["name"], inp["kind"]
    if kind in ("reference", "images", "mask") or (kind == "code" and inp.get("encoder") and rng.random() < 0.5):
        what = rng.choice(["as_text", *BAD_FILES])
        if what == "as_text":
            return f"{name}:text", {name: "abc"}, []
        return f"{name}:{what}", {}, [(name, BAD_FILES[what](rng))]
    choices = {
        "code": ["1 2", "nan " * int(inp.get("size") or 1), "1e400 " * int(inp.get("size") or 1), "abc", ",", "1" * 400],
        "float": ["nan", "inf", "-inf", "1e309", "abc", "-5", "1e12"],
        "int": ["1.5", "-1", "99999999999999999999999", "abc", "1e3", "100000"],
        "floats": ["nan", "1 2 3 4 5 6 7", "-1", "abc", "0 0", "inf 1"],
        "choice": ["nope", "AtoB;", "\u00e9"],
        "flag": ["maybe", "2"],
        "seed": ["-1", "abc", "18446744073709551616", "1.5"],
    }.get(kind, ["?"])
    v = rng.choice(choices)
    return f"{name}={v[:12]}", {name: v}, []


def make_case(model: dict, rng: random.Random):
    """(label, text fields, files) of one request to ``model``."""
    fields, files = {"model": model["id"]}, [("image", photo(rng))]
    for inp in model["inputs"]:
        if inp["required"] or rng.random() < 0.5:
            f, fl = good_value(inp, rng)
            fields.update(f)
            files += fl
    r = rng.random()
    if r < 0.25:
        return "good", fields, files
    if r < 0.3:
        return "odd_format", fields, [(k, v) for k, v in files if k != "image"] + [("image", odd_format(rng))]
    if r < 0.45:  # a bad main image
        what = rng.choice(list(BAD_FILES))
        return f"image:{what}", fields, [(k, v) for k, v in files if k != "image"] + [("image", BAD_FILES[what](rng))]
    if r < 0.8 and model["inputs"]:
        inp = rng.choice(model["inputs"])
        label, f, fl = bad_value(inp, rng)
        files = [(k, v) for k, v in files if k != inp["name"]] + fl
        fields = {k: v for k, v in fields.items() if k != inp["name"]}
        return label, {**fields, **f}, files
    what = rng.choice(["num_outputs", "outputs", "unknown_field", "many_files", "unknown_model", "json",
                       "pixel_flood"])
    if what == "num_outputs":
        fields["num_outputs"] = rng.choice(["0", "2", "65", "x", "3"])
    elif what == "outputs":
        fields["outputs"] = rng.choice(["bogus", "image,heatmap", ""])
    elif what == "unknown_field":
        fields["option.nope"] = "1"
    elif what == "many_files":
        files += [("nope", sized(8, 8))] * 70
    elif what == "pixel_flood":  # compressible images: a small upload, many pixels to decode
        img = sized(5000, 4000)
        files += [(next((i["name"] for i in model["inputs"] if i["kind"] == "images"), "image"), img)] * 12
    elif what == "unknown_model":
        fields["model"] = "nope"
    else:
        fields["format"] = "json"
    return what, fields, files


# ---- the server -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def build_models(names: list[str], folder: Path) -> list[Path]:
    import torch

    from styleforge import config as C
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    torch.manual_seed(0)
    out = []
    for name in names:
        cfg = C.resolve(f"tiny/{name}")
        out.append(save_model(folder / name, build_method(cfg["method"], **cfg["model"])))
    return out


def start_server(models: list[Path], port: int, extra: list[str], log: Path, src: Path = REPO / "src"):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STYLEFORGE_DEVICE": "cpu", "PYTHONPATH": str(src)}
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "styleforge", "serve", *map(str, models), "--port", str(port),
                             *extra], stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    return proc


def wait_ready(url: str, proc, log: Path, timeout: float = 90) -> None:
    import httpx

    t0 = time.time()
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() - t0 > timeout:
            raise RuntimeError("server did not start: " + log.read_text()[-2000:])
        time.sleep(0.2)


def run(models: list[str], requests: int, concurrency: int, seconds: float, seed: int, extra: list[str],
        src: Path = REPO / "src") -> dict:
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = build_models(models, tmp / "models")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp / "server.log"
        proc = start_server(paths, port, extra, log, src)
        try:
            wait_ready(url, proc, log)
            headers = {"Authorization": f"Bearer {os.environ['STYLEFORGE_TOKEN']}"} \
                if os.environ.get("STYLEFORGE_TOKEN") else {}
            listing = httpx.get(url + "/api/models", headers=headers, timeout=10).json()["models"]
            rng = random.Random(seed)
            cases = [(i, *make_case(rng.choice(listing), rng)) for i in range(requests)]
            rss = {"start": rss_mb(proc.pid)}
            results, lock = [], threading.Lock()
            deadline = time.time() + seconds
            t0 = time.time()

            def send(case):
                i, label, fields, files = case
                if time.time() > deadline:
                    return
                try:
                    with httpx.Client(timeout=120, headers=headers) as c:
                        r = c.post(url + "/api/translate", data=fields,
                                   files=[(k, (f"{k}{j}.png", v, "application/octet-stream"))
                                          for j, (k, v) in enumerate(files)])
                    status, body = r.status_code, r.content[:300]
                    ok_body = status < 400 or _json_error(r)
                except httpx.HTTPError as e:
                    status, body, ok_body = 0, repr(e).encode(), False
                with lock:
                    results.append((i, label, status, ok_body, body))
                    if len(results) == requests // 2:
                        rss["half"] = rss_mb(proc.pid)

            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(send, cases))
            wall = time.time() - t0
            time.sleep(0.5)
            rss["end"] = rss_mb(proc.pid)
            errors = [line for line in log.read_text(errors="replace").splitlines()
                      if line and not line.startswith(("INFO", "serving", " "))][-6:]
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    counts = Counter(s for _, _, s, _, _ in results)
    unexpected = [(label, s, b.decode("utf-8", "replace")) for _, label, s, _, b in results if s not in EXPECTED]
    not_json = [(label, s, b.decode("utf-8", "replace")) for _, label, s, ok, b in results
                if s in EXPECTED and s >= 400 and not ok]
    return {"models": ",".join(models), "requests": len(results), "wall_s": round(wall, 1),
            "2xx": sum(v for k, v in counts.items() if 200 <= k < 300),
            "4xx": sum(v for k, v in counts.items() if 400 <= k < 500), "503": counts.get(503, 0),
            "other_5xx": sum(v for k, v in counts.items() if k >= 500 and k != 503),
            "unexpected": len(unexpected), "4xx_not_json": len(not_json),
            "rss_start_mb": round(rss["start"]), "rss_half_mb": round(rss.get("half", 0)),
            "rss_end_mb": round(rss["end"]), "examples": (unexpected + not_json)[:8],
            "server_errors": errors if unexpected else []}


def _json_error(r) -> bool:
    try:
        return isinstance(r.json().get("error"), str)
    except ValueError:
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="munit,funit", help="tiny presets to serve (comma-separated)")
    p.add_argument("--requests", type=int, default=600)
    p.add_argument("--concurrency", type=int, default=6)
    p.add_argument("--seconds", type=float, default=300, help="stop sending after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--src", type=Path, default=REPO / "src",
                   help="the styleforge source the server runs (another checkout's src/: before/after)")
    args, extra = p.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    res = run(args.models.split(","), args.requests, args.concurrency, args.seconds, args.seed, extra, args.src)
    if args.json:
        print(json.dumps(res))
    else:
        cols = ["models", "requests", "wall_s", "2xx", "4xx", "503", "other_5xx", "unexpected", "4xx_not_json",
                "rss_start_mb", "rss_half_mb", "rss_end_mb"]
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        print("| " + " | ".join(str(res[c]) for c in cols) + " |")
        for label, status, body in res["examples"]:
            print(f"  {status} {label}: {body[:160]}")
        for line in res["server_errors"]:
            print(f"  server: {line[:200]}")
    return 0 if res["unexpected"] == 0 and res["4xx_not_json"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
