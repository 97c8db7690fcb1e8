"""``styleforge prepare faces``: turn a folder of raw photos or portraits into training crops.

Each image goes through :class:`~styleforge.faces.pipeline.FacePreprocessor` (detect -> align
-> crop -> segment -> whiten) and is written as a PNG under ``out_dir`` at the same relative
path. Images without a usable face are listed in ``out_dir/rejected.tsv`` (relative path, tab,
reason) instead.

Resume: an image whose output already exists (``name.png`` or ``name_0.png``), or that ``rejected.tsv`` lists, is skipped, so
a second run over the same folders does no work; delete ``rejected.tsv`` (or pass
``retry_rejected``) to try the rejected ones again. Every file is written atomically (temp
file + rename), so an interrupted run leaves no half-written image; with several faces per
image (``policy="all"``: ``name_0.png``, ``name_1.png``, ...) ``name_0.png`` is written last
and marks the image as done.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, ImageLoadError
from .pipeline import FacePreprocessor, Rejection, choose_faces

REJECTS_FILE = "rejected.tsv"


@dataclass
class PrepareReport:
    written: int = 0
    """Images processed in this run (their outputs written)."""
    faces: int = 0
    """Crops written in this run."""
    skipped: int = 0
    """Images already done (output present) or already rejected by an earlier run."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Rejected in this run: relative path -> reason."""
    rejects_file: Path | None = None

    def summary(self) -> str:
        s = f"prepared {self.written} image(s) ({self.faces} face crop(s))"
        if self.skipped:
            s += f", skipped {self.skipped} done earlier"
        if self.rejected:
            s += f", rejected {len(self.rejected)} (see {self.rejects_file})"
        return s


def output_paths(out_dir: Path, rel: Path, n: int | None) -> list[Path]:
    """Output file(s) of the image at ``rel``: ``rel`` as PNG, or ``stem_i.png`` with ``n``
    faces (``n=None``: the first of those, whose presence marks the image as done)."""
    if n is None:
        return [out_dir / rel.with_suffix(".png")]
    return [out_dir / rel.with_name(f"{rel.stem}_{i}.png") for i in range(n)]


def read_rejects(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out = {}
    # the last piece is "" when the file ends with a newline; otherwise it is a line that an
    # interrupted append cut short: not trusted (that image is tried again)
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        line = line.rstrip("\r")
        if line and not line.startswith("#") and "\t" in line:
            name, reason = line.split("\t", 1)
            out[name] = reason
    return out


REJECTS_HEADER = "# image\treason (styleforge prepare faces)"


def write_rejects(path: Path, rejects: dict[str, str]) -> None:
    """Write the whole list, sorted, atomically (temp file + rename)."""
    from ..utils.atomic import atomic_write_text

    lines = [REJECTS_HEADER] + [f"{k}\t{v}" for k, v in sorted(rejects.items())]
    atomic_write_text(path, "\n".join(lines) + "\n")


class _RejectsLog:
    """``rejected.tsv`` during a run: one line appended (and flushed) per reject, so a rejection
    costs the same on a folder of a million images as on ten; a run cut short leaves at worst
    one partial last line, which :func:`read_rejects` ignores. ``start`` first rewrites the file
    (atomically) when ``retry_rejected`` clears it or when it does not end with a newline, so
    appends always begin a fresh line."""

    def __init__(self, path: Path):
        self.path, self.file = path, None

    def start(self, rejects: dict[str, str], clear: bool) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(size - 1)
            ends_cleanly = not size or f.read(1) == b"\n"
        if clear or not ends_cleanly:
            write_rejects(self.path, rejects)

    def add(self, key: str, reason: str) -> None:
        if self.file is None:
            new = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "a", encoding="utf-8", newline="\n")
            if new:
                self.file.write(REJECTS_HEADER + "\n")
        self.file.write(f"{key}\t{reason}\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def prepare_faces(in_dir, out_dir, preprocessor: FacePreprocessor | None = None, policy: str = "reject",
                  min_face: float = 64, several_ratio: float = 0.5, retry_rejected: bool = False,
                  progress: bool = True, log=None, overwrite: bool = False) -> PrepareReport:
    """Run the face preprocessing over every image under ``in_dir`` (recursively) into
    ``out_dir``; see the module docstring. ``policy``, ``min_face``, ``several_ratio``: see
    :func:`~styleforge.faces.pipeline.choose_faces`. ``log``: a stream that gets one line per
    rejected or unreadable image (None: only ``rejected.tsv``).
    ``overwrite``: no resume: every image is processed again (outputs replaced, ``rejected.tsv``
    started afresh)."""
    from tqdm import tqdm

    from ..data.images import list_images, load_rgb
    from ..utils.images import save_image_atomic

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = list_images(in_dir, recursive=True)
    out_abs, in_abs = out_dir.resolve(), in_dir.resolve()
    if out_abs == in_abs or in_abs in out_abs.parents:
        raise ConfigError(f"the output folder {out_dir} must not be inside the input folder {in_dir}")
    pre = preprocessor or FacePreprocessor()
    choose_faces([], policy)  # validates the policy before any work
    rejects_path = out_dir / REJECTS_FILE
    retry_rejected = retry_rejected or overwrite
    rejects = {} if retry_rejected else read_rejects(rejects_path)
    rejects_log = _RejectsLog(rejects_path)
    rejects_log.start(rejects, clear=retry_rejected)
    report = PrepareReport(rejects_file=rejects_path)
    several = policy == "all"
    todo = []
    for f in files:
        rel = f.relative_to(in_dir)
        key = rel.as_posix()
        # done under either naming (a folder first prepared with another --faces policy)
        if not overwrite and (key in rejects or any(p.exists() for p in (*output_paths(out_dir, rel, None), *output_paths(out_dir, rel, 1)))):
            report.skipped += 1
        else:
            todo.append((f, rel, key))
    bar = tqdm(todo, unit="img", disable=not progress or not todo, file=sys.stderr, desc="faces")

    def reject(key: str, reason: str) -> None:
        reason = " ".join(reason.split())  # one line of the file, as read back on resume
        rejects[key] = reason
        report.rejected[key] = reason
        rejects_log.add(key, reason)
        if log is not None:
            tqdm.write(f"rejected {key}: {reason}", file=log)
        bar.set_postfix(rejected=len(report.rejected), refresh=False)

    try:
        for f, rel, key in bar:
            try:
                image = load_rgb(f)
            except ImageLoadError as e:
                reject(key, f"unreadable ({e.reason})")
                continue
            arr = np.asarray(image)
            chosen = choose_faces(pre.detect(arr), policy, min_face=min_face, several_ratio=several_ratio)
            if isinstance(chosen, Rejection):
                reject(key, str(chosen))
                continue
            crops = [pre.crop(arr, face) for face in chosen]
            paths = output_paths(out_dir, rel, len(crops) if several else None)
            # the first path marks the image as done: write it last
            for crop, path in reversed(list(zip(crops, paths))):
                pixels = crop.image if crop.alpha is None else crop.whitened()
                save_image_atomic(Image.fromarray(pixels), path)
            report.written += 1
            report.faces += len(crops)
        rejects_log.close()
        if report.rejected:
            write_rejects(rejects_path, rejects)  # once, sorted (the appended lines are in run order)
    finally:
        rejects_log.close()
        bar.close()
    return report
