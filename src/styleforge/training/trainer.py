"""The training loop every method shares: data, forward, losses, backward, step, log, checkpoint.

It knows nothing of any method: it asks the method for its optimizer groups and iterates the
phases of ``method.training_step(batch)`` (see ``methods/base.py``).

The run folder's layout is ``runs.RunFolder``'s (config.yaml, run.json, log.jsonl, samples/,
checkpoints/step_N, checkpoints/latest, checkpoints/best, model/).

Networks: the method's ``frozen_modules`` (and EMA targets) get ``requires_grad=False`` when it is
built and may be in no optimizer group; training checkpoints leave frozen modules out (the method
rebuilds them from its config). Each optimizer group gets its own optimizer and LR schedule from
the ``train:`` section and ``train.optimizers.<group>`` (``schedules.py``); ``ema.py`` keeps
``method.ema_modules`` averaged when ``train.ema_decay`` > 0.

Exact resume: the data order is a permutation drawn from (seed, epoch), every sample's
augmentation from (seed, epoch, index), the DataLoader has its own generator, and a checkpoint
stores the optimizers, the schedules and the step (the position in the epoch), and for every
process its own global RNG states and method's extra state (image pools) in ``rank_R.pt``. A run
resumed from step k reproduces the losses of an uninterrupted run on CPU, with one process or
several. Several processes save a checkpoint together (``save_checkpoint``): it is committed only
when every rank's state is in it. Workers that ``torchrun --max-restarts`` restarts resume by
themselves; a peer's death stops the others with one line naming its rank (``distributed.py``).
"""
from __future__ import annotations

import functools
import json
import math
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import __version__
from ..checkpoint import (load_module_state, load_rank_state, load_training_state, rank_state_file, save_model,
                          save_rank_state, save_training_state, write_model_files)
from ..config import SCHEDULE_KEYS, dump
from ..errors import CheckpointError, ConfigError, DataError, StyleforgeError, TrainingError
from ..registry import build_method, get_method_class
from ..runs import RunFolder
from ..utils.atomic import atomic_write_text, make_temp_dir, replace_dir, temp_dir_into
from ..utils.device import process_device
from ..utils.images import chw_to_pil, make_grid, save_image_atomic
from ..utils.seed import seed_everything, seeded_generator
from . import distributed
from .logging import RunLogger
from .ema import ModuleEMA
from .schedules import lr_multiplier, make_optimizer, optimizer_settings


class Interrupted(StyleforgeError):
    """Raised by ``fit`` after a signal: a checkpoint was written first. A command that does not
    catch it (``demo``, ...) still ends with one line and exit status 130."""

    exit_code = 130

    def __init__(self, signum, step, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"interrupted by signal {signum} at step {step}; checkpoint saved: {checkpoint}; "
                         "the same command again resumes")


def git_revision() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def configure_backends(device: torch.device) -> None:
    """Backend switches the trainer sets for a device (benchmarks call this too)."""
    if device.type == "cuda":
        # training crops have one size: let cuDNN pick the fastest kernels once (as the
        # authors' CycleGAN/pix2pix code does); results are not bit-reproducible on GPU anyway
        torch.backends.cudnn.benchmark = True


def freeze_modules(method) -> list[str]:
    """``requires_grad=False`` on the method's frozen modules and EMA targets; returns the names
    of the frozen ones (a misspelt name is a one-line error)."""
    names = list(method.frozen_modules)
    for name in names + list(method.ema_modules):
        m = getattr(method, name, None)
        if not isinstance(m, torch.nn.Module):
            raise ConfigError(f"{method.method_name}: frozen_modules/ema_modules name {name!r}, "
                              "which is not a submodule")
        m.requires_grad_(False)
    bad = sorted(set(names) & set(method.ema_modules))
    if bad:
        raise ConfigError(f"{method.method_name}: {bad[0]} is both frozen and an EMA target "
                          "(an EMA target must stay in the training checkpoints)")
    return names


def trainable_groups(method) -> dict[str, list[torch.nn.Parameter]]:
    """The method's optimizer groups, checked: no frozen or EMA-target parameter in any group,
    at least one trainable parameter (else the method's ``not_trainable`` sentence)."""
    why = getattr(method, "not_trainable", None)
    try:
        groups = {} if why else {k: list(v) for k, v in method.optimizer_groups().items()}
    except NotImplementedError:
        groups = {}
    if not any(groups.values()):
        raise ConfigError(f"{method.method_name} {why or 'has no trainable parameters: nothing to train'}")
    fixed = {id(p): name for name in (*method.frozen_modules, *method.ema_modules)
             for p in getattr(method, name).parameters()}
    for group, params in groups.items():
        for p in params:
            if id(p) in fixed:
                raise ConfigError(f"{method.method_name}: optimizer group {group} holds parameters of "
                                  f"{fixed[id(p)]}, which is frozen or an EMA target")
    return groups


def build_optimizers(method, t: dict) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per optimizer group of the method: ``train.optimizer`` with the section's
    rate, betas, ... or what ``train.optimizers.<group>`` overrides (``schedules.make_optimizer``).
    Per-group settings naming a group the method does not have are a one-line error."""
    import difflib

    groups = trainable_groups(method)
    for name in (t.get("optimizers") or {}):
        if name not in groups:
            close = ([g for g in groups if g.lower() == str(name).lower()]
                     or difflib.get_close_matches(str(name), list(groups), n=1))
            hint = f" (did you mean train.optimizers.{close[0]}?)" if close else ""
            raise ConfigError(f"train.optimizers.{name}: {method.method_name} has no optimizer group "
                              f"{name!r}{hint}; its groups: {', '.join(groups)}")
    return {name: make_optimizer(params, optimizer_settings(t, name)) for name, params in groups.items()}


def parameter_table(method) -> list[str]:
    """``--dry-run``'s parameter lines: trainable, frozen and EMA (averaged, not trained) apart."""
    frozen, ema = set(method.frozen_modules), set(method.ema_modules)
    counts = method.parameter_counts()
    lines, totals = [], {"trainable": 0, "frozen": 0, "averaged": 0}
    for name, n in counts.items():
        kind = "frozen" if name in frozen else "averaged" if name in ema else "trainable"
        totals[kind] += n
        lines.append(f"#   {name}: {n:,}" + ("" if kind == "trainable" else f" ({kind})"))
    lines.append(f"#   trainable: {totals['trainable']:,}; frozen: {totals['frozen']:,}"
                 + (f"; EMA copies: {totals['averaged']:,}" if ema else ""))
    return lines


def build_datasets(cfg: dict):
    """Training set and the fixed sample batch source (test split if there is one)."""
    from ..data.datasets import build_dataset
    from ..data.splits import dataset_kwargs
    from ..data.transforms import Transform

    d, seed = cfg["data"], cfg["train"]["seed"]
    if not d["root"]:
        raise DataError("no training data: give --data DIR (or data.root=DIR)")
    train_tf = Transform(d["load_size"], d["crop_size"], d["preprocess"], flip=d["flip"])
    method = get_method_class(cfg["method"])
    kw = dataset_kwargs(d, method.data_kind, method.data_options)  # with the data options it declares (FUNIT: pairs)
    train = build_dataset(d["dataset"], d["root"], "train", train_tf, seed, **kw)
    test_tf = Transform(d["crop_size"], d["crop_size"], "resize", flip=False)
    try:
        test = build_dataset(d["dataset"], d["root"], "test", test_tf, seed, **kw)
    except DataError:
        test = build_dataset(d["dataset"], d["root"], "train", test_tf, seed, **kw)
    return train, test


class Trainer:
    def __init__(self, cfg: dict, run_dir, resume: bool = False):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run = RunFolder(self.run_dir)
        self.resume = resume
        t = cfg["train"]
        self.device = process_device(t["device"])  # under torchrun: cuda:LOCAL_RANK
        self.dist = distributed.setup(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        configure_backends(self.device)
        self.is_main = self.dist.is_main
        self.stop_signal = None
        self._saved_step = None  # the step of the checkpoint on disk that holds the state in memory
        # Workers that torchrun restarted (--max-restarts) after a process died resume the run
        # their first attempt started. Read before any rank writes run.json: rank 0 can pass
        # _build's broadcast only once every rank has got here.
        if not resume and distributed.restart_count() > 0 and self._started_by_this_job():
            self.resume = True
            if self.is_main:
                print(f"note: torchrun restarted the workers (restart {distributed.restart_count()}); "
                      f"resuming {self.run_dir} from its latest checkpoint")

    def _started_by_this_job(self) -> bool:
        sessions = self.run.sessions()
        job = distributed.run_id()
        return bool(job and sessions and sessions[-1].get("torchrun_run_id") == job)

    # ---- setup -------------------------------------------------------------------------
    def _build(self):
        cfg, t = self.cfg, self.cfg["train"]
        seed_everything(t["seed"])  # same initial weights on every rank
        self.method = build_method(cfg["method"], **cfg["model"]).to(self.device)
        freeze_modules(self.method)
        if self.dist.enabled:
            distributed.broadcast_module(self.method)
        self.optimizers = build_optimizers(self.method, t)
        self.ema = ModuleEMA(self.method, self.optimizers, t["ema_decay"]) if t["ema_decay"] > 0 else None
        self.train_set, self.sample_set = build_datasets(cfg)
        bs = cfg["data"]["batch_size"] * 1
        n = len(self.train_set)
        if cfg["data"]["max_size"]:
            n = min(n, int(cfg["data"]["max_size"]))
        self.epoch_len = n
        self.steps_per_epoch = n // (bs * self.dist.world_size)
        if self.steps_per_epoch < 1:
            raise DataError(
                f"{cfg['data']['root']}: {n} training samples are fewer than one batch "
                f"({bs} x {self.dist.world_size} processes)")
        if t["steps"] is not None:
            self.total_steps = t["steps"] + t["steps_decay"]
        else:
            self.total_steps = (t["epochs"] + t["epochs_decay"]) * self.steps_per_epoch
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(self._lr_lambda, group=name))
            for name, opt in self.optimizers.items()
        }
        self.step = 0
        self.fixed_batch = self._sample_batch()
        self.evaluator = None  # optional periodic evaluation (metrics/periodic.py)
        if t.get("eval_every") and self.is_main:
            from ..metrics.periodic import PeriodicEvaluator

            self.evaluator = PeriodicEvaluator(cfg, self.device, self.method)

    def _lr_lambda(self, step: int, group: str | None = None) -> float:
        """The LR multiplier at ``step`` for optimizer ``group``: the ``train:`` section's schedule,
        or what ``train.optimizers.<group>`` sets of it (``lr_policy``, ``lr_step``, ...)."""
        t = self.cfg["train"]
        own = (t.get("optimizers") or {}).get(group, {}) if group else {}
        s = {k: own.get(k, t[k]) for k in SCHEDULE_KEYS}
        kw = {"step": step, "lr_step": s["lr_step"], "lr_gamma": s["lr_gamma"], "lr_decay_rate": s["lr_decay_rate"]}
        if t["steps"] is not None:
            return lr_multiplier(s["lr_policy"], step, t["steps"], t["steps_decay"], **kw)
        return lr_multiplier(s["lr_policy"], step // self.steps_per_epoch, t["epochs"], t["epochs_decay"], **kw)

    def _sample_batch(self) -> dict:
        k = min(self.cfg["data"]["num_samples"], len(self.sample_set))
        items = [self.sample_set[i] for i in range(k)]
        return self._to_device(torch.utils.data.default_collate(items))

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                for k, v in batch.items()}

    def _epoch_indices(self, epoch: int) -> list[int]:
        """This rank's sample order for ``epoch``: a permutation drawn from (seed, epoch)."""
        rng = np.random.default_rng([self.cfg["train"]["seed"], epoch, 7919])
        perm = rng.permutation(len(self.train_set))[: self.epoch_len]
        per_rank = self.steps_per_epoch * self.cfg["data"]["batch_size"]
        return perm[self.dist.rank::self.dist.world_size][:per_rank].tolist()

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        self.train_set.set_epoch(epoch)
        idx = self._epoch_indices(epoch)[skip_batches * self.cfg["data"]["batch_size"]:]
        nw = self.cfg["data"]["num_workers"]
        return DataLoader(self.train_set, batch_size=self.cfg["data"]["batch_size"], sampler=idx,
                          num_workers=nw, drop_last=True, persistent_workers=False,
                          pin_memory=self.device.type == "cuda",
                          generator=seeded_generator(epoch))

    # ---- checkpoints -------------------------------------------------------------------
    @property
    def ckpt_root(self) -> Path:
        return self.run.checkpoints_dir

    def save_checkpoint(self) -> Path:
        """Every rank calls it at the same step. Rank 0 makes ``.step_N.tmp-*`` and writes the
        weights and the shared state into it, each rank its own ``rank_R.pt``; rank 0 renames the
        folder to ``step_N`` and moves ``latest`` only when every rank reports its file written.
        A kill before that leaves a temporary folder that is never the latest (removed on resume)."""
        final = self.run.checkpoint_dir(self.step)
        error, tmp = None, None
        if self.is_main:
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = make_temp_dir(final.parent, f".{final.name}.tmp-")
            except OSError as e:
                error = e
        tmp = distributed.broadcast_object(str(tmp) if tmp else None, self.dist)
        if tmp is None:
            error = error or CheckpointError(f"rank 0 could not create a folder for {final} (see its message)")
        else:
            tmp = Path(tmp)
            try:
                if self.is_main:
                    write_model_files(tmp, self.method, "all")
                    save_training_state(tmp, {
                        "step": self.step,
                        "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                        "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                        "world_size": self.dist.world_size,
                    })
                save_rank_state(tmp, self.dist.rank, self._rank_state())
            except Exception as e:  # disk full, ...: no rank may commit a checkpoint without it
                error = e
        failed = distributed.failed_ranks(error is None, self.dist, self.device)
        if failed:
            if self.is_main and tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if error is not None:
                raise error
            raise CheckpointError(f"checkpoint {final} not written: rank {', '.join(map(str, failed))} "
                                  "could not write its state (see its message)")
        if self.is_main:
            replace_dir(tmp, final)
            self.run.set_latest(final)
            self.run.prune(self.cfg["train"]["keep_checkpoints"])
        self._saved_step = self.step
        return final

    def _rank_state(self) -> dict:
        """What this process has of its own: RNG streams and the method's extra state (image
        pools). The data position is the step: each rank's slice of the epoch follows from it."""
        return {"rank": self.dist.rank, "world_size": self.dist.world_size, "step": self.step,
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                "method_extra": self.method.training_extra_state()}

    def latest_checkpoint(self) -> Path | None:
        return self.run.latest()

    def load_checkpoint(self, path: Path) -> None:
        from safetensors.torch import load_file

        meta = json.loads((path / "config.json").read_text())
        state = load_training_state(path)
        saved_world = state.get("world_size", 1)
        if "rng" in state and not rank_state_file(path, 0).exists():
            own = state  # written before rank_R.pt existed: rank 0's state is in training_state.pt
        else:
            # another number of processes: rank R takes the streams and pools of rank R mod N
            own = load_rank_state(path, self.dist.rank % saved_world, saved_world)
            if own.get("step") != state["step"]:
                raise CheckpointError(f"{path}: {rank_state_file(path, self.dist.rank % saved_world).name} "
                                      f"is of step {own.get('step')}, the checkpoint of step {state['step']}")
        if saved_world != self.dist.world_size and self.is_main:
            print(f"note: resuming a {saved_world}-process run with {self.dist.world_size} processes: "
                  f"the data order will differ and rank R takes the RNG streams and image pools of "
                  f"rank R mod {saved_world} (not an exact resume)")
        load_module_state(self.method, load_file(str(path / "model.safetensors")),
                          meta["modules"], path)
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        torch.set_rng_state(own["rng"]["torch"])
        random.setstate(own["rng"]["python"])
        if own["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(own["rng"]["cuda"])
        self.method.load_training_extra_state(own["method_extra"])
        self.step = state["step"]
        self._saved_step = self.step

    # ---- run folder --------------------------------------------------------------------
    def _prepare_run_dir(self) -> Path | None:
        """Returns the checkpoint to resume from, if any. A run resumed before its first
        checkpoint starts again from step 0 (with the config it was given)."""
        ckpt = None
        run = self.run
        if self.resume:
            # rank 0 cleans up; the others wait for it (it may put a checkpoint back into place)
            gone = distributed.broadcast_object(run.remove_incomplete() if self.is_main else None, self.dist)
            if gone and self.is_main:
                print(f"note: removed what a kill left half-written in {run.checkpoints_dir}: {', '.join(gone)}")
            ckpt = run.latest()
            if ckpt is None and self.is_main:
                print(f"note: {self.run_dir} has no checkpoint yet; starting it from step 0")
            before = [s["train_samples"] for s in run.sessions() if "train_samples" in s]
            if before and before[-1] != self.epoch_len:
                raise DataError(
                    f"{self.cfg['data']['root']}: {self.epoch_len} training samples, but the run in "
                    f"{self.run_dir} trained on {before[-1]}; the data order would differ: start a new run "
                    "(--out) to train on other data")
        elif run.has_training_state():
            raise ConfigError(
                f"{self.run_dir} already holds a training run; resume it with --resume "
                "or choose another --out")
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run.config_file, dump(self.cfg))
            info = {"styleforge_version": __version__, "git_revision": git_revision(),
                    "seed": self.cfg["train"]["seed"], "command": sys.argv,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": str(self.device),
                    "world_size": self.dist.world_size, "torch": torch.__version__,
                    "python": platform.python_version(), "resumed_from": str(ckpt) if ckpt else None,
                    "data": self.cfg["data"]["root"], "train_samples": self.epoch_len}
            if distributed.run_id():
                info.update(torchrun_run_id=distributed.run_id(), torchrun_restart=distributed.restart_count())
            run.add_session(info)
            if self.resume:
                self._trim_log(int(ckpt.name.removeprefix("step_")) if ckpt else 0)
        return ckpt

    def _trim_log(self, step: int) -> None:
        """Drop log records written after the checkpoint a run resumes from (a killed run logs
        steps it will train again), so that log.jsonl holds each step once."""
        f = self.run.log_file
        if not f.is_file():
            return
        lines = f.read_text().splitlines()
        keep = [ln for ln in lines if _log_step(ln) <= step]
        if len(keep) != len(lines):
            atomic_write_text(f, "".join(ln + "\n" for ln in keep))

    def _write_samples(self, logger: RunLogger | None) -> None:
        self.method.eval()
        vis = self.method.visuals(self.fixed_batch)
        self.method.train()
        grid = make_grid(list(vis.values()))
        save_image_atomic(chw_to_pil(grid), self.run.sample_file(self.step))
        if logger:
            logger.image("samples", self.step, grid)

    def _evaluate(self, logger: RunLogger | None, epoch: int) -> None:
        """Score the held-out subset; log the value; keep ``checkpoints/best`` (an inference
        snapshot plus ``eval.json``), replaced atomically when the value improves."""
        ev = self.evaluator
        value = ev(self.method)
        if logger:
            logger.scalars(self.step, {ev.name: value}, epoch=epoch)
        if not ev.improved(value):
            return
        ev.best, ev.best_step = value, self.step
        with temp_dir_into(self.run.best_dir) as tmp:
            write_model_files(tmp, self.method, "inference")
            (tmp / "eval.json").write_text(json.dumps(
                {"metric": ev.metric, "value": value, "step": self.step,
                 "images": len(ev.jobs)}, indent=2) + "\n")

    # ---- the loop ----------------------------------------------------------------------
    def _handle_signal(self, signum, frame):
        self.stop_signal = signum

    def fit(self, stop_at: int | None = None) -> Path:
        """Train to the end (or to step ``stop_at``); returns the model directory written. Under
        torchrun, another process's death ends it with ``distributed.PeerLost`` (one line)."""
        # _fit's signal handlers stay until the error is worded: torchrun sends SIGTERM to the
        # survivors of a dead rank, and the default handler would end this one before its line.
        self._old_handlers = {}
        try:
            with distributed.peers_guard(self.dist):
                return self._fit(stop_at)
        finally:
            for s, h in self._old_handlers.items():
                signal.signal(s, h)

    def _fit(self, stop_at: int | None) -> Path:
        self._build()
        ckpt = self._prepare_run_dir()
        if ckpt is not None:
            self.load_checkpoint(ckpt)
        if self.evaluator is not None:
            self.evaluator.load_best(self.run.best_dir)
        t = self.cfg["train"]
        logger = RunLogger(self.run_dir, t["tensorboard"]) if self.is_main else None
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        if _in_main_thread():
            self._old_handlers = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = None
        if self.is_main and t["progress"]:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                       file=sys.stdout, desc=self.cfg["method"])
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16) if t["amp"] else nullcontext()
        running: dict[str, float] = {}
        self.method.train()
        finished = False
        try:
            while self.step < end:
                epoch, pos = divmod(self.step, self.steps_per_epoch)
                for batch in self._loader(epoch, pos):
                    logs = self._train_step(self._to_device(batch), amp)
                    self.step += 1
                    for s in self.schedulers.values():
                        s.step()
                    for k, v in logs.items():
                        running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()}, refresh=False)
                    if logger and (self.step % max(1, t["log_every"]) == 0 or self.step == end):
                        lrs = {f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()}
                        logger.scalars(self.step, {**logs, **lrs}, epoch=epoch)
                    if self.is_main and t["sample_every"] and self.step % t["sample_every"] == 0:
                        self._write_samples(logger)
                    if self.evaluator is not None and self.step % t["eval_every"] == 0:
                        self._evaluate(logger, epoch)
                    if t["checkpoint_every"] and self.step % t["checkpoint_every"] == 0:
                        self.save_checkpoint()
                    # a signal may reach some ranks a step before others: all stop at the step
                    # where the first saw one, and save together
                    stop = distributed.max_over_ranks(self.stop_signal or 0, self.dist, self.device)
                    if stop:
                        ck = self.save_checkpoint() if self._saved_step != self.step else \
                            self.run.checkpoint_dir(self.step)
                        raise Interrupted(stop, self.step, ck)
                    if self.step >= end:
                        break
            if self._saved_step != self.step:
                self.save_checkpoint()
            if self.is_main and self.step >= self.total_steps:
                self._write_samples(logger)
                # names, not paths: a card is meant to be shared (the run's config.yaml has the rest)
                save_model(self.run.model_dir, self.method, card={
                    "how": f"trained with 'styleforge train' for {self.step} steps on the data folder "
                           f"'{Path(str(self.cfg['data']['root'])).name}' (run folder '{self.run.root.name}', "
                           "whose config.yaml has every setting)"})
            finished = True
        finally:
            if bar is not None:
                bar.close()
            if logger:
                logger.close()
            skipped = getattr(self.train_set, "skipped", [])
            if skipped and self.is_main:
                print(f"skipped {len(skipped)} unreadable file(s) in {self.cfg['data']['root']}")
            distributed.teardown(self.dist, wait=finished)  # no barrier after an error: a rank may be gone
        return self.run.model_dir

    def _train_step(self, batch: dict, amp) -> dict[str, float]:
        with amp:
            return run_phases(self.method, self.optimizers, batch, self.dist, self.step + 1,
                              self.latest_checkpoint, self.ema)


def run_phases(method, optimizers: dict, batch: dict, dist_info=None, step: int = 0,
               last_checkpoint=lambda: None, ema: ModuleEMA | None = None) -> dict[str, float]:
    """One training step: back-propagate each phase, step its optimizer when the phase says so.

    Returns the logged values. The loss values are read back once, at the end of the step (a
    read-back per phase would make a GPU wait for the CPU at every phase). A non-finite loss then
    raises ``TrainingError`` naming it; the weights in memory are spoilt but no checkpoint is
    written from them, so the last checkpoint on disk is the last good one."""
    names: list[str] = []
    values: list[torch.Tensor] = []
    extra: dict[str, float] = {}
    for phase in method.training_step(batch):
        sum(phase.losses.values()).backward()
        names += phase.losses
        values += [v.detach().float().reshape(()) for v in phase.losses.values()]
        extra.update(phase.extra)
        if phase.step:
            opt = optimizers[phase.optimizer]
            if dist_info is not None and dist_info.enabled:
                distributed.average_gradients(
                    [p for g in opt.param_groups for p in g["params"]], dist_info.world_size)
            opt.step()
            opt.zero_grad(set_to_none=True)
            method.after_step(phase.optimizer)
            if ema is not None:
                ema.after_step(phase.optimizer)
    read = torch.stack(values).tolist() if values else []
    logs = dict(zip(names, read))
    bad = [k for k, v in logs.items() if not math.isfinite(v)]
    if bad:
        raise TrainingError(
            f"loss {', '.join(bad)} became {logs[bad[0]]} at step {step}; stopped. "
            f"The last good checkpoint is {last_checkpoint()}; try a lower train.lr")
    logs.update(extra)
    return logs


def _log_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a line cut by a crash: dropped


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def steps_summary(cfg: dict) -> str:
    t = cfg["train"]
    if t["steps"] is not None:
        return f"{t['steps']} + {t['steps_decay']} decay steps"
    return f"{t['epochs']} + {t['epochs_decay']} decay epochs"


__all__ = ["Trainer", "Interrupted", "seed_everything", "steps_summary"]
