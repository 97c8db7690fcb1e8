"""The trainer's optional periodic evaluation (``train.eval_every`` > 0).

Every ``eval_every`` steps the method translates a fixed held-out subset and the result is scored
with ``eval_metric``. The subset is the first ``eval_images`` jobs of the test split that
``styleforge evaluate`` builds (:func:`~styleforge.data.splits.evaluation_jobs`, with the run's
``data.dataset`` and, for paired data, ``data.direction`` as the input side), scored against the
first ``eval_images`` of that split's real images, and translated by the same code
(:func:`~styleforge.metrics.evaluate.translate_all`: files at their own size through the
pipeline, the method's first direction, 8-bit outputs). So a periodic value is what ``evaluate``
computes on those jobs: unpaired data translates ``testA/`` against ``testB/``; paired data
each pair's input side against its target side; content/style data every content × style pair
(the method's style-image input) against the styles; class folders K-shot (the method's K-image
input: each class's first 5 images) against the classes' other images. Without a usable test
split it takes the training split, and says so.

Scores use ``eval_metric``: ``kid`` (×100, the default; unbiased, fine with few images) or ``fid``
(the exact low-rank computation of :func:`~styleforge.metrics.fid.fid_lowrank`: the reference
``sqrtm`` would take tens of seconds at every evaluation on a CPU). Lower is better for both. The
real side's features are computed once. The features come from the FID Inception, or from
``eval_feature_net`` (a TorchScript extractor by path, input ``eval_feature_size`` px, values in
[-1, 1]): a small network there makes frequent evaluation cheap; its numbers are comparable only
with themselves. The network is loaded when the trainer starts, so a bad path fails before the
first step rather than at the first evaluation.

It does not disturb training: the translation runs in ``eval()`` mode under ``torch.no_grad``
with the global RNG states (torch, CUDA, Python, NumPy) saved and restored, so a run with
evaluation has the same losses as one without, and resumes exactly.
"""
from __future__ import annotations

import json
import random
import sys

import numpy as np
import torch

from ..data.splits import PAIRED, evaluation_jobs
from ..errors import ConfigError, DataError, EvaluationError
from .features import extract_features, load_feature_net
from .fid import fid_lowrank
from .kid import KID_SCALE, kid

EVAL_METRICS = ("kid", "fid")
_KINDS = ("unpaired", *PAIRED, "content_style", "class_folders")


class PeriodicEvaluator:
    """``method`` (optional): build the jobs now from its declared inputs, so that a model that
    cannot take the split (no style input for content/style data) fails before the first step;
    without it they are built at the first call."""

    def __init__(self, cfg: dict, device: torch.device, method=None):
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
        self.n, self.kind, self.root = n, kind, d["root"]
        self.pair_input = d["direction"] if kind in PAIRED else None  # the side the method was trained on
        self.jobs: list | None = None   # the first n jobs of the split (built from the declared inputs)
        self.reals: list | None = None  # the first n real images of the split
        self.direction: str | None = None
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
        if method is not None:
            self._build(method)

    def _build(self, method) -> None:
        """The first ``n`` jobs and reals of the test split (``evaluate``'s), else of the training
        split."""
        from ..pipeline import declared_inputs

        self.direction = method.check_direction(None)
        args = (self.root, declared_inputs(method), self.direction)
        kw = {"kind": self.kind, "model": method.method_name, "pair_input": self.pair_input}
        try:
            split = evaluation_jobs(*args, "test", **kw)
        except (DataError, EvaluationError) as e:
            try:
                split = evaluation_jobs(*args, "train", **kw)
            except (DataError, EvaluationError):
                raise ConfigError(f"train.eval_every: {e}") from None
            print(f"note: {e}; the periodic evaluation uses the training split", file=sys.stderr)
        self.jobs, self.reals = split.jobs[:self.n], split.reals[:self.n]

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

    def _features(self, images) -> np.ndarray:
        return extract_features(self._net, images, batch_size=32, progress=False).pool

    @torch.no_grad()
    def _translate(self, method) -> list:
        """The jobs through the pipeline, as ``styleforge evaluate`` runs them."""
        from ..pipeline import Pipeline
        from .evaluate import translate_all

        pipe = Pipeline(method, device=str(self.device))
        return translate_all(pipe, self.jobs, self.direction, 1, progress=False)[0]

    def __call__(self, method) -> float:
        if self.jobs is None:
            self._build(method)
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
            self._real = self._features(self.reals)
        ff = self._features(fake)
        if self.metric == "kid":
            return kid(self._real, ff)[0] * KID_SCALE
        return fid_lowrank(self._real, ff)

    def improved(self, value: float) -> bool:
        return self.best is None or value < self.best
