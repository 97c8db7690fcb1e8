"""runs.RunFolder: the run layout the trainer writes and report, demo and few-shot stage 2 read."""
import pytest

from styleforge.errors import CheckpointError
from styleforge.runs import RunFolder


def fake_model(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_paths_and_latest_pointer(tmp_path):
    run = RunFolder(tmp_path / "r")
    assert run.checkpoint_dir(120) == tmp_path / "r" / "checkpoints" / "step_00000120"
    assert run.sample_file(7) == tmp_path / "r" / "samples" / "step_00000007.png"
    assert run.latest() is None and not run.is_run() and run.checkpoints() == []
    for step in (5, 10, 15):
        fake_model(run.checkpoint_dir(step))
        run.set_latest(run.checkpoint_dir(step))
    assert run.latest_pointer.read_text() == "step_00000015\n"
    assert run.latest() == run.checkpoint_dir(15)
    run.prune(2)
    assert run.checkpoints() == [run.checkpoint_dir(10), run.checkpoint_dir(15)]
    run.prune(0)  # 0 keeps all
    assert len(run.checkpoints()) == 2
    run.latest_pointer.write_text("step_00000099\n")
    with pytest.raises(CheckpointError, match="names step_00000099, which does not exist"):
        run.latest()


def test_inference_model_prefers_model_then_best_then_latest(tmp_path):
    run = RunFolder(tmp_path / "r")
    with pytest.raises(CheckpointError, match="is not a styleforge run folder"):
        run.inference_model()
    fake_model(run.checkpoint_dir(3))
    run.set_latest(run.checkpoint_dir(3))
    assert run.inference_model() == run.checkpoint_dir(3)
    assert run.training_model() == run.checkpoint_dir(3)
    fake_model(run.best_dir)
    assert run.inference_model() == run.best_dir
    fake_model(run.model_dir)
    assert run.inference_model() == run.model_dir
    assert run.training_model() == run.checkpoint_dir(3)  # stage 2 wants the discriminators too
    # a model directory given directly is its own model and not a run
    md = fake_model(tmp_path / "md")
    assert RunFolder(md).inference_model() == md and RunFolder(md).training_model() is None


def test_sessions_append_and_survive_a_broken_file(tmp_path):
    run = RunFolder(tmp_path)
    run.add_session({"seed": 1})
    run.add_session({"seed": 2})
    assert [s["seed"] for s in run.sessions()] == [1, 2]
    run.info_file.write_text("{cut")
    assert run.sessions() == []


def test_run_json_names_the_program_not_the_path_it_ran_from(tmp_path):
    run = RunFolder(tmp_path)
    run.add_session({"command": ["/home/someone/venv/bin/styleforge", "train", "tiny/cyclegan"]})
    assert run.sessions()[0]["command"] == ["styleforge", "train", "tiny/cyclegan"]
    assert "/home/someone" not in run.info_file.read_text()


def test_remove_incomplete_clears_what_a_kill_during_a_checkpoint_write_left(tmp_path):
    run = RunFolder(tmp_path)
    for step in (2, 4, 8):
        fake_model(run.checkpoint_dir(step))
    run.set_latest(run.checkpoint_dir(8))
    fake_model(run.best_dir)
    ck = run.checkpoints_dir
    fake_model(ck / ".step_00000010.tmp-k3j9x_a")    # killed while writing step 10
    fake_model(ck / ".best.tmp-0qz1")                 # ... while keeping a better model
    fake_model(ck / ".step_00000004.old-4242")        # ... after replacing step 4: its old copy
    fake_model(ck / ".step_00000006.old-4243")        # ... between replace_dir's two renames
    (ck / ".latest.x81k2.tmp").write_text("step_000")  # ... while moving the pointer
    assert sorted(run.remove_incomplete()) == [".best.tmp-0qz1", ".latest.x81k2.tmp",
                                               ".step_00000004.old-4242", ".step_00000010.tmp-k3j9x_a"]
    assert sorted(p.name for p in ck.iterdir()) == ["best", "latest", "step_00000002", "step_00000004",
                                                   "step_00000006", "step_00000008"]
    assert run.latest() == run.checkpoint_dir(8) and run.remove_incomplete() == []
    run.prune(2)  # the step folder put back is a checkpoint like the others
    assert run.checkpoints() == [run.checkpoint_dir(6), run.checkpoint_dir(8)]
