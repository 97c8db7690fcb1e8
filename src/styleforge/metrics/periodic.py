"""The trainer's optional periodic evaluation (``train.eval_every`` > 0).

Every ``eval_every`` steps the method translates a fixed held-out subset (the first
``eval_images`` samples of the test split, resized to ``data.crop_size`` with no augmentation)
and the result is scored against the subset's targets with ``eval_metric``. What a sample
gives depends on the data kind, and the method's declared inputs say where it goes: unpaired
and paired data translate side "A" in the first direction against side "B"; content/style data
stylize each content with its style (the method's style-image input) against the styles;
class folders translate each sample with K class images (the method's K-image input) of the
next sample's class, against those classes' images. Scores use ``eval_metric``: ``kid`` (×100, the default; unbiased, fine with few
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
_KINDS = (*_PAIRED, "content_style", "class_folders")


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
        if kind not in _KINDS:
            raise ConfigError(f"train.eval_every works with {', '.join(_KINDS)} datasets; "
                              f"this run's data.dataset is {kind}")
        tf = Transform(d["crop_size"], d["crop_size"], "resize", flip=False)
        kw = {"serial": True} if kind == "unpaired" else {"direction": d["direction"]} if kind in _PAIRED else {}
        try:
            ds = build_dataset(kind, d["root"], "test", tf, t["seed"], **kw)
        except DataError:
            print("note: no test split; the periodic evaluation uses the first training images", file=sys.stderr)
            ds = build_dataset(kind, d["root"], "train", tf, t["seed"], **kw)
        k = min(n, len(ds))
        items = [ds[i] for i in range(k)]
        self.kind = kind
        self.extra: list[dict] = [{} for _ in items]  # per sample: the kind's tensor input (before naming)
        if kind in _PAIRED:
            self.inputs = torch.stack([it["A"] for it in items])
            self.targets = torch.stack([it["B"] for it in items])
        elif kind == "content_style":
            self.inputs = torch.stack([it["content"] for it in items])
            self.targets = torch.stack([it["style"] for it in items])
            self.extra = [{"reference": it["style"][None]} for it in items]
        else:  # class folders: K images of the next sample's class
            shots = int(t.get("eval_shots", 5) or 5)
            labels = [it["label"] for it in items]
            by_class = {}
            for i, lab in enumerate(getattr(ds, "targets", labels)):
                by_class.setdefault(lab, []).append(i)
            self.inputs = torch.stack([it["image"] for it in items])
            tgts = []
            for i in range(k):
                lab = labels[(i + 1) % k]
                idx = by_class[lab][:shots]
                cls = torch.stack([ds[j]["image"] for j in idx])
                self.extra[i] = {"images": cls}
                tgts.append(cls[0])
            self.targets = torch.stack(tgts)
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
        """The subset through the method's declared inputs (``Pipeline.run_tensor``): the
        kind's extra tensor goes to the method's first input of that kind; seeded codes."""
        from ..pipeline import Pipeline

        pipe = Pipeline(method, device=str(self.device))
        names = {kind: next((i.name for i in pipe.inputs[1:] if i.kind == kind), None)
                 for kind in ("reference", "images")}
        seed = {"seed": 0} if pipe.stochastic else {}
        outs = []
        if self.kind in _PAIRED:
            for i in range(0, len(self.inputs), 8):
                outs.append(pipe.run_tensor(self.inputs[i:i + 8], **seed)[0]["image"].float().cpu())
            return torch.cat(outs)
        for x, extra in zip(self.inputs, self.extra):
            values = {}
            for kind, t in extra.items():
                if names[kind] is None:
                    raise ConfigError(f"train.eval_every on {self.kind} data: {method.method_name} has no "
                                      f"{kind} input")
                multiple = pipe.input(names[kind]).multiple
                values[names[kind]] = [t] if multiple else t
            outs.append(pipe.run_tensor(x[None], **seed, **values)[0]["image"].float().cpu())
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
