"""``styleforge train --resume RUN`` with --data / --out / --device, and a run stopped before its
first checkpoint; ``train --dry-run``'s trainable and frozen counts (cli.cmd_train + the trainer)."""
import json
import shutil

import pytest
import torch

from styleforge import cli
from styleforge.training.logging import read_log

COMMON = ["--preset", "tiny/cyclegan", "train.steps=2", "train.steps_decay=0", "train.checkpoint_every=1",
          "train.sample_every=0", "data.max_size=2"]


def train(*argv):
    return cli.main(["train", *argv])


@pytest.fixture
def run(h2z, tmp_path):
    """A finished 2-step tiny CycleGAN run (checkpoints at steps 1 and 2)."""
    out = tmp_path / "run"
    assert train(*COMMON, "--data", str(h2z), "--out", str(out)) == 0
    return out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_resume_refuses_another_out_preset_or_config_in_one_line(run, tmp_path, capsys):
    capsys.readouterr()
    assert train("--resume", str(run), "--out", str(tmp_path / "other")) == 2
    assert f"the run continues in {run}" in one_line_error(capsys)
    assert train("--resume", str(run), "--preset", "tiny/pix2pix") == 2
    assert "--preset cannot be used with --resume" in one_line_error(capsys)
    # --out naming the run itself is what --resume means anyway
    assert train("--resume", str(run), "--out", str(run), "train.steps=3") == 0
    assert [r["step"] for r in read_log(run)] == [1, 2, 3]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_resume_applies_device_so_cuda_without_a_gpu_is_an_error(run, capsys):
    capsys.readouterr()
    assert train("--resume", str(run), "--device", "cuda", "train.steps=3") == 2
    assert "no CUDA GPU is available" in one_line_error(capsys)
    assert train("--resume", str(run), "--device", "cpu", "train.steps=3") == 0
    assert json.loads((run / "run.json").read_text())["sessions"][-1]["device"] == "cpu"


def test_resume_takes_the_same_data_at_another_path_and_refuses_other_data(run, h2z, facades, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(h2z, moved)
    assert train("--resume", str(run), "--data", str(moved), "train.steps=3") == 0
    assert json.loads((run / "run.json").read_text())["sessions"][-1]["data"] == str(moved)
    assert [r["step"] for r in read_log(run)] == [1, 2, 3]
    capsys.readouterr()
    # another layout (paired facades for an unpaired run) and another sample count are refused
    assert train("--resume", str(run), "--data", str(facades), "train.steps=4") == 2
    one_line_error(capsys)
    fewer = tmp_path / "fewer"
    shutil.copytree(h2z, fewer)
    for side in ("trainA", "trainB"):
        for f in sorted((fewer / side).iterdir())[:-1]:
            f.unlink()
    assert train("--resume", str(run), "--data", str(fewer), "train.steps=4") == 2
    assert "1 training samples, but the run" in one_line_error(capsys)
    assert train("--resume", str(run), "--data", str(tmp_path / "nowhere")) == 2
    assert "no such folder" in one_line_error(capsys)


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it_from_step_0(h2z, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert train(*COMMON, "--data", str(h2z), "--out", str(full)) == 0
    # killed during step 2 with checkpoints every 5 steps: config and a log line, no checkpoint
    assert train(*COMMON, "train.checkpoint_every=5", "--data", str(h2z), "--out", str(part)) == 0
    shutil.rmtree(part / "checkpoints")
    shutil.rmtree(part / "model")
    with open(part / "log.jsonl", "a") as f:
        f.write('{"step": 3, "G_A": 1.0}\n{"step": 4, "G_A"')  # and a line cut by the kill
    assert train("--resume", str(part)) == 0
    keys = ("G_A", "D_A", "cycle_B")
    assert [[r[k] for k in keys] for r in read_log(part)] == [[r[k] for k in keys] for r in read_log(full)]
    assert (part / "model" / "model.safetensors").is_file()
    assert len(json.loads((part / "run.json").read_text())["sessions"]) == 2


def test_resume_removes_the_half_written_checkpoint_a_kill_left(run, capsys):
    """A kill during a checkpoint write leaves ``.step_N.tmp-*``; resume removes it (pruning,
    which counts committed checkpoints only, never did) and trains on from the latest."""
    ck = run / "checkpoints"
    half = ck / ".step_00000003.tmp-w1x2y3z4"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 100)
    capsys.readouterr()
    assert train("--resume", str(run), "train.steps=4") == 0
    assert "removed what a kill left half-written" in capsys.readouterr().out
    assert not half.exists() and not [p for p in ck.iterdir() if p.name.startswith(".")]
    assert (ck / "latest").read_text().strip() == "step_00000004"
    assert [r["step"] for r in read_log(run)] == [1, 2, 3, 4]


def test_a_missing_rank_state_is_a_one_line_error_naming_the_file(run, capsys):
    (run / "checkpoints" / "step_00000002" / "rank_0.pt").unlink()
    capsys.readouterr()
    assert train("--resume", str(run), "train.steps=4") == 2
    err = one_line_error(capsys)
    assert "step_00000002 is incomplete: no rank_0.pt" in err, err


def test_torchrun_restarted_workers_resume_the_run_their_job_started_and_no_other(h2z, tmp_path, monkeypatch,
                                                                                 capsys):
    """torchrun restarts workers with the same command and TORCHELASTIC_RESTART_COUNT > 0: they
    resume (exactly) the run their job's first attempt started, not a run of another job."""
    argv = [*COMMON, "train.steps=4", "--data", str(h2z)]
    assert train(*argv, "--out", str(tmp_path / "full")) == 0
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job1")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    part = tmp_path / "part"
    assert train(*argv, "--out", str(part)) == 0
    # as if a rank died after step 2: later checkpoints, the model and log records are not there
    for name in ("checkpoints/step_00000003", "checkpoints/step_00000004", "model"):
        shutil.rmtree(part / name)
    (part / "checkpoints" / "latest").write_text("step_00000002\n")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    capsys.readouterr()
    assert train(*argv, "--out", str(part)) == 0
    assert "torchrun restarted the workers (restart 1)" in capsys.readouterr().out
    keys = ("G_A", "D_A", "cycle_B")
    assert [[r[k] for k in keys] for r in read_log(part)] == [[r[k] for k in keys] for r in read_log(tmp_path / "full")]
    sessions = json.loads((part / "run.json").read_text())["sessions"]
    assert [(s["torchrun_run_id"], s["torchrun_restart"]) for s in sessions] == [("job1", 0), ("job1", 1)]
    # another job (another torchrun command) never takes the run over
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job2")
    assert train(*argv, "--out", str(part)) == 2
    assert "already holds a training run; resume it with --resume" in one_line_error(capsys)


def test_dry_run_prints_trainable_and_frozen_counts_apart(toy_method, tmp_path, capsys):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("method: toy_frozen_ema\nmodel: {width: 4}\n")
    assert train("--config", str(cfg), "--dry-run") == 0
    out = capsys.readouterr().out
    m = toy_method(width=4)
    n = {k: sum(p.numel() for p in getattr(m, k).parameters()) for k in ("enc", "G", "G_ema", "D")}
    assert f"#   enc: {n['enc']:,} (frozen)" in out and f"#   G_ema: {n['G_ema']:,} (averaged)" in out
    assert f"#   G: {n['G']:,}\n" in out
    assert f"#   trainable: {n['G'] + n['D']:,}; frozen: {n['enc']:,}; EMA copies: {n['G_ema']:,}" in out


def test_train_refuses_a_method_with_nothing_to_train_in_one_line(toy_method, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(toy_method, "not_trainable", "optimises the image; use styleforge stylize")
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("method: toy_frozen_ema\n")
    assert train("--config", str(cfg), "--dry-run") == 2
    assert one_line_error(capsys) == "error: toy_frozen_ema optimises the image; use styleforge stylize"
    assert train("--config", str(cfg), "--data", str(tmp_path), "--out", str(tmp_path / "run")) == 2
    assert one_line_error(capsys) == "error: toy_frozen_ema optimises the image; use styleforge stylize"
    assert not (tmp_path / "run").exists()
