"""The catalogue of models by name (``zoo.yaml``: data, no code per model) and where pulled
models live. :mod:`styleforge.pull` fetches them; ``styleforge models`` lists them.

Where: ``$STYLEFORGE_WEIGHTS/models`` when that is set, else ``$XDG_CACHE_HOME/styleforge/models``
(``~/.cache/styleforge/models``), as for the VGG files (``nn/vgg.py``). ``$STYLEFORGE_MODELS_URL``
replaces every source's host: ``URL`` is fetched from ``$STYLEFORGE_MODELS_URL/HOST/PATH`` (a
mirror, or the tests' server on 127.0.0.1). This module imports nothing of styleforge but
errors.py: the card (and so every model directory writer) reads its ``methods`` table.
"""
from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .errors import ConfigError

CATALOGUE_FILE = Path(__file__).with_name("zoo.yaml")
URL_ENV = "STYLEFORGE_MODELS_URL"


@dataclass(frozen=True)
class Source:
    key: str
    page: str
    licence: str
    licence_id: str = "other"
    non_commercial: bool = False


@dataclass(frozen=True)
class Entry:
    """One model of the catalogue."""

    name: str                 # METHOD/NAME
    method: str               # the importer's name (vgg: a VGG file, kept as it is)
    source: Source
    what: str
    url: str | None = None
    member: str | None = None           # the file inside the downloaded archive
    sha256: str | None = None           # published digest or prefix
    kind: str = "model"                 # model | vgg
    options: dict = field(default_factory=dict)
    manual: dict | None = None          # {file, page}: no direct download
    packaged: str | None = None         # a weights.PACKAGED key
    size_mb: float | None = None
    size_estimated: bool = False        # size_mb counted from the parameters, not published

    @property
    def non_commercial(self) -> bool:
        return self.source.non_commercial

    @property
    def file_name(self) -> str:
        """The file the source calls it (the VGG folder keeps this name)."""
        if self.member:
            return self.member
        if self.manual:
            return self.manual["file"]
        return Path(urlsplit(self.url).path).name if self.url else self.name.split("/")[-1]

    @property
    def download_from(self) -> str:
        return self.url or (self.manual or {}).get("page") or self.source.page


@functools.lru_cache(maxsize=1)
def _data() -> dict:
    return yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))


def method_info(method: str) -> dict:
    """The catalogue's ``methods`` row: paper, paper_url, check ({} for a method it lacks)."""
    return dict(_data().get("methods", {}).get(method) or {})


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, Entry]:
    """Every entry of zoo.yaml by name, templates expanded (junyanz's named models)."""
    data = _data()
    sources = {k: Source(k, **v) for k, v in data["sources"].items()}
    out: dict[str, Entry] = {}
    for row in data["models"]:
        row = dict(row)
        template = row.pop("template", None)
        directions = row.pop("directions", {})
        rows = [row]
        if template:
            rows = []
            for n in data[f"{template}_names"]:
                r = dict(row, name=f"{template}/{n}", url=row["url"].format(n), what=row["what"].format(n))
                if n in directions:
                    r["options"] = {"direction": directions[n]}
                rows.append(r)
        for r in rows:
            r["source"] = sources[r["source"]]
            if r["name"] in out:
                raise ValueError(f"{CATALOGUE_FILE}: {r['name']} listed twice")
            out[r["name"]] = Entry(**r)
    return out


def close_names(name: str, cutoff: float = 0.5) -> list[str]:
    """Up to three catalogue names like ``name`` (a typo, or a bare ``horse2zebra``)."""
    cat = catalogue()
    close = difflib.get_close_matches(name, list(cat), n=3, cutoff=cutoff)
    if not close:  # a bare model name: horse2zebra -> cyclegan/horse2zebra
        close = [n for n in cat if n.split("/", 1)[1] == name.split("/")[-1]][:3]
    return close


def get(name: str) -> Entry:
    """The entry called ``name``, or a one-line ConfigError with the closest names."""
    cat = catalogue()
    if name in cat:
        return cat[name]
    close = close_names(name)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown model {name!r}{hint} ('styleforge models' lists them)")


# ---- where models live and where they come from ---------------------------------------------
def models_dirs() -> list[Path]:
    """Where pulled models are looked for: ``$STYLEFORGE_WEIGHTS/models``, then the cache. The
    first is where :func:`pull` writes."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "styleforge" / "models"
    if os.environ.get("STYLEFORGE_WEIGHTS"):
        return [Path(os.environ["STYLEFORGE_WEIGHTS"]).expanduser() / "models", cache]
    return [cache]


def source_url(url: str) -> str:
    """``url``, or its copy under ``$STYLEFORGE_MODELS_URL/HOST/PATH`` (the query dropped)."""
    base = os.environ.get(URL_ENV)
    if not base:
        return url
    parts = urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}"
