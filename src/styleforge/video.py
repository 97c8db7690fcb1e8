"""Videos in, videos out: every frame through a pipeline, in order; the sound, frame rate, frame
count and rotation of the source kept; flicker removed (``temporal``); an interrupted video resumes.

The ffmpeg binary of the imageio-ffmpeg wheel does the work (``imageio_ffmpeg.get_ffmpeg_exe()``):

* :func:`probe_video` reads the source's streams from ``ffmpeg -i`` and its video packets' times
  (``-f framecrc``, demuxing only): the exact frame count, the frame rate, a variable frame rate
  (frame durations that differ), the display rotation, the sound's codec. A file with no video
  stream, or none ffmpeg can read, is an :class:`ImageLoadError` naming it.
* Frames are decoded as stored (``-noautorotate``: the rotation stays metadata, as in the
  source) as RGB uint8 arrays, the colour order the pipeline expects.
* Frames go through the pipeline's conversions (``Pipeline.run``: ``sized`` for ``--size``,
  the network, ``as_picture`` back to the frame's size; ``as_input`` for the optimisation's
  warped start), so a frame comes out as the same picture as an image would.
* Each output frame is written (atomically, as PNG) into a work folder beside the output,
  ``.NAME.mp4.frames/``, with ``job.json`` saying what made them (source, model, inputs,
  ``--size``, ``--temporal``, the runtime, the segment length). Every :func:`segment_frames`
  frames (about :data:`SEGMENT_SECONDS` of video) are encoded into a segment,
  ``FIRST-LAST.mp4`` (H.264, yuv420p, CRF :data:`CRF`, odd sides padded to even by one pixel),
  written atomically; then that segment's PNGs are deleted but its last one, the previous
  output the temporal blend needs after a resume. The folder so holds the segments (the size
  of the finished video) and at most one segment's PNGs.
* A run that finds the folder with the same ``job.json`` keeps its segments and frames and
  goes on from the first missing frame: the same video as one uninterrupted run (each frame
  depends only on its input and the previous *written* frame, and a segment only on its
  frames). A folder of another job is emptied first.
* At the end the segments are joined without re-encoding (ffmpeg's concat demuxer, stream
  copy) at the source's rate with its rotation, and the source's sound streams are copied
  unchanged; a sound codec that MP4 cannot hold is re-encoded as AAC, else left out, with one
  line saying which. The video is written under a temporary name, renamed into place, and the
  work folder removed. Against one encode of all the frames (what this module did before
  segments) the pictures differ by x264's choices at the segment joins (each segment starts
  with a key frame): 34.5 dB PSNR between the two on 150 stylised frames of box.mp4, and
  29.19 dB against the frames themselves where one pass gives 29.25 dB (docs/batch.md).

Temporal consistency (``temporal=True``, the CLI's default for videos, ``--no-temporal`` off),
chosen by the method's declaration ``Method.temporal_consistency``; the optical flow between
the *input* frames (``utils.flow``: OpenCV's DIS flow, occlusions and motion boundaries masked by
Ruder et al.'s forward-backward check):

* ``blend`` (feed-forward networks): output_t = y_t + a · c · (warp(output_{t−1}) − y_t), y_t
  the network's output, c the consistency weights, a = :data:`TEMPORAL_BLEND`: the short-term
  consistency of Ruder et al. 2016 applied after the network, as Lai et al. 2018's blind
  post-processing does (without their learned network).
* ``optimise`` (Gatys, photo): Ruder et al. 2016: the frame's optimisation starts from the
  previous output warped by the flow, with their temporal loss weighted by c
  (``translate(..., init_image=, temporal=(target, weights))``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ConfigError, ImageLoadError, first_line
from .utils.atomic import FILE_MODE, atomic_write_bytes, atomic_write_text

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# a (blend) in output = y + a·c·(warped previous output − y): measured on box.mp4 in
# docs/benchmarks.md (benchmarks/video_flicker.py); larger values trail more behind motion
TEMPORAL_BLEND = 0.7
# H.264 quality of the output (x264's constant rate factor; 18: visually near lossless)
CRF = 18
# a segment's length: the work folder holds at most this much video as PNGs (~0.6 MB per
# stylised 640×480 frame); shorter segments add key frames (each starts with one)
SEGMENT_SECONDS = 2.0
FRAME_NAME = "{:08d}.png"
SEGMENT_NAME = "{:08d}-{:08d}.mp4"  # first and last frame
_SEGMENT = re.compile(r"(\d{8})-(\d{8})\.mp4")
# the frames' encoding: every segment the same, so that joining them copies the streams
_H264 = ["-c:v", "libx264", "-crf", str(CRF), "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError("videos need imageio-ffmpeg (its ffmpeg binary): pip install imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def video_output_name(src: Path) -> str:
    return Path(src).stem + ".mp4"


@dataclass(frozen=True)
class VideoInfo:
    fps: float               # frames per second (the average where the rate varies)
    rate: str                # the same for ffmpeg, exact where it is a standard one ("30000/1001")
    frames: int              # video frames (packets) in the file
    size: tuple[int, int]    # (width, height) as stored
    rotation: float          # display rotation in degrees (counter-clockwise), 0 if none
    audio: tuple[str, ...]   # codec of each sound stream
    variable_rate: bool      # frame durations differ


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", *args], capture_output=True, text=True,
                          errors="replace")


def _exact_rate(fps: float) -> str:
    """29.97 -> 30000/1001 (NTSC rates are printed rounded), 15 -> 15, 12.5 -> 25/2."""
    ntsc = fps * 1001 / 1000
    if abs(ntsc - round(ntsc)) < 0.005 and abs(fps - round(fps)) > 0.005:
        return f"{round(ntsc) * 1000}/1001"
    r = Fraction(fps).limit_denominator(1000)
    return str(r.numerator) if r.denominator == 1 else f"{r.numerator}/{r.denominator}"


def probe_video(path) -> VideoInfo:
    """The source's streams (see the module docstring); an :class:`ImageLoadError` for a file
    that is not a video ffmpeg can read or that has no video stream."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(path, "no such file", "video")
    head = _run(["-i", str(path)]).stderr
    streams = re.findall(r"^\s*Stream #\d+:\d+.*$", head, flags=re.M)
    if not streams:
        last = [ln for ln in head.strip().splitlines() if "output file" not in ln]
        reason = last[-1].split("]")[-1].strip(" :") if last else "ffmpeg found no streams"
        raise ImageLoadError(path, f"not a readable video ({reason[:120]})", "video")
    audio = tuple(re.search(r"Audio: (\w+)", s).group(1) for s in streams if "Audio:" in s)
    video = [s for s in streams if "Video:" in s and "attached pic" not in s]
    if not video:
        what = f"only sound ({', '.join(audio)})" if audio else "streams: " + ", ".join(
            re.search(r"(\w+):", s.split(": ", 1)[1]).group(1) for s in streams)
        raise ImageLoadError(path, f"the file has no video stream ({what})", "video")
    v = video[0]
    size = re.search(r", (\d+)x(\d+)", v)
    fps = re.search(r"([\d.]+) fps", v)
    tbr = re.search(r"([\d.]+)k? tbr", v)
    after = head[head.index(v) + len(v):]
    nxt = re.search(r"^\s*Stream #", after, flags=re.M)
    rot = re.search(r"rotation of (-?[\d.]+) degrees", after[:nxt.start()] if nxt else after)
    # the video packets' presentation times (demuxing only): frame count and durations
    crc = _run(["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"])
    rows = [ln.split(",") for ln in crc.stdout.splitlines() if ln and not ln.startswith("#")]
    # an empty packet is no frame (an AVI's "drop frame": the last one stays on screen)
    pts = sorted(int(r[2]) for r in rows if len(r) < 5 or int(r[4]) > 0)
    if not pts:
        raise ImageLoadError(path, f"not a readable video (no video frames; {first_line(crc.stderr, 100) or 'empty'})",
                             "video")
    steps = np.diff(pts)
    # durations differing by a tick are rounding; by a fifth, a variable rate (or dropped frames)
    variable = bool(len(steps) > 1 and steps.max() > 1.2 * max(1, steps.min()))
    # tbr (the stream's base rate) is exact where the rate is constant; fps is the average,
    # which a cut can shift (a 1.5 s cut of a 29.97 fps clip averages 29.96)
    rate_f = float((fps if variable or not tbr else tbr).group(1)) if (fps or tbr) else 25.0
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", crc.stdout, flags=re.M)
    if variable and tb and pts[-1] > pts[0]:
        # from the frames' times: an AVI's reported fps is its nominal rate, dropped frames and all
        # (tree.avi: 68 frames in 29.6 s, said 15 fps, played 6.5× too fast)
        rate_f = round((len(pts) - 1) / ((pts[-1] - pts[0]) * int(tb.group(1)) / int(tb.group(2))), 3)
    return VideoInfo(fps=rate_f, rate=_exact_rate(rate_f), frames=len(pts),
                     size=(int(size.group(1)), int(size.group(2))) if size else (0, 0),
                     rotation=float(rot.group(1)) if rot else 0.0, audio=audio, variable_rate=variable)


def read_frames(path):
    """The video's frames as stored (no auto-rotation), H×W×3 uint8 RGB, in order."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), input_params=["-noautorotate"],
                                     output_params=["-map", "0:v:0", "-fps_mode", "passthrough"])
    meta = next(gen)
    w, h = meta["size"]
    for buf in gen:
        yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)


# ---- the work folder of an interrupted video --------------------------------------------------------
def _fingerprint(v) -> object:
    import torch

    if isinstance(v, (str, Path)):
        p = Path(v)
        return [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] if p.is_file() else str(v)
    if isinstance(v, torch.Tensor):
        return hashlib.sha1(v.detach().float().cpu().numpy().tobytes()).hexdigest()
    if isinstance(v, Image.Image):
        return hashlib.sha1(v.tobytes()).hexdigest()
    if isinstance(v, (list, tuple)):
        return [_fingerprint(x) for x in v]
    return repr(v)


def segment_frames(rate: str) -> int:
    """Frames per segment at ``rate``: about :data:`SEGMENT_SECONDS`, and a whole number of
    microseconds long where the rate allows (the concat demuxer adds the segments' durations in
    µs: exact sums keep every frame's timestamp, 29.97 fps giving 60 frames, 2.002 s)."""
    r = Fraction(rate)
    q = (Fraction(10 ** 6) / r).denominator  # n frames last n·10⁶/r µs: whole when q divides n
    n = max(1, round(SEGMENT_SECONDS * r))
    return max(1, round(n / q)) * q if q <= n else n


def _job(pipe, src: Path, size, temporal: bool, values: dict, segment: int) -> dict:
    """What the frames of the work folder depend on: another job's frames are not reused."""
    h = hashlib.sha1()
    # the PyTorch weights, also behind an exported path (--runtime onnx); an exported file alone: its bytes.
    # Only the inference modules: the rest (discriminators) is not in a model directory, random at each load
    model = getattr(pipe, "_eager", None) or pipe.method
    if hasattr(model, "state_dict"):
        keep = tuple(getattr(model, "inference_modules", ()))
        for name, t in sorted(model.state_dict().items()):
            if keep and name.split(".", 1)[0] not in keep:
                continue
            h.update(name.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
    else:
        h.update(Path(model.path).read_bytes())
    job = {"source": _fingerprint(src), "method": pipe.method.method_name,
           "config": getattr(pipe.method, "config", {}), "weights": h.hexdigest(),
           "inputs": {k: _fingerprint(v) for k, v in sorted(values.items())},
           "size": size, "temporal": bool(temporal), "blend": TEMPORAL_BLEND,
           "runtime": getattr(pipe, "runtime", "torch"), "segment": segment, "crf": CRF}
    return json.loads(json.dumps(job, default=str))  # as job.json reads back (tuples as lists)


def _segments(work: Path) -> list[tuple[int, int, Path]]:
    """The segment files of ``work``: (first frame, last frame, path), in order."""
    found = [(int(m.group(1)), int(m.group(2)), p) for p in work.iterdir() if (m := _SEGMENT.fullmatch(p.name))]
    return sorted(found)


def _open_work(work: Path, job: dict) -> tuple[int, int]:
    """(frames done, frames in segments) in ``work`` for ``job``; (0, 0) for a new or other job.
    What an interruption left half done goes: temporary files, the PNGs of a segment written
    just before it."""
    spec = work / "job.json"
    if work.is_dir():
        try:
            old = json.loads(spec.read_text())
        except (OSError, ValueError):
            old = {}
        same = old == job
        if not same and any(p.suffix in (".mp4", ".png") for p in work.iterdir()):
            # --resume after changing an option: the frames done are not this job's
            what = ", ".join(k for k in job if old.get(k) != job[k]) if old else "no readable job.json"
            print(f"note: {work} holds the frames of another job (changed: {what}); starting again",
                  file=sys.stderr)
        end = 0
        for first, last, path in _segments(work) if same else ():
            if first == end and last >= first:
                end = last + 1
            else:  # not after the previous one: not ours
                path.unlink()
        # a segment's last frame is the previous output of the next frame: without it, start again
        if same and (end == 0 or (work / FRAME_NAME.format(end - 1)).is_file()):
            for p in work.iterdir():
                if p.name.startswith(".") or (p.suffix == ".png" and p.stem.isdigit() and int(p.stem) < end - 1):
                    p.unlink()
            k = end
            while (work / FRAME_NAME.format(k)).is_file():
                k += 1
            return k, end
        shutil.rmtree(work)
    work.mkdir(parents=True)
    atomic_write_text(spec, json.dumps(job, indent=1))
    return 0, 0


def _write_frame(path: Path, frame: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(path, buf.getvalue())


# ---- frames -------------------------------------------------------------------------------------------
def _picture_tensor(a: np.ndarray, device):
    """H×W×3 uint8 -> 1×3×H×W in [-1, 1] (the pipeline's ``as_input``)."""
    import torch

    from .pipeline import as_input

    return as_input(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1))[None].to(device)


def stylise_frame(pipe, frame: np.ndarray, prev_in, prev_out, mode: str | None, size=None, **values) -> np.ndarray:
    """One output frame (H×W×3 uint8) of input ``frame``; ``prev_in``/``prev_out``: the previous
    input and output frames (None for the first), ``mode``: None (each frame on its own) or the
    method's ``temporal_consistency``."""
    from .utils.flow import frame_motion, warp

    image = Image.fromarray(frame)
    if mode is None or prev_in is None:
        return np.asarray(pipe.run(image, size=size, **values)[0]["image"])
    back, weights = frame_motion(prev_in, frame)
    warped = warp(prev_out, back)
    if mode == "optimise":
        import torch

        w = _picture_tensor(warped, pipe.device)
        c = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))[None, None].to(pipe.device)
        extra = {"init_image": w, "temporal": (w, c)}
        return np.asarray(pipe.run(image, size=size, extra=extra, **values)[0]["image"])
    if mode != "blend":
        raise ConfigError(f"{pipe.method.method_name}: unknown temporal_consistency {mode!r} (blend, optimise)")
    y = np.asarray(pipe.run(image, size=size, **values)[0]["image"]).astype(np.float32)
    out = y + TEMPORAL_BLEND * weights[..., None] * (warped.astype(np.float32) - y)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---- encoding -----------------------------------------------------------------------------------------
def _encode_segment(work: Path, first: int, last: int, src: Path, info: VideoInfo) -> None:
    """Frames ``first``..``last`` of ``work`` -> the segment ``FIRST-LAST.mp4`` (atomically),
    then their PNGs deleted but the last; the previous segment's last PNG goes too."""
    dst = work / SEGMENT_NAME.format(first, last)
    fd, tmp = tempfile.mkstemp(dir=work, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        r = _run(["-loglevel", "error", "-framerate", info.rate, "-start_number", str(first),
                  "-i", str(work / "%08d.png"), "-frames:v", str(last - first + 1), *_H264,
                  "-fps_mode", "passthrough", "-f", "mp4", "-y", tmp])
        if r.returncode != 0:
            raise ImageLoadError(src, f"ffmpeg could not encode frames {first + 1}-{last + 1} "
                                      f"({first_line(r.stderr, 160)})", "video", "translate")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    for k in range(first - 1, last):
        (work / FRAME_NAME.format(k)).unlink(missing_ok=True)


def _encode(work: Path, src: Path, tmp: Path, info: VideoInfo) -> str | None:
    """The segments of ``work`` joined + the sound of ``src`` -> ``tmp``; returns a note when
    the sound could not be copied unchanged."""
    listing = work / "segments.txt"  # the concat demuxer's list; names relative to it
    atomic_write_text(listing, "".join(f"file '{p.name}'\n" for _, _, p in _segments(work)))
    video_in = ["-f", "concat", "-safe", "0"]
    if info.rotation:
        video_in = ["-noautorotate", "-display_rotation", f"{info.rotation:g}", *video_in]
    base = [*video_in, "-i", str(listing), "-i", str(src), "-map", "0:v:0", "-c:v", "copy"]
    tail = ["-movflags", "+faststart", "-f", "mp4", "-y", str(tmp)]
    codecs = ", ".join(info.audio)
    tries = [(["-map", "1:a", "-c:a", "copy"], None),
             (["-map", "1:a", "-c:a", "aac", "-b:a", "192k"],
              f"its sound ({codecs}) cannot be copied into MP4: re-encoded as AAC 192 kb/s"),
             (["-an"], f"its sound ({codecs}) could neither be copied into MP4 nor re-encoded: the video has "
                       "no sound")] if info.audio else [(["-an"], None)]
    err = ""
    for audio, note in tries:
        r = _run(["-loglevel", "error", *base, *audio, *tail])
        if r.returncode == 0:
            return note
        err = r.stderr
    raise ImageLoadError(src, f"ffmpeg could not write the video ({first_line(err, 160)})", "video", "translate")


def translate_video(pipe, src, dst, size: int | None = None, progress: bool = True, temporal: bool = True,
                    **values) -> int:
    """Translate every frame of ``src`` with ``pipe.run(frame, **values)`` into ``dst`` (H.264
    MP4, the source's rate, frame count, rotation and sound; see the module docstring). Returns
    the number of frames. An unreadable video is an :class:`ImageLoadError` naming it."""
    src, dst = Path(src), Path(dst)
    info = probe_video(src)
    if info.variable_rate:
        print(f"note: {src}: variable frame rate; the output plays its {info.frames} frames at the average "
              f"{info.fps:g} fps", file=sys.stderr)
    mode = getattr(pipe.method, "temporal_consistency", "blend") if temporal else None
    dst.parent.mkdir(parents=True, exist_ok=True)
    work = dst.parent / f".{dst.name}.frames"
    per = segment_frames(info.rate)
    done, end = _open_work(work, _job(pipe, src, size, temporal, values, per))
    if done and progress:
        print(f"{src}: resuming at frame {done + 1} of {info.frames}", file=sys.stderr)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.frames, initial=done, unit="frame", desc=src.name, file=sys.stderr,
                   dynamic_ncols=True, smoothing=0.1)
    frames = 0
    prev_in = prev_out = None
    decoded = read_frames(src)
    try:
        while True:
            try:  # only the decoder's errors end the video early; the network's are raised
                frame = next(decoded)
            except StopIteration:
                break
            except (OSError, RuntimeError) as e:
                if frames == 0:
                    raise ImageLoadError(src, f"no frame could be decoded ({first_line(e, 120)})", "video") from None
                print(f"note: {src}: decoding stopped after {frames} frame(s): {first_line(e, 120)}", file=sys.stderr)
                break
            k = frames
            path = work / FRAME_NAME.format(k)
            if k < done:
                if k == done - 1 and mode:
                    prev_out = np.asarray(Image.open(path).convert("RGB"))
            else:
                prev_out = stylise_frame(pipe, frame, prev_in, prev_out, mode, size, **values)
                _write_frame(path, prev_out)
                if bar is not None:
                    bar.update(1)
            prev_in = frame
            frames += 1
            if frames % per == 0 and frames > end:
                _encode_segment(work, frames - per, k, src, info)
                end = frames
    except BaseException:  # a bad style image, Ctrl-C, ...: a work folder without frames resumes nothing
        if work.is_dir() and all(p.name == "job.json" for p in work.iterdir()):
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        decoded.close()  # ends the ffmpeg decoder of an interrupted run
        if bar is not None:
            bar.close()
    if frames == 0:
        raise ImageLoadError(src, "it has no frames", "video")
    if end < frames:
        _encode_segment(work, end, frames - 1, src, info)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=".tmp.mp4")
    os.close(fd)
    os.chmod(tmp, FILE_MODE)  # mkstemp makes it 0600; a finished video gets a plain file's mode
    try:
        note = _encode(work, src, Path(tmp), info)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    if note:
        print(f"warning: {src}: {note}", file=sys.stderr)
    return frames


def read_video_info(path) -> dict:
    """fps and frame count of a video (for tests and messages)."""
    info = probe_video(path)
    return {"fps": info.fps, "frames": info.frames, "size": info.size, "rotation": info.rotation,
            "audio": info.audio}


__all__ = ["VIDEO_EXTENSIONS", "TEMPORAL_BLEND", "SEGMENT_SECONDS", "VideoInfo", "is_video", "probe_video",
           "read_frames", "segment_frames", "stylise_frame", "translate_video", "video_output_name", "read_video_info"]
