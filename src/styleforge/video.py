"""Videos in, videos out: every frame through a pipeline, in order, at the source's frame rate.

imageio's FFMPEG plugin (the ffmpeg binary of the imageio-ffmpeg wheel) decodes frames as RGB
uint8 arrays — the colour order the pipeline expects (OpenCV would give BGR) — and encodes H.264
(yuv420p, so odd sides are padded to even by one pixel and cropped by players as usual). The
output is written under a temporary name beside the target and renamed when complete, so an
interrupted run leaves no half video under the output's name.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ConfigError, ImageLoadError, first_line
from .utils.atomic import FILE_MODE

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _imageio():
    try:
        import imageio.v2 as imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise ConfigError("videos need imageio and imageio-ffmpeg: pip install imageio imageio-ffmpeg") from None
    return imageio


def video_output_name(src: Path) -> str:
    return Path(src).stem + ".mp4"


def translate_video(pipe, src, dst, size: int | None = None, progress: bool = True, **values) -> int:
    """Translate every frame of ``src`` with ``pipe.run(frame, **values)`` into ``dst`` (H.264,
    the source's fps). Returns the number of frames. An unreadable video is an
    :class:`ImageLoadError` naming it."""
    imageio = _imageio()
    src, dst = Path(src), Path(dst)
    try:
        reader = imageio.get_reader(str(src), format="FFMPEG")
        meta = reader.get_meta_data()
    except Exception as e:  # not a video, truncated header, unknown codec
        raise ImageLoadError(src, f"not a readable video ({first_line(e, 120)})") from None
    fps = float(meta.get("fps") or 25.0)
    n_meta = meta.get("nframes")
    total = int(n_meta) if isinstance(n_meta, (int, float)) and n_meta == n_meta and n_meta < 1e9 else None
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=".tmp.mp4")
    os.close(fd)
    os.chmod(tmp, FILE_MODE)  # mkstemp makes it 0600; a finished video gets a plain file's mode
    frames = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc=src.name, file=sys.stderr, dynamic_ncols=True)
    writer = None
    try:
        writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                    macro_block_size=2, pixelformat="yuv420p", ffmpeg_log_level="error")
        try:
            for frame in reader:
                out = pipe.run(Image.fromarray(frame[..., :3]), size=size, **values)[0]["image"]
                writer.append_data(np.asarray(out))
                frames += 1
                if bar is not None:
                    bar.update(1)
        except (OSError, RuntimeError, IndexError) as e:
            if frames == 0:
                raise ImageLoadError(src, f"no frame could be decoded ({first_line(e, 120)})") from None
            print(f"note: {src}: decoding stopped after {frames} frame(s): {first_line(e, 120)}",
                  file=sys.stderr)
        writer.close()
        writer = None
        if frames == 0:
            raise ImageLoadError(src, "the video has no frames")
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        reader.close()
        if bar is not None:
            bar.close()
        Path(tmp).unlink(missing_ok=True)
    return frames


def read_video_info(path) -> dict:
    """fps and frame count of a video (for tests and messages)."""
    imageio = _imageio()
    with imageio.get_reader(str(path), format="FFMPEG") as r:
        meta = r.get_meta_data()
        n = sum(1 for _ in r)
    return {"fps": float(meta.get("fps") or 0), "frames": n, "size": tuple(meta.get("size") or ())}


__all__ = ["VIDEO_EXTENSIONS", "is_video", "translate_video", "video_output_name", "read_video_info"]
