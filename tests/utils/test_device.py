"""utils/device.py: the device and the torchrun rank of this process, decided in one place
(pipeline.load and Pipeline, Trainer, batch shards and distributed setup ask there)."""
import re
from pathlib import Path

import pytest
import torch

from styleforge.errors import ConfigError
from styleforge.utils.device import Rank, process_device, torchrun_rank

PKG = Path(__file__).resolve().parents[2] / "src" / "styleforge"


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("STYLEFORGE_DEVICE", raising=False)


def _torchrun(monkeypatch, rank, world, local):
    for k, v in (("RANK", rank), ("WORLD_SIZE", world), ("LOCAL_RANK", local)):
        monkeypatch.setenv(k, str(v))


def test_under_torchrun_each_process_takes_the_gpu_of_its_local_rank(monkeypatch, two_gpus):
    _torchrun(monkeypatch, 3, 4, 3)  # 2 machines × 2 processes; this one is the 2nd on its machine
    assert torchrun_rank() == Rank(3, 4, 3) and torchrun_rank().distributed
    assert process_device("auto") == process_device(None) == process_device("cuda") == torch.device("cuda", 1)
    assert process_device("cuda:0") == torch.device("cuda", 0)  # an explicit GPU is kept
    assert process_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("STYLEFORGE_DEVICE", "cuda")
    assert process_device("auto") == torch.device("cuda", 1)


def test_one_process_alone_is_rank_0_of_1_and_keeps_the_device_it_is_given(monkeypatch, two_gpus):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert torchrun_rank() == Rank() and not torchrun_rank().distributed
    assert process_device("auto") == torch.device("cuda") and process_device("cuda:1") == torch.device("cuda", 1)
    _torchrun(monkeypatch, 0, 1, 0)
    assert torchrun_rank() == Rank()


def test_a_torchrun_variable_that_is_not_a_number_is_a_one_line_error(monkeypatch):
    _torchrun(monkeypatch, 0, 2, "first")
    with pytest.raises(ConfigError, match="LOCAL_RANK='first': expected an integer"):
        torchrun_rank()


def test_only_utils_device_reads_the_torchrun_environment_or_sets_the_gpu():
    """The rank -> GPU rule in one place: no other file reads RANK, WORLD_SIZE or LOCAL_RANK, and
    only the trainer (for NCCL) makes the device it was given the current one."""
    env = re.compile(r"""["'](RANK|WORLD_SIZE|LOCAL_RANK)["']""")
    bad = [f"{f.relative_to(PKG)} reads {m.group(1)}" for f in sorted(PKG.rglob("*.py"))
           if f.relative_to(PKG).as_posix() != "utils/device.py" for m in env.finditer(f.read_text())]
    bad += [f"{f.relative_to(PKG)} calls cuda.set_device" for f in sorted(PKG.rglob("*.py"))
            if "cuda.set_device" in f.read_text() and f.relative_to(PKG).as_posix() != "training/trainer.py"]
    assert not bad, bad
