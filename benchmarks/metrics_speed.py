"""Speed of the evaluation on the CPU: feature extraction per image, and scoring 1,000 images
with the real set's features cached or not.

    python benchmarks/metrics_speed.py [--images 1000] [--extract 96] [--threads 2]

* **load**: reading the FID Inception (TorchScript, 95 MB) and checking its SHA-1.
* **extract**: images per second through the whole pass (decode JPEG, Pillow bicubic resize to
  299, Inception forward, batch 32), after two warm-up batches (TorchScript profiles the first
  calls of a shape and optimises from the third on), on ``--extract`` images.
* **metrics**: FID (the sqrtm reference and the exact low-rank route) and KID (100 subsets of
  1000) on two sets of ``--images`` × 2048 features; the features are real ones (the extracted
  images, repeated with a little noise: the timing depends only on the shapes).
* **score N images**: ``evaluate --real R --fake F`` for N real and N generated images:
  uncached = extract both sets + metrics; cached = read the real set's cache entry + extract the
  generated set + metrics. Extraction time is the measured per-image time × N (running 2,000
  images through Inception on a shared 2-core box would take ~10 minutes for no new information);
  the cache read and the metrics are measured at full size.

Images: ../shared/data/horse2zebra (256 px JPEG) when present, else the bundled 128 px sample,
cycled to the count needed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    from styleforge.data.images import list_images
    from styleforge.metrics.cache import folder_features
    from styleforge.metrics.features import extract_features, load_feature_net
    from styleforge.metrics.fid import fid
    from styleforge.metrics.kid import kid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000, help="set size to score (default 1000)")
    ap.add_argument("--extract", type=int, default=96, help="images timed through the network (default 96)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shared = REPO.parent / "shared" / "data" / "horse2zebra"
    src = shared if shared.is_dir() else REPO / "data" / "horse2zebra"
    pool = [f for sub in ("testA", "testB", "trainA", "trainB") for f in list_images(src / sub)]
    info = machine()
    info["images_from"] = str(src)
    print(json.dumps(info), flush=True)

    net, t_load = timed(load_feature_net)
    bs = 32
    files = [pool[i % len(pool)] for i in range(2 * bs + args.extract)]
    extract_features(net, files[:2 * bs], batch_size=bs, progress=False)  # the two profiling calls
    per_batch = []
    feats = []
    for i in range(2 * bs, len(files), bs):
        f, t = timed(lambda: extract_features(net, files[i:i + bs], batch_size=bs, progress=False))
        per_batch.append(t / len(f))
        feats.append(f.pool)
    per_image = statistics.median(per_batch)
    base = np.concatenate(feats)
    print(json.dumps({"load_s": round(t_load, 2), "extract_s_per_image": round(per_image, 3),
                      "images_per_s": round(1 / per_image, 2)}), flush=True)

    n = args.images
    rng = np.random.default_rng(0)
    real = base[rng.integers(0, len(base), n)] * rng.uniform(0.9, 1.1, (n, base.shape[1]))
    fake = base[rng.integers(0, len(base), n)] * rng.uniform(0.8, 1.2, (n, base.shape[1]))
    _, t_sqrtm = timed(lambda: fid(real, fake, "sqrtm"))
    _, t_low = timed(lambda: fid(real, fake, "lowrank"))
    _, t_kid = timed(lambda: kid(real, fake))
    print(json.dumps({"n": n, "fid_sqrtm_s": round(t_sqrtm, 2), "fid_lowrank_s": round(t_low, 2),
                      "kid_s": round(t_kid, 2)}), flush=True)

    # the cache read at full size: an entry of n features written and read back as evaluate does
    tmp = Path(tempfile.mkdtemp(prefix="sf-metrics-bench-"))
    try:
        d = tmp / "real"
        d.mkdir()
        for i in range(n):  # a folder of n files (hard links: no copying)
            f = pool[i % len(pool)]
            (d / f"{i:05d}{f.suffix}").hardlink_to(f)
        listing = sorted(d.iterdir())

        class Fake:  # stands in for the network so the write/read of a real-size entry is timed alone
            identity = net.identity

        from styleforge.metrics import cache as cache_mod
        from styleforge.metrics.features import Features

        key_path = tmp / "cache" / f"{cache_mod.folder_key(d, listing, Fake)}.npz"
        cache_mod._save(key_path, Features(real, None, [str(p) for p in listing], [], net.identity))
        (hit, was_hit), t_read = timed(lambda: folder_features(d, listing, net, tmp / "cache", progress=False))
        assert was_hit and len(hit) == n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    extract_n = per_image * n
    rows = []
    for fid_name, t_fid in (("sqrtm", t_sqrtm), ("lowrank", t_low)):
        rows.append({"fid": fid_name, "uncached_s": round(2 * extract_n + t_fid + t_kid, 1),
                     "cached_s": round(t_read + extract_n + t_fid + t_kid, 1)})
    print(json.dumps({"n": n, "cache_read_s": round(t_read, 3), "extract_n_s": round(extract_n, 1),
                      "score": rows}), flush=True)
    print()
    print(f"| step | time ({info['threads']} threads) |")
    print("|---|---|")
    print(f"| load the FID Inception (+ SHA-1) | {t_load:.2f} s |")
    print(f"| extract features (decode, resize, forward), per image | {per_image * 1000:.0f} ms "
          f"({1 / per_image:.2f} images/s) |")
    print(f"| FID, sqrtm reference, {n} vs {n} | {t_sqrtm:.1f} s |")
    print(f"| FID, exact low-rank, {n} vs {n} | {t_low:.2f} s |")
    print(f"| KID, 100 subsets of {min(n, 1000)} | {t_kid:.2f} s |")
    print(f"| read the real set's cached features ({n}) | {t_read * 1000:.0f} ms |")
    for r in rows:
        print(f"| score {n} vs {n}, FID {r['fid']}: uncached / cached | {r['uncached_s']:.0f} s / "
              f"{r['cached_s']:.0f} s |")


if __name__ == "__main__":
    main()
