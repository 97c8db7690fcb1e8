"""``prepare_faces`` / ``styleforge prepare faces``: crops, rejects with reasons, resume."""
import shutil

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main
from styleforge.errors import ConfigError
from styleforge.faces import FaceDetector, FacePreprocessor, prepare_faces
from styleforge.faces.prepare import read_rejects


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture
def raw(shared_data, tmp_path):
    """A folder of raw pictures: two portraits (one in a subfolder), a facade, two people side
    by side, a face too small to use, a file that is not an image."""
    testA = shared_data("photo2cartoon") / "testA"
    facades = shared_data("facades") / "test"
    d = tmp_path / "raw"
    (d / "sub").mkdir(parents=True)
    shutil.copy(testA / "AM1982.jpg", d / "a.jpg")
    shutil.copy(testA / "AM1983.jpg", d / "sub" / "b.jpg")
    shutil.copy(facades / "1.jpg", d / "facade.jpg")
    with Image.open(testA / "AM1987.jpg") as p, Image.open(testA / "AM1988.jpg") as q:
        pair = Image.new("RGB", (700, 350), "white")
        pair.paste(p.convert("RGB"), (0, 0))
        pair.paste(q.convert("RGB"), (350, 0))
        pair.save(d / "two.png")
        small = Image.new("RGB", (400, 400), "gray")
        small.paste(p.convert("RGB").resize((120, 120), Image.BICUBIC), (140, 140))  # face box ~90 px
        small.save(d / "small.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


def test_prepare_writes_crops_lists_rejects_and_resumes(raw, tmp_path, detector):
    out = tmp_path / "out"
    pre = FacePreprocessor(size=64, detector=detector)
    rep = prepare_faces(raw, out, pre, progress=False, min_face=100)
    assert rep.written == 2 and rep.faces == 2 and rep.skipped == 0
    for p in (out / "a.png", out / "sub" / "b.png"):
        with Image.open(p) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
            assert (np.asarray(im)[:3, :3] >= 250).all()  # background whitened
    rejects = read_rejects(out / "rejected.tsv")
    assert set(rejects) == {"facade.jpg", "two.png", "small.png", "broken.jpg"}
    assert rejects["facade.jpg"] == "no face"
    assert rejects["two.png"].startswith("several faces")
    assert rejects["small.png"].startswith("too small")
    assert rejects["broken.jpg"].startswith("unreadable")
    assert rep.rejected == rejects
    mtime = (out / "a.png").stat().st_mtime_ns

    # second run: nothing to do (the detector is never called)
    class NoWork(FacePreprocessor):
        def detect(self, image):
            raise AssertionError("resume should not detect again")

    rep2 = prepare_faces(raw, out, NoWork(size=64, detector=detector), progress=False, min_face=100)
    assert (rep2.written, rep2.skipped, rep2.rejected) == (0, 6, {})
    assert (out / "a.png").stat().st_mtime_ns == mtime
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    # a new image is picked up; retry_rejected tries the rejected ones again
    shutil.copy(raw / "a.jpg", raw / "c.jpg")
    rep3 = prepare_faces(raw, out, pre, progress=False, policy="all", retry_rejected=True, min_face=100)
    assert rep3.written == 2 and set(rep3.rejected) == {"facade.jpg", "small.png", "broken.jpg"}
    assert (out / "two_0.png").is_file() and (out / "two_1.png").is_file() and (out / "c_0.png").is_file()


def test_prepare_faces_cli(raw, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["prepare", "faces", str(raw), "-o", str(out), "--crop-size", "48", "--faces", "largest",
                 "--min-face", "100"]) == 0
    cap = capsys.readouterr()
    assert "prepared 3 image(s)" in cap.out and "rejected 3" in cap.out
    # one line names the path taken (here the bundled detector and matte)
    assert cap.err.count("face path: ") == 1
    from styleforge.faces.mediapipe_models import unavailable

    # the bundled matte, or without onnxruntime the named fallback
    assert ("matte bundled MediaPipe selfie segmentation" if unavailable() is None
            else "matte GrabCut (bundled model unavailable") in cap.err
    with Image.open(out / "two.png") as im:
        assert im.size == (48, 48)
    mtime = (out / "two.png").stat().st_mtime_ns
    assert main(["prepare", "faces", str(raw), str(out), "--quiet"]) == 0
    assert "prepared 0 image(s)" in capsys.readouterr().out
    # --overwrite does every image again; --size still works, as a deprecated alias, with one note
    assert main(["prepare", "faces", str(raw), str(out), "--size", "40", "--overwrite", "--quiet",
                 "--faces", "largest", "--min-face", "100"]) == 0
    cap = capsys.readouterr()
    assert "prepared 3 image(s)" in cap.out and cap.err.count("--size is deprecated") == 1
    assert (out / "two.png").stat().st_mtime_ns != mtime
    with Image.open(out / "two.png") as im:
        assert im.size == (40, 40)
    assert main(["prepare", "faces", str(raw), str(out), "--size", "40", "--crop-size", "48"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert main(["prepare", "faces", str(raw)]) == 2
    assert "--out" in capsys.readouterr().err


def test_prepare_refuses_an_output_inside_the_input(raw):
    with pytest.raises(ConfigError, match="inside"):
        prepare_faces(raw, raw / "crops", progress=False)
    assert main(["prepare", "faces", str(raw), str(raw / "x"), "--quiet"]) == 2


class NoDetect(FacePreprocessor):
    def detect(self, image):
        raise AssertionError("an image rejected by an earlier run is not detected again")


class StopOnLog:
    """A ``log`` stream: the run is 'interrupted' (Ctrl-C) when the first reject is logged."""

    def write(self, s):
        raise KeyboardInterrupt

    def flush(self):
        pass


def test_each_reject_is_on_disk_at_once_and_a_cut_short_last_line_is_tried_again(tmp_path, detector):
    src, out = tmp_path / "raw", tmp_path / "out"
    src.mkdir()
    Image.new("RGB", (64, 64), "gray").save(src / "plain.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "empty.png").write_bytes(b"")
    out.mkdir()
    # a run killed while appending: the 'empty.png' line was cut short (no newline)
    (out / "rejected.tsv").write_text("# image\treason\nplain.png\tno face\nempty.png\tunrea", encoding="utf-8")
    assert read_rejects(out / "rejected.tsv") == {"plain.png": "no face"}

    # interrupted when the first new reject (broken.jpg) is logged: its line is already written
    with pytest.raises(KeyboardInterrupt):
        prepare_faces(src, out, NoDetect(size=64, detector=detector), progress=False, log=StopOnLog())
    text = (out / "rejected.tsv").read_text(encoding="utf-8")
    assert text.endswith("\n") and "empty.png" not in text  # the partial line was dropped, not appended to
    assert set(read_rejects(out / "rejected.tsv")) == {"plain.png", "broken.jpg"}

    rep = prepare_faces(src, out, NoDetect(size=64, detector=detector), progress=False)
    assert (rep.written, rep.skipped, set(rep.rejected)) == (0, 2, {"empty.png"})
    assert rep.rejected["empty.png"].startswith("unreadable")
    lines = (out / "rejected.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and lines[1:] == sorted(lines[1:]) and len(lines) == 4  # rewritten once, sorted
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_refine_edges_without_pymatting_or_the_bundled_model_is_one_line(raw, tmp_path, capsys, monkeypatch):
    import sys

    from styleforge.faces import mediapipe_models

    monkeypatch.setitem(sys.modules, "pymatting", None)  # as if the faces extra were not installed
    assert main(["prepare", "faces", str(raw), str(tmp_path / "o"), "--refine-edges", "--quiet"]) == 2
    assert "pip install 'styleforge[faces]'" in capsys.readouterr().err
    monkeypatch.setattr(mediapipe_models, "unavailable", lambda: "onnxruntime is not installed")
    assert main(["prepare", "faces", str(raw), str(tmp_path / "o"), "--refine-edges", "--quiet"]) == 2
    assert "cannot run here: onnxruntime is not installed" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
