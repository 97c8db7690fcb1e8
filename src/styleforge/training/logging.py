"""Where training values go: a JSONL file (every logged value), TensorBoard, the console."""
from __future__ import annotations

import json
import math
from pathlib import Path


class RunLogger:
    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "log.jsonl"
        self.file = open(self.path, "a", buffering=1)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency; a broken install only warns
                print("warning: tensorboard is not importable; logging to log.jsonl only")
            else:
                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def scalars(self, step: int, values: dict, **extra) -> None:
        rec = {"step": step, **extra, **{k: float(v) for k, v in values.items()}}
        self.file.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if math.isfinite(float(v)):
                    self.tb.add_scalar(k, float(v), step)

    def image(self, tag: str, step: int, chw) -> None:
        if self.tb is not None:
            self.tb.add_image(tag, chw, step)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def read_log(run_dir) -> list[dict]:
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash
            continue
    return out
