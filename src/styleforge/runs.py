"""The run folder: one object that knows where a training run keeps each thing.

::

    config.yaml        the resolved config the run trains with (``train --resume`` reads it)
    run.json           {"sessions": [...]}: version, git revision, seed, command, device per start
    log.jsonl          every logged value, one JSON record per line
    tb/                TensorBoard events (train.tensorboard)
    samples/step_XXXXXXXX.png
    checkpoints/step_XXXXXXXX/{config.json, model.safetensors, training_state.pt, rank_R.pt}
    checkpoints/latest   the name of the newest complete checkpoint
    checkpoints/.step_XXXXXXXX.tmp-*   a checkpoint being written (a kill leaves it: resume removes it)
    checkpoints/best/    inference snapshot + eval.json, kept by periodic evaluation
    model/             the inference snapshot written when the run finishes

The trainer writes it; ``report``, ``demo`` and few-shot stage 2 read it. Nothing here trains.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .checkpoint import CONFIG_FILE
from .errors import CheckpointError
from .utils.atomic import atomic_write_text

CHECKPOINT_PREFIX = "step_"


class RunFolder:
    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    # ---- paths ---------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def info_file(self) -> Path:
        return self.root / "run.json"

    @property
    def log_file(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def tb_dir(self) -> Path:
        return self.root / "tb"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def best_dir(self) -> Path:
        return self.checkpoints_dir / "best"

    @property
    def latest_pointer(self) -> Path:
        return self.checkpoints_dir / "latest"

    @staticmethod
    def checkpoint_name(step: int) -> str:
        return f"{CHECKPOINT_PREFIX}{step:08d}"

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / self.checkpoint_name(step)

    def sample_file(self, step: int) -> Path:
        return self.samples_dir / f"{self.checkpoint_name(step)}.png"

    # ---- what the folder holds -------------------------------------------------------------
    def is_run(self) -> bool:
        """A training run started here (its config was written), with or without checkpoints."""
        return self.config_file.is_file()

    def has_training_state(self) -> bool:
        return self.checkpoints_dir.exists()

    def latest(self) -> Path | None:
        """The newest complete training checkpoint, or None before the first one."""
        if not self.latest_pointer.is_file():
            return None
        path = self.checkpoints_dir / self.latest_pointer.read_text().strip()
        if not path.is_dir():
            raise CheckpointError(f"{self.latest_pointer} names {path.name}, which does not exist")
        return path

    def set_latest(self, checkpoint: Path) -> None:
        atomic_write_text(self.latest_pointer, Path(checkpoint).name + "\n")

    def checkpoints(self) -> list[Path]:
        """The step checkpoints on disk, oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(p for p in self.checkpoints_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())

    def prune(self, keep: int) -> None:
        """Delete all but the ``keep`` newest step checkpoints (0: keep all)."""
        for p in self.checkpoints()[:-keep] if keep else []:
            shutil.rmtree(p, ignore_errors=True)

    def remove_incomplete(self) -> list[str]:
        """Remove what a kill during a write leaves in ``checkpoints/``: ``.step_N.tmp-*`` and
        ``.best.tmp-*`` folders (never committed, so never the latest), ``.step_N.old-*`` of a
        checkpoint being replaced (put back when the kill fell between the two renames of
        ``utils.atomic.replace_dir``, else removed) and ``.latest.*.tmp`` files. Returns the names
        removed. Only for a run no process is writing to (the trainer calls it on resume)."""
        if not self.checkpoints_dir.is_dir():
            return []
        removed = []
        for p in sorted(self.checkpoints_dir.glob(".*")):
            name, sep, kind = p.name[1:].rpartition(".")
            if p.is_dir() and sep and (name.startswith(CHECKPOINT_PREFIX) or name == self.best_dir.name):
                final = self.checkpoints_dir / name
                if kind.startswith("old-") and not final.exists():
                    os.replace(p, final)
                    continue
                if kind.startswith(("tmp-", "old-")):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
            elif p.is_file() and p.name.startswith(f".{self.latest_pointer.name}.") and kind == "tmp":
                p.unlink(missing_ok=True)
                removed.append(p.name)
        return removed

    def inference_model(self) -> Path:
        """The model to translate with: ``model/``, else ``checkpoints/best``, else the latest
        checkpoint (a run still training); a model directory given directly is itself."""
        for cand in (self.model_dir, self.best_dir):
            if (cand / CONFIG_FILE).is_file():
                return cand
        latest = self.latest() if self.latest_pointer.is_file() else None
        if latest is not None and (latest / CONFIG_FILE).is_file():
            return latest
        if (self.root / CONFIG_FILE).is_file():
            return self.root
        raise CheckpointError(f"{self.root} is not a styleforge run folder: no model/, checkpoints/best or "
                              "checkpoints/latest with a model")

    def training_model(self) -> Path | None:
        """The latest checkpoint when this is a run folder holding one (it keeps every trained
        network, discriminators included); None otherwise."""
        if not self.root.is_dir() or (self.root / CONFIG_FILE).exists():
            return None
        try:
            latest = self.latest()
        except CheckpointError:
            return None
        return latest if latest is not None and (latest / CONFIG_FILE).is_file() else None

    # ---- run.json --------------------------------------------------------------------------
    def sessions(self) -> list[dict]:
        try:
            return json.loads(self.info_file.read_text()).get("sessions", [])
        except (OSError, json.JSONDecodeError, AttributeError):
            return []

    def add_session(self, info: dict) -> None:
        """Append ``info`` to run.json; its ``command`` names the program, not the path it ran
        from (a run folder is shared: it keeps no path of the machine that ran it)."""
        cmd = info.get("command")
        if isinstance(cmd, (list, tuple)) and cmd:
            info = {**info, "command": [Path(str(cmd[0])).name, *cmd[1:]]}
        atomic_write_text(self.info_file, json.dumps({"sessions": self.sessions() + [info]}, indent=2))
