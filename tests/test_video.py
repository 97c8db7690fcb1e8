"""Videos through translate/stylize: frames in order, the source's fps kept, RGB order right
(imageio's ffmpeg frames are RGB; feeding BGR would swap red and blue), atomic output, errors."""
import numpy as np
import pytest
from PIL import Image

import styleforge
from styleforge.cli import main

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")


@pytest.fixture
def clip(h2z, tmp_path):
    """A 6-frame 48×32 clip at 12 fps of real horse photos, the last frames strongly red."""
    frames = []
    for f in sorted((h2z / "testA").iterdir())[:6]:
        frames.append(np.asarray(Image.open(f).convert("RGB").resize((48, 32))))
    frames[-1] = np.clip(frames[-1].astype(int) * [1.6, 0.3, 0.3], 0, 255).astype(np.uint8)
    path = tmp_path / "clip.mp4"
    imageio.mimwrite(str(path), frames, format="FFMPEG", fps=12, codec="libx264", quality=9,
                     macro_block_size=2, pixelformat="yuv420p")
    return path


def read(path):
    with imageio.get_reader(str(path), format="FFMPEG") as r:
        return r.get_meta_data()["fps"], [np.asarray(f) for f in r]


def test_video_frames_translated_in_order_at_the_same_fps(clip, tiny_cyclegan_dir, tmp_path):
    assert main(["translate", str(tiny_cyclegan_dir), str(clip), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    fps_in, frames_in = read(clip)
    fps_out, frames_out = read(tmp_path / "out" / "clip.mp4")
    assert fps_out == pytest.approx(fps_in) and len(frames_out) == len(frames_in) == 6
    pipe = styleforge.load(tiny_cyclegan_dir)
    wants = [np.asarray(pipe.run(Image.fromarray(a))[0]["image"], dtype=float) for a in frames_in]
    for k, (want, b) in enumerate(zip(wants, frames_out)):
        # per-channel means survive H.264 (the tiny random network's output is noise-like)
        got_c, want_c = b.reshape(-1, 3).mean(0), want.reshape(-1, 3).mean(0)
        assert np.abs(got_c - want_c).max() < 4, (k, got_c, want_c)
    # the red frame: in the other colour order its red and blue means would be swapped
    red_in = frames_in[-1].reshape(-1, 3).mean(0)
    assert red_in[0] > red_in[2] + 40
    got_c, want_c = frames_out[-1].reshape(-1, 3).mean(0), wants[-1].reshape(-1, 3).mean(0)
    assert np.abs(got_c[::-1] - want_c).max() > 10 * max(1.0, np.abs(got_c - want_c).max())
    # frames in order: output k is closest to the translation of input k (8×8 block means)
    def blocks(a):
        return a.reshape(4, 8, 6, 8, 3).mean((1, 3))

    for k, b in enumerate(frames_out):
        d = [np.abs(blocks(w) - blocks(b.astype(float))).mean() for w in wants]
        assert int(np.argmin(d)) == k, (k, d)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp left


def test_bad_or_existing_video_is_a_one_line_error(clip, tiny_cyclegan_dir, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    assert main(["translate", str(tiny_cyclegan_dir), str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.mp4" in err[0] and "video" in err[0]
    out = tmp_path / "o2"
    assert main(["translate", str(tiny_cyclegan_dir), str(clip), "-o", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["translate", str(tiny_cyclegan_dir), str(clip), "-o", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_a_folder_gives_its_videos_too_and_skips_what_cannot_go_to_a_video(clip, tiny_cyclegan_dir, h2z, tmp_path,
                                                                          capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / clip.name).write_bytes(clip.read_bytes())
    photo = sorted((h2z / "testA").iterdir())[0]
    (folder / photo.name).write_bytes(photo.read_bytes())
    out = tmp_path / "out"
    assert main(["translate", str(tiny_cyclegan_dir), str(folder), "-o", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([photo.name, "clip.mp4"])
    assert len(read(out / "clip.mp4")[1]) == 6
    only = tmp_path / "only_videos"  # a folder of videos alone is an input too
    only.mkdir()
    (only / clip.name).write_bytes(clip.read_bytes())
    assert main(["translate", str(tiny_cyclegan_dir), str(only), "-o", str(tmp_path / "ov"), "--quiet"]) == 0
    assert [p.name for p in (tmp_path / "ov").iterdir()] == ["clip.mp4"]
    # a broken video in a folder is skipped with one line, the rest is translated
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    capsys.readouterr()
    assert main(["translate", str(tiny_cyclegan_dir), str(folder), "-o", str(tmp_path / "o2"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.mp4" in err and (tmp_path / "o2" / "clip.mp4").is_file()
    # N outputs per input apply to images: the folder's videos are skipped with one line
    import torch

    from styleforge import config as C
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    torch.manual_seed(0)
    cfg = C.resolve("tiny/munit")
    munit = save_model(tmp_path / "munit", build_method(cfg["method"], **cfg["model"]).eval())
    (folder / "broken.mp4").unlink()
    capsys.readouterr()
    out3 = tmp_path / "o3"
    assert main(["translate", str(munit), str(folder), "-o", str(out3), "--num-outputs", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 video(s) found in folders (e.g. clip.mp4)" in err
    assert sorted(p.name for p in out3.iterdir()) == sorted(f"{photo.stem}_{k}{photo.suffix}" for k in (0, 1))
