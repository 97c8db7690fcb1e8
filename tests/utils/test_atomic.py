import pytest

from styleforge.utils.atomic import atomic_write_bytes, atomic_write_text, temp_dir_into


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_temp_dir_into_replaces_the_folder_whole(tmp_path):
    final = tmp_path / "sub" / "model"
    with temp_dir_into(final) as tmp:
        assert tmp.parent == final.parent and not final.exists()
        (tmp / "a.txt").write_text("first")
        (tmp / "stale.txt").write_text("x")
    assert _entries(final) == ["a.txt", "stale.txt"]
    with temp_dir_into(final) as tmp:
        (tmp / "a.txt").write_text("second")
        # the old content stays readable until the new folder is complete
        assert (final / "a.txt").read_text() == "first"
    assert _entries(final) == ["a.txt"] and (final / "a.txt").read_text() == "second"
    assert _entries(final.parent) == ["model"]  # no temporary or old folders left behind


def test_temp_dir_into_leaves_the_old_folder_on_error(tmp_path):
    final = tmp_path / "ckpt"
    final.mkdir()
    (final / "w").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with temp_dir_into(final) as tmp:
            (tmp / "w").write_text("half")
            raise RuntimeError("disk full")
    assert (final / "w").read_text() == "old"
    assert _entries(tmp_path) == ["ckpt"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "{}\n")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, 12345)  # not bytes: fails after the temp file exists
    assert path.read_text() == "{}\n"
    assert _entries(tmp_path) == ["metrics.json"]



def _disk_full(*args, **kwargs):
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write to a full disk: no file name


def test_a_full_disk_error_names_the_file_being_written_and_leaves_no_temporary(tmp_path, monkeypatch):
    monkeypatch.setattr("os.fsync", _disk_full)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(tmp_path / "out.png", b"x" * 100)
    assert e.value.filename == str(tmp_path / "out.png") and "No space left" in e.value.strerror
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_saving_a_model_names_the_weights_file_and_keeps_no_half_folder(tmp_path, monkeypatch):
    import torch
    from safetensors import SafetensorError

    from styleforge import checkpoint
    from styleforge import config as C
    from styleforge.registry import build_method

    def full(*args, **kwargs):  # what safetensors raises when its write fails
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    cfg = C.resolve("tiny/johnson")
    torch.manual_seed(0)
    method = build_method(cfg["method"], **cfg["model"])
    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(OSError) as e:
        checkpoint.save_model(tmp_path / "model", method)
    assert e.value.filename.endswith("model.safetensors") and "code: 28" in e.value.strerror
    assert list(tmp_path.iterdir()) == []


def test_the_cli_says_which_output_could_not_be_written_in_one_line(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    import torch

    from styleforge import config as C
    from styleforge.checkpoint import save_model
    from styleforge.cli import main
    from styleforge.registry import build_method

    cfg = C.resolve("tiny/cyclegan")
    torch.manual_seed(0)
    model = save_model(tmp_path / "model", build_method(cfg["method"], **cfg["model"]))
    photo = sorted((Path(__file__).resolve().parents[2] / "data" / "horse2zebra" / "testA").glob("*.jpg"))[0]
    monkeypatch.setattr("os.fsync", _disk_full)
    assert main(["translate", str(model), str(photo), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "No space left on device" in err and str(tmp_path / "out" / photo.stem) in err and "\n" not in err
