"""Extra ``styleforge`` subcommands, one module each, found by the CLI at start-up.

A module here defines ``register(sub)``, where ``sub`` is the argparse sub-parsers object; it
adds its parser(s) and sets ``func=handler`` with ``handler(args, overrides) -> int``. The core
commands (train, translate, import, demo, presets) live in ``styleforge.cli``. Keep the module
cheap to import: import torch and heavy libraries inside the handler.

This package's own module holds what several commands share: ``--out`` as a file or a folder,
the files that command-line inputs name (folders, globs, files) and each input's output name.
No command imports ``cli.py``.
"""
from __future__ import annotations

import glob
from pathlib import Path

from ..errors import ConfigError, DataError


def output_file(value, command: str, example: str, flag: str = "--out"):
    """``--out`` of a command that writes one file (export, evaluate, interpolate): a file path.
    An existing folder, or a path ending in a separator, is a one-line error naming the rule
    (every other command's ``--out`` is a folder: README, "Outputs")."""
    import os
    from pathlib import Path

    from ..errors import ConfigError

    text = str(value)
    if Path(text).is_dir() or text.endswith(("/", os.sep)):
        raise ConfigError(f"{flag} {text} is a folder; {command} writes one file: give its name "
                          f"(e.g. {flag} {Path(text) / example})")
    return Path(text)


def output_folder(value, command: str, flag: str = "--out"):
    """``--out`` of a command that writes several files: a folder (made if missing). An existing
    file is a one-line error naming the rule."""
    from pathlib import Path

    from ..errors import ConfigError

    p = Path(str(value))
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {value} is a file; {command} writes into a folder: give a folder "
                          f"(e.g. {flag} {p.with_suffix('')}/)")
    return p


def expand_inputs(items: list[str], flag: str | None = None, videos: bool = False) -> tuple[list[Path], bool]:
    """Files of ``items`` (folders: their images, and their videos with ``videos``; globs;
    files) and whether any item was a folder or a glob. ``flag`` names the option in errors
    (None: the command's inputs)."""
    from ..data.images import IMG_EXTENSIONS, list_images
    from ..video import VIDEO_EXTENSIONS

    exts = set(IMG_EXTENSIONS) | (set(VIDEO_EXTENSIONS) if videos else set())
    pre = f"{flag}: " if flag else ""
    files: list[Path] = []
    many = False
    for item in items:
        p = Path(item)
        if p.is_dir():
            # videos after the images, by name: translate sends them to the video path
            vids = sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS
                          and f.is_file() and not f.name.startswith(".")) if videos else []
            try:
                found = list_images(p) + vids
            except DataError:  # no images: a folder of videos only is fine
                if not vids:
                    raise
                found = vids
            if not found and flag:
                raise ConfigError(f"{flag}: no images in {p}")
            files += found
            many = True
        elif p.is_file():
            files.append(p)
        elif any(c in item for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            matches = [m for m in matches if m.is_file() and m.suffix.lower() in exts]
            if not matches:
                raise ConfigError(f"{pre}no images match {item}")
            files += matches
            many = True
        else:
            raise ConfigError(f"{pre}{'file' if flag else 'input'} not found: {item}")
    return files, many


def collect_inputs(items: list[str], videos: bool = False) -> list[Path]:
    """The files of a command's inputs (:func:`expand_inputs` without the flag)."""
    return expand_inputs(items, videos=videos)[0]


def output_name(src: Path) -> str:
    """The output file name of an input: its own name where its format can be written, else .png."""
    from ..data.images import IMG_EXTENSIONS

    writable = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
    ext = src.suffix.lower()
    return src.name if ext in writable and ext in IMG_EXTENSIONS else src.stem + ".png"
