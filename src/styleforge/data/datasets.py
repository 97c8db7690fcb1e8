"""Datasets for the folder layouts people already use.

Every dataset is a ``torch.utils.data.Dataset`` of dicts and shares three rules:

**Per-sample randomness.** ``dataset[idx]`` draws everything random (the partner image of an
unpaired sample, crops, flips) from ``numpy.random.default_rng([seed, epoch, idx])``; the epoch
is set with :meth:`set_epoch`. No global random state is used, so a sample is the same whatever
DataLoader worker reads it and in whatever order, which is what lets training resume exactly.

**Bad files never crash an epoch.** At construction every file is checked cheaply
(:func:`~styleforge.data.images.check_image`: the header, plus a full decode of JPEGs/PNGs
whose end marker is missing). Files that fail are left out. A file that only fails when it is
fully decoded is reported when first met and the sample is replaced, deterministically, by the
next index (``idx + 1``, wrapping), so a batch is always full. ``dataset.skipped`` lists
``(path, reason)`` of the files left out: all construction-time ones, plus the decode-time
failures met in this process (DataLoader workers keep their own copy).

**Reporting.** Problems are reported with the :mod:`logging` logger ``"styleforge.data"`` at
WARNING level, one line per file (``skipping PATH: REASON``), plus one summary line per folder
(``skipped N of M file(s) in FOLDER``). With no logging configured, Python prints these lines on
stderr. A decode-time failure is reported once per process. A missing or empty folder, or a
folder that does not have the expected layout, is a :class:`~styleforge.errors.DataError`
naming it.

Paired datasets take ``direction``: with ``"BtoA"`` the two sides are swapped, so ``"A"`` is
always the model's input.
"""
from __future__ import annotations

import inspect
import logging
import operator
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError, ImageLoadError
from .images import check_image, image_size, is_image_file, list_images, load_rgb
from .transforms import Transform, to_tensor

log = logging.getLogger("styleforge.data")

DATASET_KINDS = ("unpaired", "paired_ab", "paired_folders", "single", "content_style", "class_folders")
DIRECTIONS = ("AtoB", "BtoA")
_PHASES = ("train", "test", "val")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _layout_error(root: Path, kind: str, expected: str) -> DataError:
    guess = detect_layout(root)
    hint = f" (it looks like {_article(guess)} {guess} dataset)" if guess and guess != kind else ""
    return DataError(f"{root} does not look like {_article(kind)} {kind} dataset: {expected}{hint}")


def _require_dir(path: Path, what: str = "dataset folder") -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if not path.is_dir():
        raise DataError(f"{what} is not a folder: {path}")
    return path


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
    return direction


class ImageDataset(Dataset):
    """Base class: seed/epoch bookkeeping, the readability checks, replacement of bad samples.

    Subclasses implement ``__len__`` and ``_get(idx, rng) -> dict``.
    """

    root: Path

    def __init__(self, transform: Transform | None = None, seed: int = 0):
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.skipped: list[tuple[str, str]] = []
        self._bad: dict[str, str] = {}  # decode-time failures met in this process

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``__getitem__`` makes."""
        self.epoch = int(epoch)

    def rng(self, idx: int) -> np.random.Generator:
        """The generator sample ``idx`` of the current epoch draws from."""
        return np.random.default_rng([self.seed, self.epoch, int(idx)])

    # ---- readability -------------------------------------------------------------------
    def _skip(self, path, reason: str) -> None:
        self.skipped.append((str(path), reason))
        log.warning("skipping %s: %s", path, reason)

    def _readable(self, path: Path) -> bool:
        try:
            check_image(path)
            return True
        except ImageLoadError as e:
            self._skip(path, e.reason)
            return False

    def _summary(self, n_bad: int, n_all: int, where) -> None:
        if n_bad:
            log.warning("skipped %d of %d file(s) in %s (unreadable)", n_bad, n_all, where)

    def _readable_images(self, folder: Path, recursive: bool = False) -> list[Path]:
        """``list_images(folder)`` without the unreadable files (each reported once)."""
        paths = list_images(folder, recursive=recursive)
        good = [p for p in paths if self._readable(p)]
        self._summary(len(paths) - len(good), len(paths), folder)
        if not good:
            raise DataError(f"no readable images in {folder} ({len(paths)} file(s), all unreadable)")
        return good

    def _load(self, path: Path) -> Image.Image:
        known = self._bad.get(str(path))
        if known is not None:
            raise ImageLoadError(path, known)
        return load_rgb(path)

    def _tensor(self, images, rng: np.random.Generator):
        if self.transform is not None:
            return self.transform(images, rng)
        if isinstance(images, Image.Image):
            return to_tensor(images)
        return [to_tensor(im) for im in images]

    # ---- Dataset -----------------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _get(self, idx: int, rng: np.random.Generator) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, idx) -> dict:
        n = len(self)
        idx = operator.index(idx)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} out of range for a dataset of {n} samples")
        rng = self.rng(idx)
        for attempt in range(n):
            j = (idx + attempt) % n
            try:
                return self._get(j, rng)
            except ImageLoadError as e:
                if e.path not in self._bad:
                    self._bad[e.path] = e.reason
                    self._skip(e.path, f"{e.reason}; its samples are replaced by the next ones")
        raise DataError(f"no readable images left in {self.root}: all {n} samples failed to load")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, {len(self)} samples, seed={self.seed})"


class UnpairedDataset(ImageDataset):
    """CycleGAN layout ``root/{phase}A/`` and ``root/{phase}B/``.

    Length is ``max(len(A), len(B))``; sample ``idx`` is ``A[idx % len(A)]`` with a random B
    (``rng.integers(len(B))``), or ``B[idx % len(B)]`` when ``serial``, as in the CycleGAN
    code. A and B get independent crops and flips. Returns ``{"A", "B", "A_path", "B_path"}``.
    """

    def __init__(self, root, phase: str = "train", transform: Transform | None = None,
                 seed: int = 0, serial: bool = False):
        super().__init__(transform, seed)
        self.root = _require_dir(root)
        self.phase = phase
        dir_a, dir_b = self.root / f"{phase}A", self.root / f"{phase}B"
        if not (dir_a.is_dir() and dir_b.is_dir()):
            raise _layout_error(self.root, "unpaired", f"expected {phase}A/ and {phase}B/ folders")
        self.A_paths = self._readable_images(dir_a)
        self.B_paths = self._readable_images(dir_b)
        self.serial = bool(serial)

    def __len__(self) -> int:
        return max(len(self.A_paths), len(self.B_paths))

    def _get(self, idx, rng):
        a = self.A_paths[idx % len(self.A_paths)]
        if self.serial:
            b = self.B_paths[idx % len(self.B_paths)]
        else:
            b = self.B_paths[int(rng.integers(len(self.B_paths)))]
        img_a, img_b = self._load(a), self._load(b)
        return {"A": self._tensor(img_a, rng), "B": self._tensor(img_b, rng),
                "A_path": str(a), "B_path": str(b)}


class PairedABDataset(ImageDataset):
    """pix2pix layout: ``root/{phase}/*.jpg``, each image A (left half) | B (right half).

    The halves get the same crop and flip. Returns ``{"A", "B", "A_path", "B_path"}`` (both
    paths are the combined file); ``direction="BtoA"`` swaps the halves.
    """

    def __init__(self, root, phase: str = "train", transform: Transform | None = None,
                 seed: int = 0, direction: str = "AtoB"):
        super().__init__(transform, seed)
        self.root = _require_dir(root)
        self.phase = phase
        self.direction = _check_direction(direction)
        folder = self.root / phase
        if not folder.is_dir():
            raise _layout_error(self.root, "paired_ab",
                                f"expected a {phase}/ folder of images with A and B side by side")
        self.paths = self._readable_images(folder)

    def __len__(self) -> int:
        return len(self.paths)

    def _get(self, idx, rng):
        path = self.paths[idx]
        img = self._load(path)
        w, h = img.size
        if w < 2:
            raise ImageLoadError(path, f"{w}x{h} image is too narrow to split into A|B halves")
        half = w // 2
        a, b = img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))
        ta, tb = self._tensor([a, b], rng)
        if self.direction == "BtoA":
            ta, tb = tb, ta
        return {"A": ta, "B": tb, "A_path": str(path), "B_path": str(path)}


class PairedFolderDataset(ImageDataset):
    """``root/{phase}/A/`` + ``root/{phase}/B/`` (or ``root/A/`` + ``root/B/`` when there is no
    phase level), paired by file name without extension (``x.jpg`` with ``x.png``).

    Files without a partner are left out with one warning line giving their count. Both images
    of a pair get the same crop and flip (B is resized to A's size first if they differ).
    Returns ``{"A", "B", "A_path", "B_path"}``; ``direction="BtoA"`` swaps the sides.
    """

    def __init__(self, root, phase: str = "train", transform: Transform | None = None,
                 seed: int = 0, direction: str = "AtoB"):
        super().__init__(transform, seed)
        self.root = _require_dir(root)
        self.phase = phase
        self.direction = _check_direction(direction)
        base = paired_folders_base(self.root, phase)
        if base is None:
            raise _layout_error(self.root, "paired_folders",
                                f"expected {phase}/A/ and {phase}/B/ folders (or A/ and B/)")
        dir_a, dir_b = base / "A", base / "B"
        files_a, files_b = list_images(dir_a), list_images(dir_b)
        stems_a, stems_b = _by_stem(files_a), _by_stem(files_b)
        common = sorted(set(stems_a) & set(stems_b))
        if not common:
            raise DataError(f"no image in {dir_a} has a partner with the same name in {dir_b} "
                            f"({len(files_a)} and {len(files_b)} images; files pair by name "
                            f"without extension)")
        unmatched = len(files_a) + len(files_b) - 2 * len(common)
        if unmatched:
            log.warning("%d unmatched file(s) in %s and %s (no file of the same name in the other "
                        "folder) are not used", unmatched, dir_a, dir_b)
        self.pairs: list[tuple[Path, Path]] = []
        n_bad = 0
        for stem in common:
            pa, pb = stems_a[stem], stems_b[stem]
            ok_a, ok_b = self._readable(pa), self._readable(pb)
            n_bad += (not ok_a) + (not ok_b)
            if ok_a and ok_b:
                self.pairs.append((pa, pb))
        self._summary(n_bad, 2 * len(common), base)
        if not self.pairs:
            raise DataError(f"no readable image pairs in {base}")

    def __len__(self) -> int:
        return len(self.pairs)

    def _get(self, idx, rng):
        pa, pb = self.pairs[idx]
        ta, tb = self._tensor([self._load(pa), self._load(pb)], rng)
        if self.direction == "BtoA":
            ta, tb, pa, pb = tb, ta, pb, pa
        return {"A": ta, "B": tb, "A_path": str(pa), "B_path": str(pb)}


def _by_stem(files: list[Path]) -> dict[str, Path]:
    """stem -> file; for duplicate stems (``x.jpg`` and ``x.png``) the first by name wins."""
    out: dict[str, Path] = {}
    for f in files:
        out.setdefault(f.stem, f)
    return out


class SingleFolderDataset(ImageDataset):
    """All images of one folder (``recursive``: and its subfolders) -> ``{"image", "path"}``."""

    def __init__(self, folder, transform: Transform | None = None, seed: int = 0,
                 recursive: bool = False):
        super().__init__(transform, seed)
        self.root = _require_dir(folder, "image folder")
        self.paths = self._readable_images(self.root, recursive=recursive)

    def __len__(self) -> int:
        return len(self.paths)

    def _get(self, idx, rng):
        path = self.paths[idx]
        return {"image": self._tensor(self._load(path), rng), "path": str(path)}


class ContentStyleDataset(ImageDataset):
    """Content images, each with a random style image (style transfer, e.g. AdaIN).

    Length is the number of content images; sample ``idx`` is content ``idx`` with style
    ``rng.integers(len(styles))``. ``style_transform`` defaults to ``transform``. Returns
    ``{"content", "style", "content_path", "style_path"}``.
    """

    def __init__(self, content_dir, style_dir, transform: Transform | None = None, seed: int = 0,
                 style_transform: Transform | None = None):
        super().__init__(transform, seed)
        self.root = _require_dir(content_dir, "content folder")
        self.style_root = _require_dir(style_dir, "style folder")
        self.style_transform = style_transform if style_transform is not None else transform
        self.content_paths = self._readable_images(self.root)
        self.style_paths = self._readable_images(self.style_root)

    def __len__(self) -> int:
        return len(self.content_paths)

    def _get(self, idx, rng):
        c = self.content_paths[idx]
        s = self.style_paths[int(rng.integers(len(self.style_paths)))]
        img_c, img_s = self._load(c), self._load(s)
        content = self._tensor(img_c, rng)
        style = self.style_transform(img_s, rng) if self.style_transform is not None else to_tensor(img_s)
        return {"content": content, "style": style, "content_path": str(c), "style_path": str(s)}


class ClassFolderDataset(ImageDataset):
    """One subfolder of images per class (``root/<class>/*.jpg``), e.g. for FUNIT.

    ``classes`` are the subfolder names (sorted) that hold readable images; ``label`` is the
    index into it. Subfolders without images are left out with a warning. Returns
    ``{"image", "label", "path"}``; with ``pairs`` also a second sample drawn at random
    (``rng.integers(len)``, any class, its own crop and flip) as ``{"class_image",
    "class_label", "class_path"}``: FUNIT's content image and class image, which its authors
    draw from two independently shuffled loaders over the same list.
    """

    def __init__(self, root, transform: Transform | None = None, seed: int = 0, pairs: bool = False):
        super().__init__(transform, seed)
        self.pairs = bool(pairs)
        self.root = _require_dir(root)
        subdirs = _subdirs(self.root)
        if not subdirs:
            raise _layout_error(self.root, "class_folders", "expected one subfolder of images per class")
        self.classes: list[str] = []
        self.samples: list[tuple[Path, int]] = []
        n_bad = n_all = 0
        for d in subdirs:
            files = [p for p in sorted(d.iterdir(), key=lambda p: p.name) if is_image_file(p) and p.is_file()]
            if not files:
                log.warning("class folder %s has no images; left out", d)
                continue
            good = [p for p in files if self._readable(p)]
            n_bad, n_all = n_bad + len(files) - len(good), n_all + len(files)
            if not good:
                log.warning("class folder %s has no readable images; left out", d)
                continue
            label = len(self.classes)
            self.classes.append(d.name)
            self.samples += [(p, label) for p in good]
        self._summary(n_bad, n_all, self.root)
        if not self.samples:
            raise DataError(f"no images in the class folders of {self.root}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _get(self, idx, rng):
        path, label = self.samples[idx]
        out = {"image": self._tensor(self._load(path), rng), "label": label, "path": str(path)}
        if self.pairs:
            other, other_label = self.samples[int(rng.integers(len(self.samples)))]
            out.update(class_image=self._tensor(self._load(other), rng), class_label=other_label,
                       class_path=str(other))
        return out


# ---- layouts ---------------------------------------------------------------------------
def _subdirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: d.name)


def _has_images(folder: Path) -> bool:
    try:
        return any(is_image_file(p) and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def _side_by_side(folder: Path, n: int = 3) -> bool:
    """Do the first ``n`` readable images of ``folder`` look like A|B pairs (about 2:1)?"""
    seen = 0
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if not (is_image_file(p) and p.is_file()):
            continue
        try:
            w, h = image_size(p)
        except ImageLoadError:
            continue
        if not 1.8 <= w / h <= 2.2:
            return False
        seen += 1
        if seen == n:
            break
    return seen > 0


def paired_folders_base(root: Path, phase: str) -> Path | None:
    """The folder holding ``A/`` and ``B/`` for ``phase`` (``root/phase`` or ``root``)."""
    root = Path(root)
    for base in (root / phase, root):
        if (base / "A").is_dir() and (base / "B").is_dir():
            return base
    return None


def detect_layout(root) -> str | None:
    """Guess the dataset kind of the folder ``root`` (None if it is not one of them).

    ``trainA/``+``trainB/`` (or ``testA/``+``testB/``) -> ``unpaired``; ``A/``+``B/`` (at the
    top or under ``train/``, ``test/``, ``val/``) -> ``paired_folders``; ``content/``+``style/``
    -> ``content_style``; ``train/`` (or ``test/``, ``val/``) of about 2:1 images ->
    ``paired_ab``; two or more subfolders of images -> ``class_folders``; images directly in
    the folder (or in ``train/``) -> ``single``.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    isdir = lambda *p: root.joinpath(*p).is_dir()  # noqa: E731
    if any(isdir(f"{ph}A") and isdir(f"{ph}B") for ph in _PHASES):
        return "unpaired"
    if any(paired_folders_base(root, ph) is not None for ph in _PHASES):
        return "paired_folders"
    if isdir("content") and isdir("style"):
        return "content_style"
    for ph in _PHASES:
        if isdir(ph) and _has_images(root / ph) and _side_by_side(root / ph):
            return "paired_ab"
    for base in [root] + [root / ph for ph in _PHASES if isdir(ph)]:
        if sum(_has_images(d) for d in _subdirs(base)) >= 2:
            return "class_folders"
    if _has_images(root) or any(isdir(ph) and _has_images(root / ph) for ph in _PHASES):
        return "single"
    return None


# ---- factory ---------------------------------------------------------------------------
def _phase_dir(root: Path, phase: str, need_subdirs: bool = False) -> Path:
    cand = root / phase
    if cand.is_dir() and (not need_subdirs or _subdirs(cand)):
        return cand
    return root


def _content_style(root: Path, phase: str, transform, seed, content_dir=None, style_dir=None,
                   style_transform=None):
    if content_dir is None or style_dir is None:
        base = root / phase if (root / phase / "content").is_dir() else root
        if not ((base / "content").is_dir() and (base / "style").is_dir()):
            raise _layout_error(root, "content_style", "expected content/ and style/ folders")
        content_dir = content_dir or base / "content"
        style_dir = style_dir or base / "style"
    return ContentStyleDataset(content_dir, style_dir, transform, seed, style_transform=style_transform)


_FACTORY = {
    "unpaired": lambda root, phase, tf, seed, **kw: UnpairedDataset(root, phase, tf, seed, **kw),
    "paired_ab": lambda root, phase, tf, seed, **kw: PairedABDataset(root, phase, tf, seed, **kw),
    "paired_folders": lambda root, phase, tf, seed, **kw: PairedFolderDataset(root, phase, tf, seed, **kw),
    "single": lambda root, phase, tf, seed, **kw: SingleFolderDataset(_phase_dir(root, phase), tf, seed, **kw),
    "content_style": _content_style,
    "class_folders": lambda root, phase, tf, seed, **kw: _class_folders(root, phase, tf, seed, **kw),
}


def _class_folders(root: Path, phase: str, transform, seed, **kw):
    # trainA/ trainB/ testA/ testB/ are domains and splits, not classes: training on them as four
    # classes would also train on the test images
    if detect_layout(root) in ("unpaired", "paired_folders", "paired_ab", "content_style"):
        raise _layout_error(root, "class_folders", "expected one subfolder of images per class "
                            "(or train/<class>/ and test/<class>/)")
    return ClassFolderDataset(_phase_dir(root, phase, need_subdirs=True), transform, seed, **kw)
_OPTIONS = {
    "unpaired": UnpairedDataset, "paired_ab": PairedABDataset, "paired_folders": PairedFolderDataset,
    "single": SingleFolderDataset, "content_style": _content_style, "class_folders": ClassFolderDataset,
}
_POSITIONAL = {"root", "folder", "content_dir", "style_dir", "phase", "transform", "seed", "self"}


def dataset_options(kind: str) -> list[str]:
    """Extra keyword arguments ``build_dataset`` accepts for ``kind``."""
    params = inspect.signature(_OPTIONS[kind]).parameters
    opts = [p for p in params if p not in _POSITIONAL]
    if kind == "content_style":
        opts = ["content_dir", "style_dir"] + opts
    return opts


def build_dataset(kind: str, root, phase: str = "train", transform: Transform | None = None,
                  seed: int = 0, **kw) -> ImageDataset:
    """Dataset of ``kind`` (one of :data:`DATASET_KINDS`) for ``root`` and ``phase``.

    ``single`` and ``class_folders`` use ``root/phase`` when it exists, else ``root``;
    ``content_style`` uses ``content/`` and ``style/`` under ``root/phase`` or ``root`` unless
    ``content_dir``/``style_dir`` are given. Extra keyword arguments go to the dataset class
    (``serial`` for unpaired, ``direction`` for the paired kinds, ...).
    """
    if kind not in _FACTORY:
        raise ConfigError(f"unknown dataset kind {kind!r}; choose one of: {', '.join(DATASET_KINDS)}")
    if root is None or str(root) == "":
        raise DataError(f"no dataset folder given for the {kind} dataset")
    allowed = dataset_options(kind)
    extra = sorted(set(kw) - set(allowed))
    if extra:
        raise ConfigError(f"dataset kind {kind} takes no option {extra[0]!r}"
                          f" (options: {', '.join(allowed) or 'none'})")
    root = _require_dir(Path(root))
    return _FACTORY[kind](root, phase, transform, seed, **kw)


__all__ = [
    "DATASET_KINDS", "ImageDataset", "UnpairedDataset", "PairedABDataset", "PairedFolderDataset",
    "SingleFolderDataset", "ContentStyleDataset", "ClassFolderDataset", "build_dataset",
    "detect_layout", "dataset_options",
]
