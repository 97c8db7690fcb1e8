"""The small samples shipped in the repository's ``data/`` (data/README.md says what they are)."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError


def bundled_data(name: str = "horse2zebra") -> Path:
    """``data/<name>`` of the checkout styleforge runs from (or of the current directory)."""
    for base in (Path(__file__).resolve().parents[3] / "data", Path.cwd() / "data"):
        if (base / name).is_dir():
            return base / name
    raise DataError(f"bundled sample data/{name} not found: run from the repository checkout or give --data DIR")
