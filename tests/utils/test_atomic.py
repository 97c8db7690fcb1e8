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

