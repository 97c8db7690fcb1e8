"""Two gloo processes under torchrun on CPU: a resumed run and a run whose workers torchrun
restarted after a SIGKILL reproduce an uninterrupted run's losses step for step, every rank's
state is in the checkpoint, and a peer's death is one line naming its rank
(training/distributed.py and the trainer's checkpoints)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from styleforge.training import distributed
from styleforge.training.logging import read_log

# image pools of 2 fill after 2 steps: from then on each rank's pools (different images on each
# rank) and their draws decide what its discriminators see. 8 samples over 2 ranks: 4 steps an epoch.
CONFIG = ["--preset", "tiny/cyclegan", "train.steps=12", "train.steps_decay=0", "model.pool_size=2",
          "data.max_size=8", "train.checkpoint_every=2", "train.keep_checkpoints=0", "train.sample_every=0"]
KEYS = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B")


def torchrun(*args, max_restarts=0):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            f"--max-restarts={max_restarts}", "-m", "styleforge", "train", *args]


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(distributed.__file__).parents[2])}


def losses(run):
    return [(r["step"], [r[k] for k in KEYS]) for r in read_log(run)]


def first_difference(run, ref):
    """The first step whose losses differ from the reference run's (None: none)."""
    a, b = losses(run), losses(ref)
    return next((s for (s, x), (_, y) in zip(a, b) if x != y), None if len(a) == len(b) else "length")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-process run of 12 steps, a checkpoint every 2 kept."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no gloo backend: torchrun cannot start 2 CPU processes")
    h2z = Path(__file__).resolve().parents[2] / "data" / "horse2zebra"
    out = tmp_path_factory.mktemp("ddp") / "reference"
    r = subprocess.run(torchrun(*CONFIG, "--data", str(h2z), "--out", str(out)),
                       capture_output=True, text=True, env=env(), timeout=300)
    if r.returncode != 0 and "Address already in use" in r.stderr + r.stdout:
        pytest.skip("torchrun could not start: no free port on this machine")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [s for s, _ in losses(out)] == list(range(1, 13))
    return h2z, out


def test_every_rank_writes_its_own_state_into_the_checkpoint(reference):
    _, ref = reference
    ck = ref / "checkpoints" / "step_00000006"
    ranks = [torch.load(ck / f"rank_{r}.pt", weights_only=True) for r in (0, 1)]
    assert [s["rank"] for s in ranks] == [0, 1] and {s["step"] for s in ranks} == {6}
    pools = [s["method_extra"]["pool_fake_A"]["images"] for s in ranks]
    assert len(pools[0]) == len(pools[1]) == 2
    # each rank generated its pool from its own samples
    assert not any(torch.equal(a, b) for a in pools[0] for b in pools[1])
    assert torch.load(ck / "training_state.pt", weights_only=True)["world_size"] == 2


def test_two_process_resume_reproduces_the_uninterrupted_run(reference, tmp_path):
    """The run as a kill after step 6's checkpoint leaves it (later checkpoints, log records and
    the model are what the killed run would not have), resumed with --resume: every loss of
    steps 7..12 on rank 0 equals the uninterrupted run's, bit for bit."""
    h2z, ref = reference
    part = tmp_path / "part"
    shutil.copytree(ref, part)
    shutil.rmtree(part / "model")
    for step in (8, 10, 12):
        shutil.rmtree(part / "checkpoints" / f"step_{step:08d}")
    (part / "checkpoints" / "latest").write_text("step_00000006\n")
    r = subprocess.run(torchrun("--resume", str(part)), capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert first_difference(part, ref) is None and losses(part) == losses(ref)


def _workers(agent: int) -> dict[int, int]:
    """{rank: pid} of the workers torchrun (process ``agent``) runs now."""
    out = {}
    for task in Path(f"/proc/{agent}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            vals = dict(v.decode(errors="replace").split("=", 1) for v in environ if b"=" in v)
            if "RANK" in vals:
                out[int(vals["RANK"])] = int(pid)
    return out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through /proc (Linux)")
def test_sigkill_of_a_rank_under_max_restarts_resumes_exactly_and_names_the_rank(reference, tmp_path):
    """SIGKILL rank 1 once a checkpoint is on disk: rank 0 stops with one line naming rank 1;
    torchrun restarts both workers, which resume the run from its latest checkpoint by
    themselves (no --resume) and finish it with the uninterrupted run's losses."""
    h2z, ref = reference
    run = tmp_path / "run"
    p = subprocess.Popen(torchrun(*CONFIG, "--data", str(h2z), "--out", str(run), max_restarts=1),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        killed = None
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None and killed is None:
            if len(read_log(run)) >= 3 and (run / "checkpoints" / "latest").is_file():
                killed = _workers(p.pid).get(1)
                if killed:
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert killed, f"rank 1 was not killed (torchrun ended with {p.returncode}): {err[-2000:]}"
    assert p.returncode == 0, err[-3000:]
    text = out + err
    assert "internal error" not in text and "already holds a training run" not in text, text[-3000:]
    lines = [ln for ln in text.splitlines() if ln.startswith("error: ") and f"rank 1 (pid {killed})" in ln]
    assert lines, text[-3000:]
    assert "restarted the workers" in text
    sessions = json.loads((run / "run.json").read_text())["sessions"]
    assert [s["torchrun_restart"] for s in sessions] == [0, 1]
    assert sessions[1]["resumed_from"] is not None
    assert first_difference(run, ref) is None and losses(run) == losses(ref)


def test_a_sigterm_while_the_peer_loss_is_worded_does_not_end_the_process_silently(h2z, tmp_path, monkeypatch):
    """torchrun sends SIGTERM to the survivors of a dead rank; it can arrive while the survivor
    is still finding out which rank died (up to seconds). The trainer's handler must still be in
    place then, or the default one ends the process without its line (1 in 3 kills during a
    checkpoint write did)."""
    from styleforge import config as C
    from styleforge.training.trainer import Trainer

    cfg = C.resolve("tiny/cyclegan", overrides=["train.steps=2", "train.checkpoint_every=0"])
    cfg["data"]["root"] = str(h2z)
    trainer = Trainer(cfg, tmp_path / "run")
    seen = {}

    def collective_fails(batch, amp):
        raise RuntimeError("[gloo] Connection reset by peer")

    def lost_peer(info, error):
        seen["handler"] = signal.getsignal(signal.SIGTERM)
        return distributed.PeerLost("rank 1 (pid 1) of the 2 processes stopped")

    monkeypatch.setattr(trainer, "_train_step", collective_fails)
    monkeypatch.setattr(distributed, "lost_peer", lost_peer)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(distributed.PeerLost, match="rank 1"):
        trainer.fit()
    assert seen["handler"] == trainer._handle_signal
    assert signal.getsignal(signal.SIGTERM) == before  # and put back afterwards
