"""What a data layout gives each of its users, decided in one place: the keyword arguments a
split's dataset is built with (the trainer's training and sample sets), and a split's
*evaluation jobs*.

An evaluation job is one translation: the input (a file, or a paired layout's half as a PIL
image), the declared inputs it is given besides the image (a style image for the first
``reference`` input, K class images for the first ``images`` input), and a name for saved
files. With the jobs come the real images the outputs are scored against and a name for them.
``styleforge evaluate``, ``styleforge report`` and the trainer's periodic evaluation (the first
``train.eval_images`` jobs and reals) all take them from :func:`evaluation_jobs`, so a periodic
score is the score ``evaluate`` gives the same jobs. The inputs are files as they are, never
passed through a training transform: the pipeline sizes them as ``translate`` does.

This module knows no method: the declared inputs come in as the pipeline lists them (objects
with ``name``, ``kind``, ``multiple``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

from ..errors import DataError, EvaluationError
from .datasets import DIRECTIONS, build_dataset, detect_layout
from .images import list_images

PAIRED = ("paired_ab", "paired_folders")


def dataset_kwargs(data: dict, data_kind: str, data_options: Sequence[str] = ()) -> dict:
    """``build_dataset``'s keyword arguments from a config's ``data:`` section: ``serial`` for
    unpaired data, ``direction`` (which side of a pair is the input) for paired data, and the
    keys the method declares (``Method.data_options``: FUNIT's ``pairs``) when the dataset is
    its ``data_kind``."""
    kind = data["dataset"]
    kw = {"serial": data["serial"]} if kind == "unpaired" else {}
    if kind in PAIRED:
        kw["direction"] = data["direction"]
    if kind == data_kind:
        kw.update({key: data[key] for key in data_options})
    return kw


@dataclass
class EvalJob:
    """One translation of an evaluation: an input (file or PIL image), the inputs it is given
    besides the image (a style image, K class images), and a label for saved files."""

    image: object
    values: dict
    name: str
    done: bool = False  # translated (False: its input could not be read)


class EvalSplit(NamedTuple):
    jobs: list[EvalJob]
    reals: list          # files or PIL images, in the order of the jobs' targets
    real_name: str       # what the reals are, for the result and its table


def first_input(inputs, kind: str):
    """The first declared input of ``kind`` after the image (None if there is none)."""
    return next((i for i in list(inputs)[1:] if i.kind == kind), None)


def _images(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}")
    return list_images(folder, recursive=True)


def _content_style(data: Path, split: str, inputs, model: str) -> EvalSplit:
    ref = first_input(inputs, "reference")
    if ref is None:
        raise EvaluationError(f"{data} is a content/style dataset, and this {model} model takes no style image")
    ds = build_dataset("content_style", data, split, None, 0)
    jobs = [EvalJob(c, {ref.name: [s] if ref.multiple else s}, f"{c.stem}__{s.stem}")
            for c in ds.content_paths for s in ds.style_paths]
    return EvalSplit(jobs, list(ds.style_paths), str(ds.style_root))


def _class_folders(data: Path, split: str, inputs, model: str, shots: int) -> EvalSplit:
    """K-shot translation: for each class, its first ``shots`` images are the class images, the
    others its real images; the inputs are the first image of every other class."""
    imgs = first_input(inputs, "images")
    if imgs is None:
        raise EvaluationError(f"{data} has one folder per class, and this {model} model takes no class images")
    ds = build_dataset("class_folders", data, split, None, 0)
    by_class: dict[int, list[Path]] = {}
    for path, label in ds.samples:
        by_class.setdefault(label, []).append(path)
    jobs, reals = [], []
    for c, files in by_class.items():
        if len(files) <= shots:
            continue
        cls, real = files[:shots], files[shots:]
        reals += real
        for other, ofiles in by_class.items():
            if other != c:
                jobs.append(EvalJob(ofiles[0], {imgs.name: cls}, f"{ds.classes[c]}/{ofiles[0].stem}"))
    if not jobs:
        raise EvaluationError(f"{data}: no class has more than {shots} images (K class images + real ones) "
                              "and another class to translate from")
    return EvalSplit(jobs, reals, f"{data} ({len(by_class)} classes, {shots}-shot)")


def evaluation_jobs(data, inputs, direction: str | None, split: str = "test", shots: int = 5,
                    kind: str | None = None, data_kind: str | None = None, model: str = "model",
                    pair_input: str | None = None) -> EvalSplit:
    """The jobs and real images of ``data``'s ``split``, from its layout and the model's declared
    ``inputs``: unpaired (``{split}A/`` → ``{split}B/`` for ``AtoB``; ``test`` falls back to
    ``val``), paired (the input side against the target side of every pair), content and style
    folders (every content × style pair; the styles are the reals), or one folder per class
    (K-shot, ``shots`` class images).

    ``kind``: the layout (None: detected, else ``data_kind``, the method's own). ``direction``:
    the model's translation direction (None: ``AtoB``). ``pair_input``: which side of a pair is
    the input (a training config's ``data.direction``; None: ``direction`` when it names one).
    ``model`` names the model in errors.
    """
    data = Path(data)
    if kind is None:
        kind = detect_layout(data) if data.is_dir() else None
        if kind is None and data.is_dir():
            kind = data_kind
    if kind == "content_style":
        return _content_style(data, split, inputs, model)
    if kind == "class_folders":
        return _class_folders(data, split, inputs, model, shots)
    direction = direction or "AtoB"
    src, tgt = direction[0], direction[-1]
    if kind == "unpaired" or (data / f"{split}{src}").is_dir():
        for phase in (split, "val") if split == "test" else (split,):
            if (data / f"{phase}{src}").is_dir() and (data / f"{phase}{tgt}").is_dir():
                files = _images(data / f"{phase}{src}", f"{split} input")
                return EvalSplit([EvalJob(f, {}, f.stem) for f in files],
                                 _images(data / f"{phase}{tgt}", f"{split} target"), f"{data / f'{phase}{tgt}'}")
        raise EvaluationError(f"{data} has no {split}{src}/ and {split}{tgt}/ folders to evaluate {direction} on")
    if kind in PAIRED:
        from .transforms import to_pil

        side = pair_input or (direction if direction in DIRECTIONS else "AtoB")
        ds = build_dataset(kind, data, split, None, 0, direction=side)
        jobs, reals = [], []
        for i in range(len(ds)):
            item = ds[i]
            jobs.append(EvalJob(to_pil(item["A"]), {}, f"{i:05d}"))
            reals.append(to_pil(item["B"]))
        return EvalSplit(jobs, reals, f"{data}/{split} ({kind}, side {side[-1]})")
    raise EvaluationError(f"evaluating a model needs an unpaired (testA/ testB/), paired, content/style or "
                          f"class-folder test split; {data} looks like {kind or 'no known layout'}. Translate "
                          "the images yourself and use --real DIR --fake DIR")
