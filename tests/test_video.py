"""Videos through translate/stylize: frames in order, the source's fps kept, RGB order right
(imageio's ffmpeg frames are RGB; feeding BGR would swap red and blue), atomic output, errors.
Video a person can watch: the sound copied unchanged, frame rate, frame count and rotation kept,
bad videos as one line, --temporal lowering the flicker on a clip with a known camera motion, an
interrupted video resuming to the same frames; a video with no temporal flag is the --temporal run."""
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge import video as V
from styleforge.cli import main
from styleforge.pipeline import Pipeline
from styleforge.registry import build_method
from styleforge.utils.flow import video_warping_error

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("cv2")


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


def ffmpeg(*args):
    subprocess.run([V.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def packets(path, stream):
    """[(pts, duration, checksum)] of a stream's packets (demuxed, not decoded) and its time base."""
    out = subprocess.run([V.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", f"0:{stream}", "-c", "copy",
                          "-f", "framecrc", "-"], capture_output=True, text=True).stdout
    tb = next(ln.split(":")[1].strip() for ln in out.splitlines() if ln.startswith("#tb"))
    num, den = map(int, tb.split("/"))
    rows = [ln.split(",") for ln in out.splitlines() if ln and not ln.startswith("#")]
    return [(int(r[2]), int(r[3]), r[5].strip()) for r in rows], num / den


def duration(path, stream) -> float:
    p, tb = packets(path, stream)
    return (max(a + d for a, d, _ in p) - min(a for a, _, _ in p)) * tb


@pytest.fixture(scope="module")
def photo():
    h2z = Path(__file__).resolve().parents[1] / "data" / "horse2zebra"
    return np.asarray(Image.open(sorted((h2z / "testA").iterdir())[1]).convert("RGB"))


def pan_frames(photo, n=8, step=3, size=(64, 48)):
    """A camera panning right over a real photo: frame k is the window at x = step·k."""
    w, h = size
    return [np.ascontiguousarray(photo[40:40 + h, 20 + step * k:20 + step * k + w]) for k in range(n)]


@pytest.fixture(scope="module")
def moving_clip(photo, tmp_path_factory):
    """8 frames at 10 fps (lossless H.264) of a known pan, no sound."""
    d = tmp_path_factory.mktemp("clips")
    for k, f in enumerate(pan_frames(photo)):
        Image.fromarray(f).save(d / f"{k:03d}.png")
    path = d / "pan.mp4"
    ffmpeg("-framerate", 10, "-i", d / "%03d.png", "-c:v", "libx264", "-qp", 0, "-pix_fmt", "yuv444p", path)
    return path


@pytest.fixture(scope="module")
def sound_clip(moving_clip):
    """The pan with a 440 Hz sine sound track (AAC) made by ffmpeg, 0.8 s like the video."""
    path = moving_clip.parent / "pan_sound.mp4"
    ffmpeg("-i", moving_clip, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=0.8",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", path)
    return path


def frames(path):
    return list(V.read_frames(path))


def test_sound_is_copied_unchanged_and_frame_rate_and_count_are_kept(sound_clip, tiny_cyclegan_dir, tmp_path):
    assert main(["translate", str(tiny_cyclegan_dir), str(sound_clip), "-o", str(tmp_path), "--quiet"]) == 0
    out = tmp_path / "pan_sound.mp4"
    src_info, out_info = V.probe_video(sound_clip), V.probe_video(out)
    assert out_info.audio == ("aac",) and out_info.frames == src_info.frames == 8
    assert out_info.rate == src_info.rate == "10" and not out_info.variable_rate
    # the sound packets are the source's, byte for byte, and last as long
    (a_in, _), (a_out, _) = packets(sound_clip, "a"), packets(out, "a")
    assert [c for _, _, c in a_out] == [c for _, _, c in a_in]
    assert duration(out, "a") == pytest.approx(duration(sound_clip, "a"), abs=1e-3)
    assert duration(out, "v") == pytest.approx(duration(sound_clip, "v"), abs=1e-3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder, no temp file left


def test_a_video_without_sound_stays_without(moving_clip, tiny_cyclegan_dir, tmp_path):
    pipe = styleforge.load(tiny_cyclegan_dir)
    assert V.translate_video(pipe, moving_clip, tmp_path / "o.mp4", progress=False) == 8
    assert V.probe_video(tmp_path / "o.mp4").audio == ()


def test_sound_mp4_cannot_hold_is_reencoded_with_a_warning(moving_clip, tiny_cyclegan_dir, tmp_path, capsys):
    src = tmp_path / "alaw.mkv"  # A-law PCM: an MP4 cannot hold it
    ffmpeg("-i", moving_clip, "-f", "lavfi", "-i", "sine=frequency=440:duration=0.8", "-c:v", "copy",
           "-c:a", "pcm_alaw", src)
    pipe = styleforge.load(tiny_cyclegan_dir)
    V.translate_video(pipe, src, tmp_path / "o.mp4", progress=False)
    warn = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(warn) == 1 and "pcm_alaw" in warn[0] and "re-encoded as AAC" in warn[0]
    assert V.probe_video(tmp_path / "o.mp4").audio == ("aac",)
    assert duration(tmp_path / "o.mp4", "a") == pytest.approx(0.8, abs=0.05)


def test_rotation_metadata_is_kept_and_frames_stay_as_stored(moving_clip, tiny_cyclegan_dir, tmp_path):
    src = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", 90, "-i", moving_clip, "-c", "copy", src)
    assert V.probe_video(src).rotation == 90
    pipe = styleforge.load(tiny_cyclegan_dir)
    V.translate_video(pipe, src, tmp_path / "o.mp4", progress=False)
    info = V.probe_video(tmp_path / "o.mp4")
    assert info.rotation == 90 and info.size == (64, 48)  # not turned into the pixels (48×64)


def test_variable_frame_rate_is_one_note_and_every_frame_is_kept(photo, tiny_cyclegan_dir, tmp_path, capsys):
    d = tmp_path / "f"
    d.mkdir()
    for k, f in enumerate(pan_frames(photo, 12)):
        Image.fromarray(f).save(d / f"{k:03d}.png")
    src = tmp_path / "vfr.mp4"  # frames 0-5 at 20 fps, then every other frame (10 fps)
    ffmpeg("-framerate", 20, "-i", d / "%03d.png", "-vf", "select='lt(n,6)+not(mod(n,2))'", "-fps_mode",
           "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    info = V.probe_video(src)
    assert info.variable_rate and info.frames == 9
    assert main(["translate", str(tiny_cyclegan_dir), str(src), "-o", str(tmp_path / "o"), "--quiet"]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "variable frame rate" in err[0] and "vfr.mp4" in err[0]
    assert V.probe_video(tmp_path / "o" / "vfr.mp4").frames == 9


def test_no_video_stream_is_a_one_line_error(tiny_cyclegan_dir, tmp_path, capsys):
    src = tmp_path / "sound_only.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", src)
    assert main(["translate", str(tiny_cyclegan_dir), str(src), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sound_only.mp4" in err[0] and "no video stream" in err[0] and "aac" in err[0]


def test_temporal_lowers_the_warping_error_of_a_network_on_a_moving_clip(moving_clip, tiny_cyclegan_dir,
                                                                          tmp_path):
    for flag in ("--temporal", "--no-temporal"):
        out = tmp_path / flag.strip("-")
        assert main(["translate", str(tiny_cyclegan_dir), str(moving_clip), "-o", str(out), "--quiet", flag]) == 0
    src = frames(moving_clip)
    on = video_warping_error(src, frames(tmp_path / "temporal" / "pan.mp4"))
    off = video_warping_error(src, frames(tmp_path / "no-temporal" / "pan.mp4"))
    assert on < 0.6 * off, (on, off)


def test_a_video_run_without_a_temporal_flag_is_the_temporal_run(moving_clip, tiny_cyclegan_dir, tmp_path):
    got = {}
    for flag in ((), ("--temporal",), ("--no-temporal",)):
        out = tmp_path / (flag[0].strip("-") if flag else "default")
        assert main(["translate", str(tiny_cyclegan_dir), str(moving_clip), "-o", str(out), "--quiet", *flag]) == 0
        got[flag] = np.stack(frames(out / "pan.mp4"))
    assert np.array_equal(got[()], got[("--temporal",)])
    assert np.abs(got[()].astype(int) - got[("--no-temporal",)]).max() > 10  # the blend changed the frames


def tiny_gatys(**over):
    cfg = C.resolve("tiny/gatys")
    cfg["model"].update(over)
    torch.manual_seed(0)
    return Pipeline(build_method(cfg["method"], **cfg["model"]), device="cpu")


def test_temporal_optimisation_starts_from_the_warped_frame_and_lowers_the_warping_error(moving_clip, photo,
                                                                                          tmp_path):
    pipe = tiny_gatys(sizes=[48], iterations=[5], noise_std=60.0)
    assert pipe.method.temporal_consistency == "optimise"
    style = Image.fromarray(photo[::4, ::4].copy())
    clip = tmp_path / "short.mp4"
    ffmpeg("-i", moving_clip, "-frames:v", 4, "-c", "copy", clip)
    errs = {}
    for temporal in (False, True):
        dst = tmp_path / f"{temporal}.mp4"
        V.translate_video(pipe, clip, dst, progress=False, temporal=temporal, style=[style])
        errs[temporal] = video_warping_error(frames(clip), frames(dst))
    assert errs[True] < 0.5 * errs[False], errs


class Interrupt(Exception):
    pass


def test_an_interrupted_video_resumes_to_the_same_frames(moving_clip, tiny_cyclegan_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(V, "SEGMENT_SECONDS", 0.3)  # 3 frames per segment at 10 fps
    assert V.segment_frames("10") == 3
    pipe = styleforge.load(tiny_cyclegan_dir)
    whole = tmp_path / "whole.mp4"
    V.translate_video(pipe, moving_clip, whole, progress=False)
    calls = []
    run = pipe.run

    def stop_after(n):
        def stop(*a, **k):
            if len(calls) == n:
                raise Interrupt
            calls.append(1)
            return run(*a, **k)
        return stop

    def counted(*a, **k):
        calls.append(1)
        return run(*a, **k)

    # cut at a segment's end (its last frame kept as the previous output) and inside one
    for cut, left in ((3, ["00000000-00000002.mp4", "00000002.png"]),
                      (7, ["00000000-00000002.mp4", "00000003-00000005.mp4", "00000005.png", "00000006.png"])):
        pipe.run, calls[:] = stop_after(cut), []
        dst = tmp_path / f"cut{cut}" / "pan.mp4"
        with pytest.raises(Interrupt):
            V.translate_video(pipe, moving_clip, dst, progress=False)
        work = dst.parent / ".pan.mp4.frames"
        assert sorted(p.name for p in work.iterdir()) == sorted([*left, "job.json"]) and not dst.exists()
        pipe.run, calls[:] = counted, []
        assert V.translate_video(pipe, moving_clip, dst, progress=False) == 8
        assert len(calls) == 8 - cut  # the frames done were kept
        assert all(np.array_equal(a, b) for a, b in zip(frames(whole), frames(dst))), cut
        assert packets(whole, "v") == packets(dst, "v")
        assert not work.exists()
    # cut while the first segment is encoded: its frames are kept and encoded by the next run
    encode = V._encode_segment

    def crash(*a, **k):
        raise Interrupt

    pipe.run, calls[:] = counted, []
    dst = tmp_path / "cut_encoding" / "pan.mp4"
    V._encode_segment = crash
    try:
        with pytest.raises(Interrupt):
            V.translate_video(pipe, moving_clip, dst, progress=False)
    finally:
        V._encode_segment = encode
    assert sorted(p.name for p in (dst.parent / ".pan.mp4.frames").iterdir()) == [
        "00000000.png", "00000001.png", "00000002.png", "job.json"]
    calls[:] = []
    assert V.translate_video(pipe, moving_clip, dst, progress=False) == 8 and len(calls) == 5
    assert packets(whole, "v") == packets(dst, "v")
    # frames of another job (here --no-temporal, then bf16) are not reused
    for other in ({"temporal": False}, {"bf16": True}):
        pipe.run, calls[:] = stop_after(3), []
        with pytest.raises(Interrupt):
            V.translate_video(pipe, moving_clip, tmp_path / "o2.mp4", progress=False)
        pipe.run, calls[:] = counted, []
        if other.get("bf16"):
            pipe.use_runtime("torch", bf16=True)
        V.translate_video(pipe, moving_clip, tmp_path / "o2.mp4", progress=False, temporal=other.get("temporal", True))
        assert len(calls) == 8, other
        (tmp_path / "o2.mp4").unlink()


def test_the_work_folder_holds_at_most_one_segment_of_frames(moving_clip, tiny_cyclegan_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(V, "SEGMENT_SECONDS", 0.3)
    work = tmp_path / ".o.mp4.frames"
    pngs = []
    write = V._write_frame

    def counting(path, frame):
        write(path, frame)
        pngs.append(sorted(int(p.stem) for p in work.glob("*.png")))

    monkeypatch.setattr(V, "_write_frame", counting)
    V.translate_video(styleforge.load(tiny_cyclegan_dir), moving_clip, tmp_path / "o.mp4", progress=False)
    # segments of 3: the frames of the current one and the last of the one before
    assert pngs == [[0], [0, 1], [0, 1, 2], [2, 3], [2, 3, 4], [2, 3, 4, 5], [5, 6], [5, 6, 7]]
    info = V.probe_video(tmp_path / "o.mp4")
    assert info.frames == 8 and info.rate == "10" and not info.variable_rate
    p, tb = packets(tmp_path / "o.mp4", "v")
    assert sorted(round(a * tb, 6) for a, _, _ in p) == [k / 10 for k in range(8)]  # no gap at the joins


def test_segments_last_a_whole_number_of_microseconds(monkeypatch):
    def check(rate, n):
        got = V.segment_frames(rate)
        assert got == n and (got * 10 ** 6 / Fraction(rate)).denominator == 1, (rate, got)

    for rate, n in (("30000/1001", 60), ("24000/1001", 48), ("25", 50), ("10", 20), ("25/2", 25), ("15", 30)):
        check(rate, n)
    monkeypatch.setattr(V, "SEGMENT_SECONDS", 0.25)
    check("30000/1001", 6)  # 7 frames would last 233566.67 µs: the joins would drift by a third of a µs each


def test_sound_that_can_be_neither_copied_nor_reencoded_is_left_out_with_one_warning(moving_clip, tiny_cyclegan_dir,
                                                                                    tmp_path, capsys):
    src = tmp_path / "alaw16.mkv"  # 16 channels of A-law: an MP4 cannot hold it, AAC takes at most 8
    ffmpeg("-i", moving_clip, "-f", "lavfi", "-i", "anullsrc=channel_layout=hexadecagonal:sample_rate=8000", "-t", 0.8,
           "-c:v", "copy", "-c:a", "pcm_alaw", src)
    assert V.probe_video(src).audio == ("pcm_alaw",)
    assert main(["translate", str(tiny_cyclegan_dir), str(src), "-o", str(tmp_path / "o"), "--quiet"]) == 0
    warn = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(warn) == 1 and warn[0].startswith("warning:") and "alaw16.mkv" in warn[0], warn
    assert "pcm_alaw" in warn[0] and "no sound" in warn[0]
    info = V.probe_video(tmp_path / "o" / "alaw16.mp4")
    assert info.audio == () and info.frames == 8


def test_bf16_acts_on_videos_within_its_bound(moving_clip, tiny_cyclegan_dir, tmp_path, monkeypatch):
    from styleforge import accel

    written = {"fp32": [], "bf16": []}
    write = V._write_frame
    for run, flags in (("fp32", []), ("bf16", ["--bf16"])):
        monkeypatch.setattr(V, "_write_frame", lambda path, frame, into=written[run]: (into.append(frame.copy()),
                                                                                      write(path, frame)))
        out = tmp_path / run
        assert main(["translate", str(tiny_cyclegan_dir), str(moving_clip), "-o", str(out), "--quiet", *flags]) == 0
        assert V.probe_video(out / "pan.mp4").frames == 8

    def t(a):
        return torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1

    assert len(written["fp32"]) == len(written["bf16"]) == 8
    for a, b in zip(written["fp32"], written["bf16"]):
        assert not np.array_equal(a, b)  # the flag acts
        assert accel.psnr(t(b), t(a)) >= accel.MIN_PSNR, accel.psnr(t(b), t(a))


def test_variable_rate_avi_gets_the_average_rate_of_its_frames_times(shared_data):
    """tree.avi (cinepak, nominally 15 fps) holds 68 frames over 29.6 s (the still parts dropped):
    the output played them at the nominal 15 fps, 4.5 s instead of 29.6 s."""
    src = shared_data("videos") / "tree.avi"
    info = V.probe_video(src)
    assert info.variable_rate and info.frames == 68
    assert info.frames / info.fps == pytest.approx(29.6, rel=0.03)


def test_a_video_refused_before_its_first_frame_leaves_no_work_folder(clip, tmp_path, capsys):
    """stylize CLIP --style NOT_AN_IMAGE: one error line, and no hidden '.clip.mp4.frames' folder
    with only its job.json left in --out."""
    cfg = C.resolve("tiny/adain")
    torch.manual_seed(0)
    model = tmp_path / "adain"
    from styleforge.checkpoint import save_model

    save_model(model, build_method(cfg["method"], **cfg["model"]))
    bad = tmp_path / "style.jpg"
    bad.write_text("not an image\n")
    out = tmp_path / "out"
    assert main(["stylize", str(clip), "--model", str(model), "--style", str(bad), "-o", str(out), "--quiet",
                 "--runtime", "torch"]) == 2
    assert "not an image" in capsys.readouterr().err
    assert not out.exists()  # the --out it made, left empty, goes too


def test_auto_runtime_counts_a_videos_frames_so_a_short_clip_is_not_compiled(clip, tiny_cyclegan_dir, tmp_path,
                                                                            monkeypatch):
    """A video counted as 10,000 images: auto tried torch.compile on a 1 s clip (2 min of a 2 min
    11 s run on a loaded 2-core machine, for 30 frames)."""
    seen = []
    orig = Pipeline.use_runtime

    def spy(self, runtime="auto", bf16=False, **kw):
        seen.append(kw.get("images"))
        return orig(self, runtime, bf16, **{**kw, "candidates": ("torch",)})

    monkeypatch.setattr(Pipeline, "use_runtime", spy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["translate", str(tiny_cyclegan_dir), str(clip), "-o", str(tmp_path / "o"), "--quiet",
                 "--runtime", "auto"]) == 0
    assert seen == [6]


def test_resume_after_changing_an_option_says_it_starts_again(moving_clip, tiny_cyclegan_dir, tmp_path,
                                                                monkeypatch, capsys):
    """--resume with another --size (or --seed, model, ...) emptied the work folder silently: the
    user saw a full run where a continuation was asked for."""
    monkeypatch.setattr(V, "SEGMENT_SECONDS", 0.3)
    pipe = styleforge.load(tiny_cyclegan_dir)
    run, calls = pipe.run, []

    def stop(*a, **k):
        if len(calls) == 4:
            raise Interrupt
        calls.append(1)
        return run(*a, **k)

    dst = tmp_path / "pan.mp4"
    pipe.run = stop
    with pytest.raises(Interrupt):
        V.translate_video(pipe, moving_clip, dst, progress=False)
    pipe.run, calls[:] = run, []
    capsys.readouterr()
    assert V.translate_video(pipe, moving_clip, dst, size=48, progress=False) == 8
    err = capsys.readouterr().err
    work = tmp_path / ".pan.mp4.frames"
    assert f"note: {work} holds the frames of another job (changed: size); starting again" in err
    assert "resuming at frame" not in err


def test_resume_of_a_finished_video_keeps_it_and_exits_0(clip, tiny_cyclegan_dir, tmp_path, capsys):
    """It exited 1 (the code for 'nothing written: every input unreadable') and printed nothing."""
    args = ["translate", str(tiny_cyclegan_dir), str(clip), "-o", str(tmp_path / "o"), "--quiet", "--runtime", "torch"]
    assert main(args) == 0
    before = (tmp_path / "o" / "clip.mp4").read_bytes()
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "already done (resumed)" in capsys.readouterr().out
    assert (tmp_path / "o" / "clip.mp4").read_bytes() == before


def test_runtime_onnx_gives_torchs_frames_and_a_resume_with_another_runtime_recomputes(clip, tiny_cyclegan_dir,
                                                                                      tmp_path, monkeypatch, capsys):
    """`translate MODEL clip.mp4 --runtime onnx` (the file `styleforge export` puts beside the model)
    says onnx and writes torch's frames within the ONNX fp32 bound (compared before H.264, as the
    8-bit frames written); the runtime is part of the video's job: frames an onnx run left are
    kept by an onnx resume and recomputed by a torch one."""
    pytest.importorskip("onnxruntime")
    import shutil

    from styleforge.export import export_model

    model = tmp_path / "m"  # the onnx file goes beside the model: a copy, not the module's shared one
    shutil.copytree(tiny_cyclegan_dir, model)
    export_model(model)
    monkeypatch.setattr(V, "SEGMENT_SECONDS", 0.25)  # 3 frames per segment at 12 fps
    written, stop_at = [], [None]
    write = V._write_frame

    def keep(path, frame):
        if len(written) == stop_at[0]:
            raise KeyboardInterrupt  # Ctrl-C: the CLI says so and exits 130, the work folder kept
        written.append(frame.copy())
        write(path, frame)

    monkeypatch.setattr(V, "_write_frame", keep)

    def translate(runtime, out, stop=None):
        written[:], stop_at[0] = [], stop
        args = ["translate", str(model), str(clip), "-o", str(tmp_path / out), "--runtime", runtime, "--quiet"]
        assert main(args) == (0 if stop is None else 130)
        return list(written), capsys.readouterr().err

    want, _ = translate("torch", "torch")
    got, err = translate("onnx", "onnx")
    assert "runtime: onnx (max |Δ|" in err, err
    assert len(got) == len(want) == 6
    for k, (a, b) in enumerate(zip(got, want)):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2, k  # the ONNX fp32 bound, 8-bit frames

    work = tmp_path / "resume" / ".clip.mp4.frames"
    for resumed_with, recomputed in (("onnx", 2), ("torch", 6)):
        (tmp_path / "resume" / "clip.mp4").unlink(missing_ok=True)
        translate("onnx", "resume", stop=4)
        assert V.json.loads((work / "job.json").read_text())["runtime"] == "onnx"
        again, _ = translate(resumed_with, "resume")
        assert len(again) == recomputed, resumed_with
        assert not work.exists()
