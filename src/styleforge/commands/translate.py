"""``styleforge translate MODEL INPUTS... --out DIR`` and ``styleforge stylize CONTENT... --style
STYLE... --out DIR``: the model's declared inputs become flags.

The flags are built from ``pipe.inputs`` once the model is loaded (``styleforge translate MODEL
--help`` lists them with each input's help and range): ``--style FILE...`` for a reference
image, ``--class-images DIR`` (+ ``--shots K``) for K images, ``--mask FILE``, ``--alpha 0.5``
for a number, ``--weights 0.3 0.7`` for several, ``--direction BtoA`` / ``--group men`` for a
choice, ``--preserve-color`` / ``--no-preserve-color`` for a flag, ``--seed N``, ``--num-outputs
N`` where there is a random code or seed, ``--heatmaps`` for an optional output. A reference
input given a folder, a glob or (for a single-image input) several files makes the
content×style grid (``CONTENT__STYLE.EXT``); files given to a several-image input are used
together (a blend). Every bad value is a one-line error naming the flag. ``stylize --method
PRESET`` adds the flags the method's class declares for building it (``Method.preset_inputs``: a
weights file, a feature network), read before the method is built. The flags are made by
``commands.add_declared_flags`` (shared with ``cartoonize``): none is written here by hand.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import replace
import sys
from pathlib import Path

from ..errors import ConfigError
from ..video import is_video
from .inputs import ModelParser, add_declared_flags, flag_name, input_help, input_values, listed_flags, readable  # noqa: F401

GENERIC_HELP = ("The flags of the model's own inputs (style image, alpha, direction, ...) are listed "
                "by 'styleforge translate MODEL --help'.")


def _add_common(p: argparse.ArgumentParser, with_inputs: bool = True) -> None:
    if with_inputs:
        p.add_argument("inputs", nargs="+", help="image files, folders or globs")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--size", type=int, help="resize the longer side to this before translating "
                   "(the output keeps the original size)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--resume", action="store_true", help="keep the outputs an interrupted run finished "
                   "and translate the rest")
    p.add_argument("--batch-size", type=int, help="images of equal size per forward pass (default on CPU with "
                   "--runtime auto: 1, 2 or 4, measured fastest per image for 64 or more images of one size and "
                   "cached; else 1 on CPU, 8 on GPU)")
    p.add_argument("--block-size", type=int, help="consecutive jobs read together and grouped by size "
                   "(default 4 × batch size)")
    p.add_argument("--workers", type=int, help="image-decoding processes (default min(4, CPUs))")
    p.add_argument("--bf16", action="store_true", help="run the network under bf16 autocast (faster on "
                   "CPUs with AVX-512 BF16/AMX and on GPUs; outputs differ by bf16 rounding)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=True,
                   help="videos: remove flicker using the optical flow between frames (a network's output "
                   "blended with the previous output moved along the flow; an optimisation started from it, "
                   "with a temporal loss); --no-temporal: each frame on its own (default: on)")


def add_input_flags(p: argparse.ArgumentParser, pipe) -> dict[str, str]:
    """One flag per declared input of ``pipe`` (:func:`add_declared_flags`), ``--shots`` for K
    images, ``--num-outputs`` for a stochastic model, one per optional output; returns {input
    name: flag} for error messages."""
    group = p.add_argument_group(f"inputs of this {pipe.method.method_name} model")
    labels = add_declared_flags(group, pipe.inputs[1:], pipe.inputs)
    images = [i for i in pipe.inputs if i.kind == "images"]
    if len(images) == 1:
        labels["shots"] = "--shots"
        group.add_argument("--shots", type=int, help=f"use the first K images of {flag_name(images[0].name)} "
                           "(default: all of them)")
    if pipe.stochastic:
        labels["num_outputs"] = "--num-outputs"
        group.add_argument("--num-outputs", type=int, default=1, help="outputs per input, NAME_k.EXT, "
                           "from seeds seed, seed+1, ... (default 1)")
    for out in pipe.outputs[1:]:
        if out.optional:
            group.add_argument(flag_name(out.name + "s"), dest=f"out_{out.name}", action="store_true",
                               help=f"also write {out.help or out.name} beside each output as NAME_{out.name}.EXT")
    return labels


def _full_parser(prog: str, pipe, positional_model: bool, preset_inputs=()) -> tuple[argparse.ArgumentParser, dict]:
    """The command's parser with one flag per input ``pipe`` declares and, for a method built from
    a preset (``stylize --method``), per input its class declares for building
    (``Method.preset_inputs``; parsed before the method was built, listed and accepted here)."""
    p = ModelParser(prog=prog, description=f"Translate images with this {pipe.method.method_name} model "
                "(its inputs below).")
    _add_common(p)
    add_runtime_flag(p)
    labels = add_input_flags(p, pipe)
    groups = [p._action_groups[-1]]
    if preset_inputs:
        groups.append(p.add_argument_group(f"building this {pipe.method.method_name} method from its preset"))
        add_declared_flags(groups[-1], preset_inputs, preset_inputs, dest="preset_")
    p.model_name = pipe.method.method_name
    p.model_flags = listed_flags(*groups)
    return p, labels


RUNTIME_HELP = ("how the network runs: torch (eager PyTorch), compile (torch.compile), onnx / int8 (ONNX Runtime: "
                "MODEL's file from 'styleforge export [--int8 --calibrate DIR]', given as MODEL or found in the model "
                "directory), torchscript (a file), or auto (default: the fastest of these measured on this machine "
                "for this model and size whose output stays within the quality bound of fp32 eager; cached; "
                "compile is tried for 100 images or more; on CPU it also measures batches of 1, 2, 4 unless --batch-size is "
                "given). What cannot run falls back to torch, said in one line")


def add_runtime_flag(p) -> None:
    """``--runtime``; its default is $STYLEFORGE_RUNTIME, else auto."""
    from ..accel import RUNTIMES, default_runtime

    p.add_argument("--runtime", default=default_runtime(), choices=RUNTIMES, help=RUNTIME_HELP)


def first_readable(files, videos):
    """The first input image that decodes (unreadable ones are skipped later, one line each).
    When none does and no video is given, the job fails here, before any runtime is measured
    or said: the input's own error for one file, one line naming each for several."""
    from ..data.images import load_rgb
    from ..errors import DataError, ImageLoadError

    bad = []
    for f in files:
        try:
            return load_rgb(f)
        except ImageLoadError as e:
            bad.append(e)
    if not bad or videos:
        return None
    if len(bad) == 1:
        raise bad[0]
    said = "; ".join(f"{e.path}: {e.reason}" for e in bad[:3])
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    raise DataError(f"none of the {len(bad)} input images can be read: {said}{more}")


def choose_runtime(pipe, args, files, videos, values: dict, grid: dict, sample=None) -> int | None:
    """``pipe.use_runtime`` for ``--runtime``/``--bf16``, measured on ``sample`` (the first
    readable input, :func:`first_readable`); prints the one line saying what it took. With
    ``auto`` and no ``--batch-size``: the batch size too (``pipe.choose_batch``, for enough
    equal-size images), returned (None: the default)."""
    if getattr(args, "runtime", "auto") == "torch":
        sample = None
    values_for = {**values, **{k: v[0] for k, v in grid.items() if v}}
    count = len(files) + sum(_frame_count(v) for v in videos)  # compile pays off on long jobs only
    if not count:  # no image, no readable video: each video's error (or skip) comes next, unmeasured
        return None
    if sample is None and videos:
        sample = _first_frame(videos[0])
    choice = pipe.use_runtime(getattr(args, "runtime", "auto"), args.bf16, sample=sample, size=args.size,
                              images=count, **values_for)
    if choice.note:
        print(choice.note, file=sys.stderr)
    combos = math.prod(len(v) for v in grid.values()) if grid else 1  # a grid's styles split the size groups
    if getattr(args, "runtime", "auto") == "auto" and getattr(args, "batch_size", None) is None and combos == 1:
        from ..batch import equal_size_images

        batch = pipe.choose_batch(sample, size=args.size, images=equal_size_images(files), **values_for)
        if batch.note:
            print(batch.note, file=sys.stderr)
        return batch.size
    return None


def _frame_count(video) -> int:
    from ..errors import ImageLoadError
    from ..video import probe_video

    try:
        return probe_video(video).frames
    except ImageLoadError:  # said when the video's turn comes
        return 0


def _first_frame(video):
    try:
        import imageio.v3 as iio
        from PIL import Image

        return Image.fromarray(next(iter(iio.imiter(video))))
    except Exception:  # measured on the synthetic image instead
        return None


def run_translate(pipe, args, labels: dict, what: str) -> int:
    """:func:`_run_translate`; an ``--out`` folder it made and left empty (an error or Ctrl-C
    before the first output, every input unreadable) is removed again."""
    out = Path(str(args.out))
    made = not out.exists()
    code = 1
    try:
        code = _run_translate(pipe, args, labels, what)
        return code
    finally:
        if made and code != 0 and out.is_dir() and not any(out.iterdir()):
            try:
                out.rmdir()
            except OSError:  # another process (torchrun's other rank) wrote into it meanwhile
                pass


def _run_translate(pipe, args, labels: dict, what: str) -> int:
    from ..batch import BatchOptions, check_options, check_output_names, make_jobs, translate_files
    from ..utils.device import torchrun_rank

    from .inputs import collect_inputs, output_name
    from .inputs import output_folder

    check_options(BatchOptions(batch_size=args.batch_size, block_size=args.block_size, workers=args.workers,
                               size=args.size, resume=args.resume, overwrite=args.overwrite))  # before measuring
    output_folder(args.out, what.removesuffix("d"))
    values, grid = input_values(args, pipe, labels)
    pipe.check_required({**values, **{k: v[0] for k, v in grid.items() if v}}, labels)  # before measuring
    files = collect_inputs(args.inputs, videos=True)
    videos = [f for f in files if is_video(f)]
    files = [f for f in files if not is_video(f)]
    named = {Path(i) for i in args.inputs if Path(i).is_file()}
    if (grid or getattr(args, "num_outputs", 1) != 1) and any(v not in named for v in videos):
        found = [v for v in videos if v not in named]
        print(f"skipped {len(found)} video(s) found in folders (e.g. {found[0].name}): a style grid and "
              "--num-outputs apply to images; give a video by name with one style", file=sys.stderr)
        videos = [v for v in videos if v in named]
    names = [output_name(f) for f in files]
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    outputs = tuple(o.name for o in pipe.outputs[1:] if getattr(args, f"out_{o.name}", False))
    opts = BatchOptions(batch_size=args.batch_size, block_size=args.block_size, workers=args.workers,
                        size=args.size, resume=args.resume, overwrite=args.overwrite, amp=False,  # pipe.amp
                        progress=not args.quiet, error_on_single_bad=single,
                        num_outputs=getattr(args, "num_outputs", 1), outputs=outputs, labels=labels)
    check_output_names(files, make_jobs(names, opts, grid))  # before any measurement: the error alone
    sample = first_readable(files, videos)  # before any measurement: all unreadable is the error alone
    batch_size = choose_runtime(pipe, args, files, videos, values, grid, sample)
    done_videos = _translate_videos(pipe, videos, args, values, grid,
                                    single=len(args.inputs) == 1 and bool(named))
    if videos and not files:
        return 0 if done_videos else 1
    if args.batch_size is None:  # an explicit --batch-size wins
        opts = replace(opts, batch_size=batch_size)
    result = translate_files(pipe, files, names, args.out, opts, grid=grid, **values)
    if torchrun_rank().rank == 0:
        direction = values.get("direction") if len(pipe.directions) > 1 else None
        print(result.summary(direction, args.out).replace("translated", what, 1))
    return 0 if result.translated or result.resumed or not files else 1


def _translate_videos(pipe, videos, args, values: dict, grid: dict, single: bool) -> int:
    """Each video into ``--out/NAME.mp4``, frame by frame; returns how many are there now
    (written, or kept by --resume)."""
    from ..errors import ImageLoadError
    from ..video import translate_video, video_output_name

    if videos and grid:
        raise ConfigError("a style folder or glob (one output per style) applies to images; give videos one "
                          "style, or several files to blend")
    if videos and getattr(args, "num_outputs", 1) != 1:
        raise ConfigError("--num-outputs applies to images, not videos")
    out = Path(args.out)
    written = 0
    for v in videos:
        dst = out / video_output_name(v)
        if dst.exists() and args.resume:
            print(f"{v} -> {dst}: already done (resumed)")
            written += 1
            continue
        if dst.exists() and not args.overwrite:
            raise ConfigError(f"{dst} already exists; use --overwrite to replace it (or --resume to keep it)")
        try:
            n = translate_video(pipe, v, dst, size=args.size, progress=not args.quiet,
                                temporal=args.temporal, **values)
        except ImageLoadError as e:
            if single:
                raise
            print(f"skipped: {e}", file=sys.stderr)
            continue
        print(f"{v} -> {dst} ({n} frames)")
        written += 1
    return written


def cmd_translate(args, overrides) -> int:
    from ..pipeline import load_for_runtime

    rest = list(args.rest)
    pre = ModelParser(add_help=False)
    pre.add_argument("--device")
    pre.add_argument("--runtime", default="auto")
    known, _ = pre.parse_known_args(rest)
    pipe = load_for_runtime(args.model, device=known.device, runtime=known.runtime)
    parser, labels = _full_parser(f"styleforge translate {args.model}", pipe, True)
    if "-h" in rest or "--help" in rest:
        parser.print_help()
        return 0
    return run_translate(pipe, parser.parse_args(rest), labels, "translated")


def cmd_stylize(args, overrides) -> int:
    """Like translate, for a model directory (``--model``) or a method with nothing to train
    (``--method PRESET``) built from its preset and the flags its class declares for that
    (``Method.preset_inputs``: a weights file, a feature network)."""
    rest = list(args.rest)
    pre = ModelParser(add_help=False)
    pre.add_argument("--model")
    pre.add_argument("--method")
    pre.add_argument("--device")
    pre.add_argument("--size", type=int)
    pre.add_argument("--quiet", action="store_true")
    known, _ = pre.parse_known_args(rest)
    asked_help = "-h" in rest or "--help" in rest
    if bool(known.model) == bool(known.method):
        names = ", ".join(optimisation_methods())
        if asked_help:
            print("usage: styleforge stylize CONTENT... --style STYLE... --out DIR (--model DIR | --method NAME)\n\n"
                  "Paint content images in a style: a trained style-transfer model (--model: AdaIN, Johnson, "
                  f"conditional instance norm) or a method that optimises the image (--method NAME: {names}, or "
                  "another preset of theirs; 'styleforge stylize --method NAME --help' lists its flags, the files "
                  "and feature networks it is built with among them). "
                  + GENERIC_HELP.replace("translate MODEL", "stylize --model DIR"))
            return 0
        raise ConfigError(f"stylize needs one of --model DIR (a trained network) and --method NAME ({names})"
                          + (", not both" if known.model else ""))
    preset_inputs = []
    if known.model:
        from ..pipeline import load

        pipe = load(known.model, device=known.device)
    else:
        from ..pipeline import Pipeline

        method, preset_inputs = _build_from_preset(known.method, rest, known.size, known.quiet)
        pipe = Pipeline(method, device=known.device)
    parser, labels = _full_parser("styleforge stylize", pipe, False, preset_inputs)
    parser.add_argument("--model", help="a trained style-transfer model directory")
    parser.add_argument("--method", help="the preset of a method that optimises the image "
                        f"({', '.join(optimisation_methods())}, ...)")
    if asked_help:
        parser.print_help()
        return 0
    return run_translate(pipe, parser.parse_args(rest), labels, "stylized")


def optimisation_methods() -> list[str]:
    """The registered methods with nothing to train (``Method.not_trainable``): what ``stylize
    --method`` builds."""
    from ..registry import METHODS, available_methods

    return [n for n in available_methods() if METHODS[n].not_trainable is not None]


def _build_from_preset(name: str, rest: list[str], size: int | None, quiet: bool = False):
    """(method, its class's preset inputs) for ``stylize --method NAME``: the preset, the values
    ``rest`` gives the flags the class declares (``Method.preset_inputs``), turned into the preset
    and model options by ``Method.preset_config``, and ``--size`` (``Method.preset_size``).
    ``quiet`` (--quiet) turns off a preset's own ``progress`` bar (the optimiser's, per image)."""
    from .. import config as C
    from ..pipeline import check_value
    from ..registry import build_method, get_method_class

    cls = get_method_class(C.resolve(name)["method"])
    if cls.not_trainable is None:
        raise ConfigError(f"--method {name}: a method that trains a network (train it with "
                          f"'styleforge train --preset {name}', then give --model DIR); --method takes "
                          f"the methods that optimise the image: {', '.join(optimisation_methods())}")
    inputs = cls.preset_inputs()
    bp = ModelParser(add_help=False)
    labels = add_declared_flags(bp, inputs, inputs, dest="preset_")
    given, _ = bp.parse_known_args(rest)
    values = {}
    for inp in inputs:
        raw = getattr(given, f"preset_{inp.name}")
        if raw is None:
            continue
        if inp.kind == "choice" and str(raw) not in map(str, inp.choices):
            raise ConfigError(f"{labels[inp.name]} {raw}: no such {inp.name} for --method {name} "
                              f"({cls.method_name} takes {' or '.join(map(str, inp.choices))})")
        values[inp.name] = check_value(inp, raw, labels[inp.name])
    preset, model = cls.preset_config(name, values)
    if preset != name and preset not in C.list_presets():
        chosen = [i for i in inputs if i.kind == "choice" and i.name in values and values[i.name] != i.default]
        what = (f"{labels[chosen[0].name]} {values[chosen[0].name]}: no such {chosen[0].name} for --method {name}"
                if chosen else f"--method {name}")
        raise ConfigError(f"{what} (no preset {preset})")
    cfg = C.resolve(preset)
    for key, value in model.items():
        if key not in cfg["model"]:
            flags = " ".join(labels[k] for k in values)
            raise ConfigError(f"{flags}: the {preset} preset takes no {key}")
        cfg["model"][key] = value
    if size is not None:  # the method's own size option(s) follow --size (Method.preset_size)
        cfg["model"] = get_method_class(cfg["method"]).preset_size(cfg["model"], size, "--size")
    if quiet:  # the method's own progress output (Method.preset_quiet)
        cfg["model"] = get_method_class(cfg["method"]).preset_quiet(cfg["model"])
    method = build_method(cfg["method"], **cfg["model"])
    if method.not_trainable is None:  # a preset picked by a flag is of another method
        raise ConfigError(f"--method {name}: preset {preset} is of {method.method_name}, which trains a network")
    return method, inputs


def register(sub) -> None:
    tr = sub.add_parser("translate", help="translate images with a trained model",
                        description="Translate one image, a folder or a glob into an output folder, keeping "
                        "file names and each image's size. Streams large folders (decoding workers, batches "
                        "of equal-size images); --resume continues an interrupted run; under torchrun each "
                        "process takes a disjoint share. " + GENERIC_HELP,
                        usage="styleforge translate MODEL INPUTS... --out DIR [options] [model inputs]")
    tr.add_argument("model", help="model directory (config.json + model.safetensors), or a file "
                    "from 'styleforge export' (see --runtime)")
    tr.add_argument("rest", nargs=argparse.REMAINDER, help="inputs and options (see 'styleforge translate MODEL --help')")
    tr.set_defaults(func=cmd_translate)

    st = sub.add_parser("stylize", help="paint images in a style (AdaIN, Johnson, CIN models; Gatys, photo)",
                        description="Stylize content images with a style-transfer model (--model DIR) or "
                        "an optimisation method (--method gatys|photo). 'styleforge stylize --model DIR "
                        "--help' lists the model's inputs.", add_help=False,
                        usage="styleforge stylize CONTENT... --style STYLE... --out DIR (--model DIR | --method NAME)")
    st.add_argument("rest", nargs=argparse.REMAINDER, help="contents, --style, --out and options")
    st.set_defaults(func=cmd_stylize)


__all__ = ["register", "add_input_flags", "input_values", "flag_name", "input_help", "ModelParser", "readable"]
