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
together (a blend). Every bad value is a one-line error naming the flag.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from ..video import is_video

GENERIC_HELP = ("The flags of the model's own inputs (style image, alpha, direction, ...) are listed "
                "by 'styleforge translate MODEL --help'.")


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


def _add_common(p: argparse.ArgumentParser, with_inputs: bool = True) -> None:
    if with_inputs:
        p.add_argument("inputs", nargs="+", help="image files, folders or globs")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--size", type=int, help="resize the longer side to this before translating "
                   "(the output keeps the original size)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--resume", action="store_true", help="keep the outputs an interrupted run finished "
                   "and translate the rest")
    p.add_argument("--batch-size", type=int, help="images of equal size per forward pass (default 1 on CPU, "
                   "where batching measured no faster, 8 on GPU)")
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
    """One flag per declared input of ``pipe`` (and per optional output); returns
    {input name: flag} for error messages."""
    labels = {}
    group = p.add_argument_group(f"inputs of this {pipe.method.method_name} model")
    for inp in pipe.inputs[1:]:
        flag = flag_name(inp.name)
        labels[inp.name] = flag
        kw = {"dest": f"in_{inp.name}", "help": input_help(inp, pipe.inputs)}
        if inp.kind == "choice" and len(inp.choices) < 2:
            kw["help"] = argparse.SUPPRESS  # nothing to choose (a one-direction model): accepted, not listed
        if inp.kind == "mask" and not inp.multiple:
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


def _expand(items: list[str], flag: str) -> tuple[list[Path], bool]:
    from . import expand_inputs

    return expand_inputs(items, flag)


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
            files, many = _expand(raw, flag)
            if inp.multiple and not many:
                values[inp.name] = files  # used together: a blend
            elif len(files) == 1 and not many:
                values[inp.name] = files[0]
            else:
                files = readable(files, flag)
                grid[inp.name] = [[f] if inp.multiple else f for f in files]
        elif inp.kind == "images":
            files, _ = _expand(raw, flag)
            k = getattr(args, "shots", None)
            if k is not None:
                if k < 1:
                    raise ConfigError(f"--shots must be at least 1, got {k}")
                if k > len(files):
                    raise ConfigError(f"--shots {k} is more than the {len(files)} image(s) given to {flag}")
                files = files[:k]
            values[inp.name] = files
        elif inp.kind == "mask":
            files, _ = _expand(raw if isinstance(raw, list) else [raw], flag)
            if not inp.multiple and len(files) != 1:
                raise ConfigError(f"{flag} takes one mask, got {len(files)}")
            values[inp.name] = files if inp.multiple else files[0]
        elif inp.kind == "code":
            nums = [x for r in raw for x in r.replace(",", " ").split()]
            if nums and all(_is_number(x) for x in nums):  # X X ... or X,X,...
                values[inp.name] = [float(x) for x in nums]
            elif len(raw) == 1:
                files, many = _expand(raw, flag)
                if many or len(files) > 1:
                    grid[inp.name] = files
                else:
                    values[inp.name] = files[0]
            else:
                files, _ = _expand(raw, flag)
                grid[inp.name] = files
        else:
            from ..pipeline import check_value

            values[inp.name] = check_value(inp, raw, flag)
    if getattr(args, "shots", None) is not None and not any(i.kind == "images" for i in pipe.inputs):
        raise ConfigError("--shots: this model takes no K images")
    return values, grid


def _full_parser(prog: str, pipe, positional_model: bool) -> tuple[argparse.ArgumentParser, dict]:
    p = ModelParser(prog=prog, description=f"Translate images with this {pipe.method.method_name} model "
                "(its inputs below).")
    _add_common(p)
    add_runtime_flag(p)
    labels = add_input_flags(p, pipe)
    p.model_name = pipe.method.method_name
    p.model_flags = tuple(a for action in p._action_groups[-1]._group_actions for a in action.option_strings
                          if action.help != argparse.SUPPRESS)
    return p, labels


RUNTIME_HELP = ("how the network runs: torch (eager PyTorch), compile (torch.compile), onnx / int8 (ONNX Runtime: "
                "MODEL's file from 'styleforge export [--int8 --calibrate DIR]', given as MODEL or found in the model "
                "directory), torchscript (a file), or auto (default: the fastest of these measured on this machine "
                "for this model and size whose output stays within the quality bound of fp32 eager; cached; "
                "compile is tried for 100 images or more). What cannot run falls back to torch, said in one line")


def add_runtime_flag(p) -> None:
    """``--runtime``; its default is $STYLEFORGE_RUNTIME, else auto."""
    from ..accel import RUNTIMES, default_runtime

    p.add_argument("--runtime", default=default_runtime(), choices=RUNTIMES, help=RUNTIME_HELP)


def choose_runtime(pipe, args, files, videos, values: dict, grid: dict) -> None:
    """``pipe.use_runtime`` for ``--runtime``/``--bf16``, measured on the first input; prints
    the one line saying what it took."""
    from ..data.images import load_rgb
    from ..errors import ImageLoadError

    sample = None
    if getattr(args, "runtime", "auto") != "torch":
        for f in files[:8]:  # the first readable input (unreadable ones are skipped later, as always)
            try:
                sample = load_rgb(f)
                break
            except ImageLoadError:
                continue
    values_for = {**values, **{k: v[0] for k, v in grid.items() if v}}
    count = len(files) + (10 ** 4 if videos else 0)  # a video: many frames
    if sample is None and videos:
        sample = _first_frame(videos[0])
    choice = pipe.use_runtime(getattr(args, "runtime", "auto"), args.bf16, sample=sample, size=args.size,
                              images=count, **values_for)
    if choice.note:
        print(choice.note, file=sys.stderr)


def _first_frame(video):
    try:
        import imageio.v3 as iio
        from PIL import Image

        return Image.fromarray(next(iter(iio.imiter(video))))
    except Exception:  # measured on the synthetic image instead
        return None


def run_translate(pipe, args, labels: dict, what: str) -> int:
    from ..batch import BatchOptions, translate_files
    from ..utils.device import torchrun_rank

    from . import collect_inputs, output_name
    from . import output_folder

    output_folder(args.out, what.removesuffix("d"))
    values, grid = input_values(args, pipe, labels)
    files = collect_inputs(args.inputs, videos=True)
    videos = [f for f in files if is_video(f)]
    files = [f for f in files if not is_video(f)]
    named = {Path(i) for i in args.inputs if Path(i).is_file()}
    if (grid or getattr(args, "num_outputs", 1) != 1) and any(v not in named for v in videos):
        found = [v for v in videos if v not in named]
        print(f"skipped {len(found)} video(s) found in folders (e.g. {found[0].name}): a style grid and "
              "--num-outputs apply to images; give a video by name with one style", file=sys.stderr)
        videos = [v for v in videos if v in named]
    choose_runtime(pipe, args, files, videos, values, grid)
    done_videos = _translate_videos(pipe, videos, args, values, grid,
                                    single=len(args.inputs) == 1 and bool(named))
    if videos and not files:
        return 0 if done_videos else 1
    names = [output_name(f) for f in files]
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    outputs = tuple(o.name for o in pipe.outputs[1:] if getattr(args, f"out_{o.name}", False))
    opts = BatchOptions(batch_size=args.batch_size, block_size=args.block_size, workers=args.workers,
                        size=args.size, resume=args.resume, overwrite=args.overwrite, amp=False,  # pipe.amp
                        progress=not args.quiet, error_on_single_bad=single,
                        num_outputs=getattr(args, "num_outputs", 1), outputs=outputs, labels=labels)
    result = translate_files(pipe, files, names, args.out, opts, grid=grid, **values)
    if torchrun_rank().rank == 0:
        direction = values.get("direction") if len(pipe.directions) > 1 else None
        print(result.summary(direction, args.out).replace("translated", what, 1))
    return 0 if result.translated or result.resumed or not files else 1


def _translate_videos(pipe, videos, args, values: dict, grid: dict, single: bool) -> int:
    """Each video into ``--out/NAME.mp4``, frame by frame; returns how many were written."""
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
    from ..pipeline import load

    rest = list(args.rest)
    pre = ModelParser(add_help=False)
    pre.add_argument("--device")
    pre.add_argument("--runtime", default="auto")
    known, _ = pre.parse_known_args(rest)
    # a model directory loads as eager PyTorch; run_translate's use_runtime then picks the path
    is_dir = Path(args.model).is_dir()
    pipe = load(args.model, device=known.device, runtime="auto" if is_dir and known.runtime != "torchscript"
                else known.runtime)
    parser, labels = _full_parser(f"styleforge translate {args.model}", pipe, True)
    if "-h" in rest or "--help" in rest:
        parser.print_help()
        return 0
    return run_translate(pipe, parser.parse_args(rest), labels, "translated")


def cmd_stylize(args, overrides) -> int:
    """Like translate, for a model directory (``--model``) or an optimisation method
    (``--method gatys``) built from its preset."""
    rest = list(args.rest)
    pre = ModelParser(add_help=False)
    pre.add_argument("--model")
    pre.add_argument("--method")
    pre.add_argument("--vgg")
    pre.add_argument("--encoder")
    pre.add_argument("--device")
    pre.add_argument("--size", type=int)
    known, _ = pre.parse_known_args(rest)
    if bool(known.model) == bool(known.method):
        if "-h" in rest or "--help" in rest:
            print("usage: styleforge stylize CONTENT... --style STYLE... --out DIR (--model DIR | --method NAME)\n\n"
                  "Paint content images in a style: a trained style-transfer model (--model: AdaIN, Johnson, "
                  "conditional instance norm) or an optimisation method (--method gatys|photo; --vgg FILE "
                  "gives the VGG weights; --encoder inception: gatys with the FID Inception, no VGG file). " + GENERIC_HELP.replace("translate MODEL", "stylize --model DIR"))
            return 0
        raise ConfigError("stylize needs one of --model DIR (a trained network) and --method NAME (gatys, photo)"
                          + (", not both" if known.model else ""))
    if known.model:
        from ..pipeline import load

        pipe = load(known.model, device=known.device)
    else:
        from .. import config as C
        from ..pipeline import Pipeline
        from ..registry import build_method

        preset = known.method
        if known.encoder and known.encoder != "vgg19":
            # an encoder other than VGG has its own layers and loss weights: its preset
            preset = f"{known.method}-{known.encoder}"
            if preset not in C.list_presets():
                raise ConfigError(f"--encoder {known.encoder}: no such encoder for --method {known.method} "
                                  "(gatys takes vgg19 or inception)")
        cfg = C.resolve(preset)
        if known.vgg:
            if "vgg_weights" not in cfg["model"]:
                raise ConfigError(f"--vgg: the {known.method} preset takes no VGG weights")
            cfg["model"]["vgg_weights"] = known.vgg
        if known.size is not None:
            optimisation_size(cfg["model"], known.size)
        method = build_method(cfg["method"], **cfg["model"])
        if getattr(method, "not_trainable", None) is None:
            raise ConfigError(f"--method {known.method}: a method that trains a network (train it with "
                              f"'styleforge train --preset {known.method}', then give --model DIR); --method takes "
                              "the optimisation methods gatys and photo")
        pipe = Pipeline(method, device=known.device)
    parser, labels = _full_parser("styleforge stylize", pipe, False)
    parser.add_argument("--model", help="a trained style-transfer model directory")
    parser.add_argument("--method", help="an optimisation method's preset (gatys, photo)")
    parser.add_argument("--vgg", help="VGG weights for --method (see the README)")
    parser.add_argument("--encoder", help="feature network of --method gatys: vgg19 (default) or inception "
                        "(the FID Inception-v3 as a stand-in when no VGG file exists)")
    if "-h" in rest or "--help" in rest:
        parser.print_help()
        return 0
    return run_translate(pipe, parser.parse_args(rest), labels, "stylized")


def optimisation_size(model_cfg: dict, size: int) -> None:
    """``--size N`` of ``stylize --method``: the optimisation runs at N (longer side). The
    preset's own size (gatys' ``sizes``, photo's ``size``) would otherwise resize the image
    after --size did; coarse-to-fine stages keep their ratios, the last one at N."""
    if size < 8:
        raise ConfigError(f"--size: the optimisation needs at least 8 px (longer side), got {size}")
    if "sizes" in model_cfg:
        sizes = list(model_cfg["sizes"])
        last = sizes[-1]
        model_cfg["sizes"] = [size if not s or not last else max(8, round(s * size / last)) for s in sizes]
    elif "size" in model_cfg:
        model_cfg["size"] = size


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


__all__ = ["register", "add_input_flags", "input_values", "flag_name", "input_help", "ModelParser"]
