"""``styleforge cartoonize MODEL_DIR INPUTS... -o OUT``: photo -> detect the face -> align ->
crop -> segment and whiten -> translate with the model -> (optionally) paste back.

Outputs: ``NAME.png``, the translated face crop (``--crop-size`` square, background white), or with
``--all-faces`` ``NAME_0.png``, ``NAME_1.png``, ... one per face, largest first; with
``--paste-back`` one image ``NAME.<ext>`` of the photo's size with every translated face put
back in place, blended along the person's matte (feathered inside the outline, edge colours
taken from the cartoon itself), so the photo's background stays. The same path
(:func:`styleforge.faces.cartoonize_image`) serves the web app.

An image with no face gets one line ``no face found in PATH`` on stderr and the batch goes on;
the exit status is 0 when at least one image gave an output, 1 when none did (every input
faceless or unreadable). See docs/faces.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


USAGE = "styleforge cartoonize MODEL INPUTS... -o OUT [options] [model inputs]"


def register(sub) -> None:
    # the model's own inputs are flags (its declaration): the parser is built once MODEL is loaded
    p = sub.add_parser("cartoonize", help="stylise the faces in photos (detect, align, crop, whiten, translate)",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
                       add_help=False, usage=USAGE)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the model directory, photos and options (the model's "
                   "own inputs: 'styleforge cartoonize MODEL --help')")
    p.set_defaults(func=run)


def _parser(pipe=None, lenient: bool = False):
    """(parser, {input name: flag}): the command's options and, with ``pipe``, one flag per input
    the model declares (``commands.add_declared_flags``: ``--direction``, a few-shot model's
    ``--group``, ...). ``lenient``: only to find MODEL (nothing required, unknown flags kept)."""
    from .inputs import ModelParser, add_declared_flags, listed_flags, plain_text
    from .prepare import add_face_options

    p = ModelParser(prog="styleforge cartoonize", usage=USAGE, description=plain_text(__doc__.split("\n\n", 1)[1]),
                    formatter_class=argparse.RawDescriptionHelpFormatter, add_help=not lenient)
    p.add_argument("model", nargs="?" if lenient else None,
                   help="model directory (e.g. a face model: U-GAT-IT, Photo2Cartoon, few-shot groups)")
    p.add_argument("inputs", nargs="*" if lenient else "+", help="photos, folders or globs")
    p.add_argument("--out", "-o", required=not lenient, help="output folder")
    p.add_argument("--all-faces", action="store_true", help="every face found, not only the largest")
    p.add_argument("--paste-back", action="store_true",
                   help="put the translated faces back into the photo instead of writing the crops")
    add_face_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no note on the face path used")
    labels = {}
    if pipe is not None:
        group = p.add_argument_group(f"inputs of this {pipe.method.method_name} model")
        labels = add_declared_flags(group, pipe.inputs[1:], pipe.inputs)
        p.model_name = pipe.method.method_name
        p.model_flags = listed_flags(group)
    else:
        p.epilog = "The flags of the model's own inputs (direction, group, ...) are listed by " \
                   "'styleforge cartoonize MODEL --help'."
    return p, labels


def _model_values(pipe, args, labels: dict) -> tuple[str, dict]:
    """(direction, the other inputs) from the model's flags: one value each (a style folder's
    grid is translate's)."""
    from .inputs import input_values
    from ..errors import ConfigError

    values, grid = input_values(args, pipe, labels)
    if grid:
        name = next(iter(grid))
        raise ConfigError(f"{labels[name]}: cartoonize takes one value (a file), not a folder, a glob or "
                          "several files (translate makes one output per value)")
    return values.pop("direction", None) or pipe.directions[0], values


def output_names(src: Path, n_faces: int | None, paste_back: bool) -> list[str]:
    """File names an input writes (``n_faces=None``: the largest face only)."""
    from .inputs import output_name

    if paste_back:
        return [output_name(src)]
    if n_faces is None:
        return [src.stem + ".png"]
    return [f"{src.stem}_{i}.png" for i in range(n_faces)]


def run(args, overrides) -> int:

    from tqdm import tqdm

    import styleforge

    from ..batch import check_name_clashes
    from .inputs import collect_inputs
    from ..data.images import load_rgb
    from ..errors import ConfigError, ImageLoadError, NoFaceError
    from ..faces import cartoonize_image
    from ..utils.images import save_image_atomic
    from .prepare import preprocessor_from_args

    if overrides:
        raise ConfigError(f"cartoonize takes no config overrides: {' '.join(overrides)}")
    rest = list(args.rest)
    found, _ = _parser(lenient=True)[0].parse_known_args(rest)
    asked_help = "-h" in rest or "--help" in rest
    if found.model is None:
        if asked_help:
            _parser()[0].print_help()
            return 0
        _parser()[0].parse_args(rest)  # the missing arguments, in one line
    pipe = styleforge.load(found.model, device=found.device)
    parser, labels = _parser(pipe)
    if asked_help:
        parser.print_help()
        return 0
    args = parser.parse_args(rest)
    direction, kw = _model_values(pipe, args, labels)
    files = collect_inputs(args.inputs)
    from .inputs import output_folder

    output_folder(args.out, "cartoonize")
    out = Path(args.out)
    stems = [output_names(f, None, args.paste_back)[0] for f in files]
    check_name_clashes(zip(map(str, files), stems))
    if not args.overwrite and out.is_dir():
        prefixes = {Path(n).stem for n in stems}
        clash = sorted(p.name for p in out.iterdir()
                       if p.stem in prefixes or (args.all_faces and p.stem.rsplit("_", 1)[0] in prefixes))
        if clash:
            raise ConfigError(f"{len(clash)} output(s) already exist in {out} (e.g. {clash[0]}); "
                              "use --overwrite to replace them")
    pre = preprocessor_from_args(args)

    done, faces_done, no_face, unreadable = 0, 0, [], 0
    for f in tqdm(files, unit="img", disable=len(files) < 2 or args.quiet, file=sys.stderr):
        try:
            photo = load_rgb(f)
        except ImageLoadError as e:
            tqdm.write(f"skipped: {e}", file=sys.stderr)
            unreadable += 1
            continue
        try:
            res = cartoonize_image(pipe, photo, pre, direction=direction, all_faces=args.all_faces,
                                   paste_back=args.paste_back, source=str(f), **kw)
        except NoFaceError:
            tqdm.write(f"no face found in {f}", file=sys.stderr)
            no_face.append(f)
            continue
        if args.paste_back:
            save_image_atomic(res.image, out / output_names(f, None, True)[0])
        else:
            names = output_names(f, len(res.faces) if args.all_faces else None, False)
            for y, name in zip(res.faces, names):
                save_image_atomic(y, out / name)
        done += 1
        faces_done += len(res.faces)
    msg = f"cartoonized {faces_done} face(s) in {done} image(s) {direction} into {out}"
    if no_face:
        msg += f"; no face in {len(no_face)}: " + ", ".join(p.name for p in no_face[:5]) + (" ..." if len(no_face) > 5 else "")
    if unreadable:
        msg += f"; skipped {unreadable} unreadable"
    msg += pre.fallback_note()
    print(msg)
    return 0 if done else 1
