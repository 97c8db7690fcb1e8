"""What several commands share (no command of its own): ``--out`` as a file or a folder, the
files that command-line inputs name (folders, globs, files) and each input's output name. It
also turns a model's declared inputs (``methods.base.Input``) into flags and the parsed flags
back into values, for every command that takes them.
"""
from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path

from ..errors import ConfigError, DataError


_REST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain_text(text: str | None) -> str | None:
    """Help text without reST markup: ``x`` and :func:`x` -> x (descriptions reuse docstrings)."""
    if not text:
        return text
    return _REST_ROLE.sub(r"\1", text).replace("``", "")


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


# ---- a model's declared inputs as flags (translate, stylize, cartoonize, export) -------
class ModelParser(argparse.ArgumentParser):
    """Errors as one line (the CLI prints ``error: ...``), not usage + message; an unknown flag
    names the model's own flags and the closest one."""

    model_flags: tuple = ()
    model_name = ""

    def error(self, message):
        raise ConfigError(message)

    def parse_args(self, args=None, namespace=None):
        ns, unknown = self.parse_known_args(args, namespace)
        if unknown:
            import difflib

            bad = next((u.split("=")[0] for u in unknown if u.startswith("-")), unknown[0])
            flags = [a for action in self._actions for a in action.option_strings]
            close = difflib.get_close_matches(bad, [f for f in flags if f not in ("-h", "--help")], n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            own = f"; this {self.model_name} model's inputs: {', '.join(self.model_flags) or 'none'}" \
                if self.model_name else ""
            raise ConfigError(f"{bad}: no such option{hint}{own}")
        return ns


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def input_help(inp, inputs=()) -> str:
    text = inp.help or inp.kind
    if inp.kind in ("float", "int", "floats") and (inp.min is not None or inp.max is not None):
        lo = "-inf" if inp.min is None else f"{inp.min:g}"
        hi = "inf" if inp.max is None else f"{inp.max:g}"
        text += f" (range [{lo}, {hi}])"
    if inp.kind == "choice":
        text += f" (one of: {', '.join(map(str, inp.choices))})"
    if inp.default is not None and inp.kind not in ("reference", "images", "mask"):
        text += f"; default {inp.default}"
    if inp.required:
        text += "; required" + "".join(f" unless {flag_name(j.name)} is given" for j in inputs
                                        if j.replaces == inp.name)
    return text.replace("%", "%%")


def add_declared_flags(group, inputs, all_inputs=(), dest: str = "in_") -> dict[str, str]:
    """One flag per declared input of ``inputs`` (``methods.base.Input``) on ``group``, the value
    at ``args.<dest><name>``: ``--style FILE...`` for a reference image (several files or a
    folder: a grid), ``--class-images DIR`` for K images, ``--mask FILE``, ``--alpha X`` for a
    number, ``--weights X X`` for several, ``--direction CHOICE`` for a choice (one with nothing
    to choose is accepted, not listed), ``--preserve-color/--no-...`` for a flag, ``--NAME FILE``
    for a file (a weights file a method is built with); the help is the input's own, with its range, choices and
    default (``all_inputs``: the inputs that may replace a required one). Returns {input name:
    flag}. ``translate``, ``stylize`` and ``cartoonize`` build their model flags with it, and
    ``export`` the flags of the inputs it fixes in the file, so no command writes a method's flag
    by hand."""
    labels = {}
    for inp in inputs:
        flag = flag_name(inp.name)
        labels[inp.name] = flag
        kw = {"dest": f"{dest}{inp.name}", "help": input_help(inp, all_inputs)}
        if inp.kind == "choice" and len(inp.choices) < 2:
            kw["help"] = argparse.SUPPRESS  # nothing to choose (a one-direction model): accepted, not listed
        if inp.kind in ("mask", "file") and not inp.multiple:
            group.add_argument(flag, metavar="FILE", **kw)
        elif inp.kind == "reference" and not inp.multiple:
            group.add_argument(flag, nargs="+", metavar="FILE", **kw)  # several files or a folder: a grid
        elif inp.kind in ("reference", "images", "mask", "code", "floats"):
            metavar = {"floats": "X", "code": "FILE_OR_X"}.get(inp.kind, "FILE")
            group.add_argument(flag, nargs="+", metavar=metavar, **kw)
        elif inp.kind == "flag":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, **kw)
        else:
            group.add_argument(flag, metavar=inp.kind.upper() if inp.kind != "choice" else "CHOICE", **kw)
    return labels


def listed_flags(*groups) -> tuple[str, ...]:
    """The flags ``groups`` (argument groups) list in ``--help``: a parser's ``model_flags``,
    which an unknown flag's error names (a flag with nothing to choose is accepted, not listed)."""
    return tuple(a for g in groups for action in g._group_actions for a in action.option_strings
                 if action.help != argparse.SUPPRESS)


def readable(files: list[Path], flag: str, require: bool = True) -> list[Path]:
    """The files that can be read; each one that cannot is skipped with one line naming ``flag``
    (``require``: none readable is an error)."""
    from ..data.images import check_image
    from ..errors import ImageLoadError

    good = []
    for f in files:
        try:
            check_image(f)
            good.append(f)
        except ImageLoadError as e:
            print(f"skipped ({flag}): {e}", file=sys.stderr)
    if not good and require:
        raise ConfigError(f"{flag}: none of the {len(files)} file(s) can be read")
    return good


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def input_values(args, pipe, labels: dict) -> tuple[dict, dict]:
    """(values fixed for every input, grid of values to combine per input) from the parsed flags."""
    values: dict = {}
    grid: dict = {}
    for inp in pipe.inputs[1:]:
        raw = getattr(args, f"in_{inp.name}", None)
        if raw is None:
            continue
        flag = labels[inp.name]
        if inp.kind == "reference":
            files, many = expand_inputs(raw, flag)
            if inp.multiple and not many:
                values[inp.name] = files  # used together: a blend
            elif len(files) == 1 and not many:
                values[inp.name] = files[0]
            else:
                files = readable(files, flag)
                grid[inp.name] = [[f] if inp.multiple else f for f in files]
        elif inp.kind == "images":
            files, _ = expand_inputs(raw, flag)
            k = getattr(args, "shots", None)
            if k is not None:
                if k < 1:
                    raise ConfigError(f"--shots must be at least 1, got {k}")
                if k > len(files):
                    raise ConfigError(f"--shots {k} is more than the {len(files)} image(s) given to {flag}")
                files = files[:k]
            values[inp.name] = files
        elif inp.kind == "mask":
            files, _ = expand_inputs(raw if isinstance(raw, list) else [raw], flag)
            if not inp.multiple and len(files) != 1:
                raise ConfigError(f"{flag} takes one mask, got {len(files)}")
            values[inp.name] = files if inp.multiple else files[0]
        elif inp.kind == "code":
            nums = [x for r in raw for x in r.replace(",", " ").split()]
            if nums and all(_is_number(x) for x in nums):  # X X ... or X,X,...
                values[inp.name] = [float(x) for x in nums]
            elif len(raw) == 1:
                files, many = expand_inputs(raw, flag)
                if many or len(files) > 1:
                    grid[inp.name] = files
                else:
                    values[inp.name] = files[0]
            else:
                files, _ = expand_inputs(raw, flag)
                grid[inp.name] = files
        else:
            from ..pipeline import check_value

            values[inp.name] = check_value(inp, raw, flag)
    if getattr(args, "shots", None) is not None and not any(i.kind == "images" for i in pipe.inputs):
        raise ConfigError("--shots: this model takes no K images")
    return values, grid
