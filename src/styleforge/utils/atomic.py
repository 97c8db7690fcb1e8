"""Atomic file and directory writes: a reader sees the old content or the new, never a part.

Files are written under a temporary name in the target's folder (same file system), flushed to
disk and renamed into place. A folder is filled under a temporary name and renamed over the old
one (:func:`temp_dir_into`). A leaf module: it imports nothing else of styleforge.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# mkstemp/mkdtemp create 0600 files and 0700 folders; what we rename into place gets the modes
# a plain open()/mkdir() would have given (read once here: os.umask can only be read by setting it)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder in ``parent`` to fill and then rename into place (see :func:`replace_dir`)."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~_UMASK)
    return tmp


@contextlib.contextmanager
def naming(path) -> Iterator[None]:
    """Give an OSError raised inside without a file name (a write to a full disk reports none)
    the name of ``path``, so that its one-line message says which file could not be written."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(tmp_dir: Path, final: Path) -> None:
    """Move a fully written ``tmp_dir`` to ``final``, replacing what was there."""
    final = Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp_dir, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def temp_dir_into(final: Path) -> Iterator[Path]:
    """``with temp_dir_into(final) as tmp:`` fill ``tmp``; on a normal exit it replaces
    ``final`` (created with its parents if need be), on an exception it is removed and
    ``final`` is left as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final.parent, f".{final.name}.tmp-")
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
