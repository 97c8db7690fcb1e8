"""On-disk cache of a real image folder's features.

Scoring a second model against the same real folder should not run Inception over that folder
again. The cache key is a SHA-256 of the folder's content as listed (each image's path relative
to the folder, size in bytes and modification time in nanoseconds) and of the feature network's
identity (weights' SHA-1, input size, value range, resize rule). Any added, removed, renamed,
rewritten or touched file, or another network, gives another key. The entry (``<key>.npz``:
features, logits if any, names, skipped files) is written atomically.

Location: ``--cache-dir``, else ``$STYLEFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/styleforge/metrics``
(``~/.cache/styleforge/metrics``).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..utils.atomic import atomic_write_bytes
from .features import Features, FeatureNet, extract_features

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("STYLEFORGE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "styleforge" / "metrics"


def folder_key(root: Path, files: list[Path], net: FeatureNet) -> str:
    h = hashlib.sha256(f"styleforge-features-v{CACHE_VERSION}\n{net.identity}\n".encode())
    root = Path(root)
    for f in files:
        st = f.stat()
        rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
        h.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:40]


def _save(path: Path, feats: Features) -> None:
    buf = io.BytesIO()
    arrays = {"pool": feats.pool.astype(np.float32),
              "meta": np.frombuffer(json.dumps({"names": feats.names, "skipped": feats.skipped,
                                                "net": feats.net}).encode(), dtype=np.uint8)}
    if feats.logits is not None:
        arrays["logits"] = feats.logits.astype(np.float32)
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path) -> Features | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            return Features(z["pool"].astype(np.float64),
                            z["logits"].astype(np.float64) if "logits" in z.files else None,
                            meta["names"], [tuple(s) for s in meta["skipped"]], meta["net"])
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # a damaged entry is recomputed


def folder_features(root, files: list[Path], net: FeatureNet, cache_dir=None, use_cache: bool = True,
                    batch_size: int = 32, progress: bool = True, desc: str = "real") -> tuple[Features, bool]:
    """Features of ``files`` (images under ``root``), from the cache when it has them.

    Returns ``(features, from_cache)``. Network outputs are float32 (``features`` casts them),
    held as float64; the cache stores them as float32, losslessly, so numbers do not depend on
    whether the cache was hit."""
    path = None
    if use_cache:
        path = Path(cache_dir or default_cache_dir()) / f"{folder_key(root, files, net)}.npz"
        if path.is_file():
            hit = _load(path)
            if hit is not None:
                return hit, True
    feats = extract_features(net, files, batch_size=batch_size, progress=progress, desc=desc)
    if path is not None:
        try:
            _save(path, feats)
        except OSError as e:  # a read-only cache is not fatal
            print(f"note: could not write the feature cache {path}: {e.strerror or e}", file=sys.stderr)
    return feats, False
