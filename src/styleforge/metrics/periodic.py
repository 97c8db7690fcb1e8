"""The trainer's optional periodic evaluation (``train.eval_every`` > 0).

Every ``eval_every`` steps the method translates a fixed held-out subset (the first
``eval_images`` samples of the test split, resized to ``data.crop_size`` with no augmentation,
input side "A") in its first direction, and the result is scored against the same samples'
target side ("B") with ``eval_metric``: ``kid`` (×100, the default; unbiased, fine with few
images) or ``fid`` (the exact low-rank computation of :func:`~styleforge.metrics.fid.fid_lowrank`:
the reference ``sqrtm`` would take tens of seconds at every evaluation on a CPU). Lower is better
for both. The real side's features are computed once. The features come from the FID Inception,
or from ``eval_feature_net`` (a TorchScript extractor by path, input ``eval_feature_size`` px,
values in [-1, 1]): a small network there makes frequent evaluation cheap; its numbers are
comparable only with themselves. The network is loaded when the trainer starts, so a bad path
fails before the first step rather than at the first evaluation.

It does not disturb training: the samples are drawn with the datasets' own per-sample
generators, the translation runs in ``eval()`` mode under ``torch.no_grad`` with the global
RNG states (torch, CUDA, Python, NumPy) saved and restored, so a run with evaluation has the
same losses as one without, and resumes exactly.
"""
from __future__ import annotations

import json
import random
import sys

import numpy as np
import torch

from ..errors import ConfigError, DataError, EvaluationError
from .features import extract_features, load_feature_net
from .fid import fid_lowrank
from .kid import KID_SCALE, kid

EVAL_METRICS = ("kid", "fid")
_PAIRED = ("unpaired", "paired_ab", "paired_folders")


class PeriodicEvaluator:
    def __init__(self, cfg: dict, device: torch.device):
        from ..data.datasets import build_dataset
        from ..data.transforms import Transform

        t, d = cfg["train"], cfg["data"]
        self.metric = str(t["eval_metric"]).lower()
        if self.metric not in EVAL_METRICS:
            raise ConfigError(f"train.eval_metric must be one of {', '.join(EVAL_METRICS)}, got {t['eval_metric']!r}")
        n = t["eval_images"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ConfigError(f"train.eval_images must be an integer >= 2, got {n!r}")
        kind = d["dataset"]
        if kind not in _PAIRED:
            raise ConfigError(f"train.eval_every works with unpaired and paired datasets (input A, target B); "
                              f"this run's data.dataset is {kind}")
        tf = Transform(d["crop_size"], d["crop_size"], "resize", flip=False)
        kw = {"serial": True} if kind == "unpaired" else {"direction": d["direction"]}
        try:
            ds = build_dataset(kind, d["root"], "test", tf, t["seed"], **kw)
        except DataError:
            print("note: no test split; the periodic evaluation uses the first training images", file=sys.stderr)
            ds = build_dataset(kind, d["root"], "train", tf, t["seed"], **kw)
        k = min(n, len(ds))
        items = [ds[i] for i in range(k)]
        self.inputs = torch.stack([it["A"] for it in items])
        self.targets = torch.stack([it["B"] for it in items])
        self.device = device
        self.name = f"eval_{self.metric}"
        self.best: float | None = None
        self.best_step: int | None = None
        path = t.get("eval_feature_net")
        size = t.get("eval_feature_size", 299)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"train.eval_feature_size must be a positive integer, got {size!r}")
        if path:
            try:
                self._net = load_feature_net(path, size, device=device)
            except EvaluationError as e:
                raise ConfigError(f"train.eval_feature_net: {e}") from None
        else:
            if size != 299:
                raise ConfigError(f"train.eval_feature_size={size} applies to train.eval_feature_net; "
                                  "the default FID Inception takes 299 px")
            self._net = load_feature_net(device=device)
        self._real = None

    def load_best(self, best_dir) -> None:
        """Take the best value so far from ``checkpoints/best/eval.json`` (on resume)."""
        f = best_dir / "eval.json"
        if f.is_file():
            try:
                rec = json.loads(f.read_text())
                if rec.get("metric") == self.metric:
                    self.best, self.best_step = float(rec["value"]), int(rec["step"])
            except (ValueError, KeyError, TypeError):
                pass

    def _features(self, x: torch.Tensor) -> np.ndarray:
        return extract_features(self._net, x, batch_size=32, progress=False).pool

    @torch.no_grad()
    def _translate(self, method) -> torch.Tensor:
        direction = method.directions[0]
        outs = []
        for i in range(0, len(self.inputs), 8):
            outs.append(method.translate(self.inputs[i:i + 8].to(self.device), direction).float().cpu())
        return torch.cat(outs)

    def __call__(self, method) -> float:
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        py_state, np_state = random.getstate(), np.random.get_state()
        was_training = method.training
        with torch.random.fork_rng(devices=devices):
            try:
                method.eval()
                fake = self._translate(method)
            finally:
                method.train(was_training)
                random.setstate(py_state)
                np.random.set_state(np_state)
        if self._real is None:
            self._real = self._features(self.targets)
        ff = self._features(fake)
        if self.metric == "kid":
            return kid(self._real, ff)[0] * KID_SCALE
        return fid_lowrank(self._real, ff)

    def improved(self, value: float) -> bool:
        return self.best is None or value < self.best
